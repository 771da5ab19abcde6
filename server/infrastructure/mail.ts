import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import nodemailer, { type SendMailOptions } from 'nodemailer';
import { AppError } from '../errors.js';
import type { Logger } from './logger.js';

export interface MailMessage {
  to: string[];
  subject: string;
  text: string;
  attachments: { filename: string; content: Buffer; contentType?: string }[];
}

export interface MailSettings {
  /** SMTP server to send through, e.g. smtp://user:pass@host:587; unset: keep mail in the outbox. */
  smtpUrl?: string;
  /** The From header, e.g. "Muster <muster@example.com>"; set by the operator, not by callers. */
  from: string;
  /** Where mail is kept as .eml files when there is no SMTP server: join(DATA_DIR, 'outbox'). */
  outboxDir: string;
}

export interface SentMail {
  /** The SMTP Message-ID, or the path of the .eml file in the outbox. */
  deliveredTo: string;
}

export const MAX_RECIPIENTS = 20;

// RFC 5321's limits on a whole address and on its local part.
const MAX_ADDRESS_LENGTH = 254;
const MAX_LOCAL_PART_LENGTH = 64;
// RFC 1035's limit on a host name as text.
const MAX_DOMAIN_LENGTH = 253;

// A dot-atom local part (RFC 5322 atext): what people actually use, `+` tags and apostrophes
// included; quoted local parts are refused. No whitespace, comma, semicolon or angle bracket
// can get through, so one entry is always exactly one address and never a header.
const LOCAL_PART = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;
// Host names of at least two labels: subdomains and hyphens are fine, bare hosts and IP
// literals are not (the last label has a letter, so `127.0.0.1` is no domain). ASCII only,
// so no look-alike letters from other scripts.
const DOMAIN =
  /^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+(?=[A-Za-z0-9-]*[A-Za-z])[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** A host name mail may go to: two labels or more, ASCII, no IP literal. */
export function isMailDomain(domain: string): boolean {
  return domain.length <= MAX_DOMAIN_LENGTH && DOMAIN.test(domain);
}

function isPlainAddress(entry: string): boolean {
  if (entry.length > MAX_ADDRESS_LENGTH) return false;
  const at = entry.lastIndexOf('@');
  const localPart = entry.slice(0, at);
  const domain = entry.slice(at + 1);
  return (
    at > 0 &&
    localPart.length <= MAX_LOCAL_PART_LENGTH &&
    LOCAL_PART.test(localPart) &&
    DOMAIN.test(domain)
  );
}

/**
 * Sorts recipients into those mail may go to and those it may not: each entry must be one
 * plain address (`local@domain`, no display name, no separators, at most 254 characters),
 * taken as given, not trimmed; entries past the first MAX_RECIPIENTS are invalid too. Repeats
 * of an address (ignoring case) are dropped from `valid`.
 */
export function validateRecipients(to: string[]): { valid: string[]; invalid: string[] } {
  const valid: string[] = [];
  const invalid: string[] = [];
  const seen = new Set<string>();
  for (const [index, entry] of to.entries()) {
    if (index >= MAX_RECIPIENTS || !isPlainAddress(entry)) {
      invalid.push(entry);
    } else if (!seen.has(entry.toLowerCase())) {
      seen.add(entry.toLowerCase());
      valid.push(entry);
    }
  }
  return { valid, invalid };
}

/** An entry as an error message quotes it: short, so a message never carries a request back. */
function quoted(entry: string): string {
  return JSON.stringify(entry.length > 60 ? `${entry.slice(0, 60)}…` : entry);
}

/** The first few domains: a company may allow many, and a message stays short. */
function listed(domains: string[]): string {
  return domains.slice(0, 10).join(', ') + (domains.length > 10 ? ', …' : '');
}

export class InvalidRecipientsError extends AppError {
  readonly code = 'INVALID_RECIPIENTS';
  readonly invalid: string[];
  constructor(invalid: string[], allowedDomains?: string[]) {
    const shown = invalid.slice(0, 5).map(quoted).join(', ') + (invalid.length > 5 ? ', …' : '');
    super(
      invalid.length === 0
        ? 'Give at least one recipient.'
        : allowedDomains
          ? `Mail was not sent: ${shown} ${invalid.length === 1 ? 'is' : 'are'} outside your company's report mail domains (${allowedDomains.length > 0 ? listed(allowedDomains) : 'none'}).`
          : `Mail was not sent: ${shown} cannot be used. Give 1 to ${MAX_RECIPIENTS} plain addresses like name@example.com.`,
    );
    this.invalid = invalid.map((entry) => (entry.length > 254 ? `${entry.slice(0, 254)}…` : entry));
  }
}

/** The domain of a plain address (validateRecipients passed it), in lower case. */
export function domainOf(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1).toLowerCase();
}

/** Control characters (CR and LF above all) would let text end a header and start another. */
function singleLine(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point.
  return text.replace(/[\u0000-\u001f\u007f]+/g, ' ');
}

/** "20261125T150102.123Z": ISO 8601 (basic format), sorts by time, no colons for other tools. */
function outboxTimestamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '');
}

/**
 * Sends `message` through the SMTP server of `settings.smtpUrl`, or without one writes it as an
 * .eml file (a complete RFC 822 message) into `settings.outboxDir` and logs where. Throws
 * InvalidRecipientsError, sending nothing, unless every recipient passes validateRecipients.
 */
export async function sendMail(
  settings: MailSettings,
  message: MailMessage,
  logger: Logger,
): Promise<SentMail> {
  const { valid, invalid } = validateRecipients(message.to);
  if (invalid.length > 0 || valid.length === 0) throw new InvalidRecipientsError(invalid);
  const mail: SendMailOptions = {
    from: settings.from,
    // The envelope is derived from these alone: nothing else can add a recipient.
    to: valid,
    subject: singleLine(message.subject),
    text: message.text,
    attachments: message.attachments.map((attachment) => ({
      filename: singleLine(attachment.filename),
      content: attachment.content,
      contentType: attachment.contentType,
    })),
  };

  if (settings.smtpUrl) {
    const transport = nodemailer.createTransport(settings.smtpUrl);
    try {
      const info = await transport.sendMail(mail);
      if (info.rejected.length > 0) {
        logger.warn('the SMTP server refused some recipients', { rejected: info.rejected });
      }
      return { deliveredTo: info.messageId };
    } finally {
      transport.close();
    }
  }

  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true });
  const info = await transport.sendMail(mail);
  await mkdir(settings.outboxDir, { recursive: true });
  const path = join(
    settings.outboxDir,
    `${outboxTimestamp(new Date())}-${randomBytes(6).toString('hex')}.eml`,
  );
  // Never overwrite, and keep people's addresses and reports readable by the server alone.
  await writeFile(path, info.message, { flag: 'wx', mode: 0o600 });
  logger.info(`mail kept in the outbox: ${path}`);
  return { deliveredTo: path };
}
