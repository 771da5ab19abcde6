import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { type AddressObject, type ParsedMail, simpleParser } from 'mailparser';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Logger } from '../../server/infrastructure/logger.js';
import {
  InvalidRecipientsError,
  MAX_RECIPIENTS,
  type MailMessage,
  type MailSettings,
  sendMail,
  validateRecipients,
} from '../../server/infrastructure/mail.js';
import { type CapturedMail, type SmtpCapture, startSmtpCapture } from '../support/smtp-capture.js';

const XLSX_TYPE = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';

interface LogLine {
  level: string;
  message: string;
}

/** Our Logger interface, keeping the lines it is given so a test can read them. */
function collectingLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const keep = (level: string) => (message: string) => {
    lines.push({ level, message });
  };
  return {
    lines,
    debug: keep('debug'),
    info: keep('info'),
    warn: keep('warn'),
    error: keep('error'),
  };
}

/** The header block of a raw message, unfolded: one entry per header. */
function headerLines(raw: Buffer): string[] {
  const text = raw.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  return text
    .slice(0, end)
    .replace(/\r\n[ \t]/g, ' ')
    .split('\r\n');
}

function addresses(field: AddressObject | AddressObject[] | undefined): string[] {
  const objects = field === undefined ? [] : Array.isArray(field) ? field : [field];
  return objects.flatMap((object) => object.value.map((address) => address.address ?? ''));
}

let directory: string;
let smtp: SmtpCapture;
let smtpUrl: string;
let received: CapturedMail[] = [];

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'muster-mail-'));
  smtp = await startSmtpCapture();
  smtpUrl = smtp.url;
  received = smtp.received;
});

afterAll(async () => {
  await smtp.close();
  await rm(directory, { recursive: true, force: true });
});

beforeEach(() => {
  received.length = 0;
});

function smtpSettings(): MailSettings {
  return { smtpUrl, from: 'Muster <muster@example.com>', outboxDir: join(directory, 'unused') };
}

const report = randomBytes(50_000);

function reportMessage(overrides: Partial<MailMessage> = {}): MailMessage {
  return {
    to: ['ann+reports@sub.example.com', 'bob@example.com'],
    subject: 'Import errors',
    text: 'The error report of your import is attached.',
    attachments: [{ filename: 'errors.xlsx', content: report, contentType: XLSX_TYPE }],
    ...overrides,
  };
}

describe('sendMail through an SMTP server', () => {
  it('delivers to exactly the recipients, with the subject, text and attachment', async () => {
    const logger = collectingLogger();
    const sent = await sendMail(smtpSettings(), reportMessage(), logger);

    expect(received).toHaveLength(1);
    const [mail] = received;
    if (!mail) throw new Error('no mail received');
    expect(mail.to).toEqual(['ann+reports@sub.example.com', 'bob@example.com']);
    const parsed: ParsedMail = await simpleParser(mail.raw);
    expect(addresses(parsed.to)).toEqual(['ann+reports@sub.example.com', 'bob@example.com']);
    expect(addresses(parsed.from)).toEqual(['muster@example.com']);
    expect(parsed.subject).toBe('Import errors');
    expect(parsed.text?.trim()).toBe('The error report of your import is attached.');
    expect(parsed.attachments).toHaveLength(1);
    const [attachment] = parsed.attachments;
    expect(attachment?.filename).toBe('errors.xlsx');
    expect(attachment?.contentType).toBe(XLSX_TYPE);
    expect(attachment?.content.equals(report)).toBe(true);
    expect(sent.deliveredTo).toBe(parsed.messageId);
    expect(logger.lines.filter((line) => line.level === 'warn')).toEqual([]);
  });

  it('strips CR and LF from the subject and file name, so no header can be injected', async () => {
    await sendMail(
      smtpSettings(),
      reportMessage({
        to: ['ann@example.com'],
        subject: 'Report\r\nBcc: evil@example.net',
        attachments: [{ filename: 'errors.xlsx\r\nX-Injected: yes', content: report }],
      }),
      collectingLogger(),
    );

    const [mail] = received;
    if (!mail) throw new Error('no mail received');
    expect(mail.to).toEqual(['ann@example.com']);
    const headers = headerLines(mail.raw);
    expect(headers.filter((line) => /^(bcc|x-injected):/i.test(line))).toEqual([]);
    const subjectHeaders = headers.filter((line) => /^subject:/i.test(line));
    expect(subjectHeaders).toHaveLength(1);
    const parsed = await simpleParser(mail.raw);
    expect(parsed.subject).toBe('Report Bcc: evil@example.net');
    expect(parsed.bcc).toBeUndefined();
    expect(parsed.headers.has('x-injected')).toBe(false);
    expect(parsed.attachments[0]?.filename).toBe('errors.xlsx X-Injected: yes');
  });

  it('sends nothing when any recipient is invalid', async () => {
    const attempt = sendMail(
      smtpSettings(),
      reportMessage({ to: ['ann@example.com', 'Eve <eve@example.net>'] }),
      collectingLogger(),
    );
    await expect(attempt).rejects.toBeInstanceOf(InvalidRecipientsError);
    await expect(attempt).rejects.toMatchObject({
      code: 'INVALID_RECIPIENTS',
      invalid: ['Eve <eve@example.net>'],
    });
    expect(received).toEqual([]);
  });
});

describe('sendMail without an SMTP server', () => {
  it('keeps the message as an .eml file in the outbox and logs where', async () => {
    const outboxDir = join(directory, 'data', 'outbox');
    const logger = collectingLogger();
    const sent = await sendMail(
      { from: 'Muster <muster@localhost>', outboxDir },
      reportMessage(),
      logger,
    );

    expect(dirname(sent.deliveredTo)).toBe(outboxDir);
    expect(basename(sent.deliveredTo)).toMatch(/^\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{12}\.eml$/);
    expect(await readdir(outboxDir)).toEqual([basename(sent.deliveredTo)]);
    expect((await stat(sent.deliveredTo)).mode & 0o777).toBe(0o600);
    expect(logger.lines).toEqual([
      { level: 'info', message: `mail kept in the outbox: ${sent.deliveredTo}` },
    ]);

    const parsed = await simpleParser(await readFile(sent.deliveredTo));
    expect(addresses(parsed.to)).toEqual(['ann+reports@sub.example.com', 'bob@example.com']);
    expect(parsed.subject).toBe('Import errors');
    expect(parsed.attachments[0]?.filename).toBe('errors.xlsx');
    expect(parsed.attachments[0]?.content.equals(report)).toBe(true);
  });

  it('writes nothing when a recipient is invalid', async () => {
    const outboxDir = join(directory, 'refused-outbox');
    await expect(
      sendMail(
        { from: 'Muster <muster@localhost>', outboxDir },
        reportMessage({ to: ['a@b.c, d@e.f'] }),
        collectingLogger(),
      ),
    ).rejects.toBeInstanceOf(InvalidRecipientsError);
    await expect(readdir(outboxDir)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('validateRecipients', () => {
  // 64 + 1 + 189 = 254 characters, the most an address may have.
  const longestLocalPart = 'l'.repeat(64);
  const longDomain = `${'d'.repeat(63)}.${'e'.repeat(63)}.${'f'.repeat(57)}.com`;

  it('accepts plain addresses, with + tags, subdomains, hyphens and apostrophes', () => {
    const good = [
      'ann+tag@sub.example.com',
      'a@b.c',
      "o'brien@example.ie",
      'first.last@mail-server.example.co.uk',
      'UPPER@EXAMPLE.COM',
      `${longestLocalPart}@${longDomain}`,
    ];
    expect(validateRecipients(good)).toEqual({ valid: good, invalid: [] });
  });

  it('refuses anything but one plain address per entry', () => {
    const bad = [
      'a@b.c\r\nBcc: x@y.z',
      'a@b.c\n',
      'Ann <a@b.c>',
      '<a@b.c>',
      'a@b.c, d@e.f',
      'a@b.c; d@e.f',
      '',
      ' a@b.c',
      'a@b.c ',
      'a b@c.d',
      'ann',
      '@example.com',
      'ann@',
      'a@@b.c',
      'ann@localhost',
      'ann@[127.0.0.1]',
      '"ann"@example.com',
      '.ann@example.com',
      'an..n@example.com',
      'ann@-example.com',
      'ann@example..com',
      'ann@exämple.com',
      `${'l'.repeat(65)}@example.com`,
      `${longestLocalPart}@f${longDomain}`,
    ];
    expect(validateRecipients(bad)).toEqual({ valid: [], invalid: bad });
  });

  it(`allows ${MAX_RECIPIENTS} recipients and refuses the ones past them`, () => {
    const recipients = Array.from({ length: MAX_RECIPIENTS + 1 }, (_, i) => `user${i}@example.com`);
    expect(validateRecipients(recipients.slice(0, MAX_RECIPIENTS))).toEqual({
      valid: recipients.slice(0, MAX_RECIPIENTS),
      invalid: [],
    });
    expect(validateRecipients(recipients)).toEqual({
      valid: recipients.slice(0, MAX_RECIPIENTS),
      invalid: [`user${MAX_RECIPIENTS}@example.com`],
    });
  });

  it('drops repeats of an address, ignoring case', () => {
    expect(validateRecipients(['Ann@Example.com', 'ann@example.com', 'bob@example.com'])).toEqual({
      valid: ['Ann@Example.com', 'bob@example.com'],
      invalid: [],
    });
  });

  it('makes sendMail refuse 21 recipients and an empty list, sending nothing', async () => {
    const tooMany = Array.from({ length: MAX_RECIPIENTS + 1 }, (_, i) => `user${i}@example.com`);
    await expect(
      sendMail(smtpSettings(), reportMessage({ to: tooMany }), collectingLogger()),
    ).rejects.toMatchObject({ invalid: [`user${MAX_RECIPIENTS}@example.com`] });
    await expect(
      sendMail(smtpSettings(), reportMessage({ to: [] }), collectingLogger()),
    ).rejects.toThrow('Give at least one recipient.');
    expect(received).toEqual([]);
  });
});
