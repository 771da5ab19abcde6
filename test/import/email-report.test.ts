import { readdir, readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import ExcelJS from 'exceljs';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mailOutbox, users } from '../../drizzle/tables.js';
import { createTestApp, type TestApp, type TestCompany } from '../support/app.js';
import { START_IMPORT, subscribeSse, uploadFile } from '../support/http.js';

interface Received {
  from: string;
  to: string[];
  raw: string;
}

let smtp: SMTPServer;
const received: Received[] = [];
let viaSmtp: TestApp;
let viaOutbox: TestApp;

beforeAll(async () => {
  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        received.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((recipient) => recipient.address),
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
  const { port } = smtp.server.address() as AddressInfo;
  viaSmtp = await createTestApp({
    SMTP_URL: `smtp://127.0.0.1:${port}`,
    MAIL_FROM: 'Muster <muster@test.example>',
  });
  viaOutbox = await createTestApp();
});

afterAll(async () => {
  await viaSmtp.close();
  await viaOutbox.close();
  await new Promise<void>((resolve) => smtp.close(resolve));
});

async function sessionWithErrors(t: TestApp, company: TestCompany): Promise<string> {
  const workbook = new ExcelJS.Workbook();
  const sheet = workbook.addWorksheet('Users');
  sheet.addRow(['Email', 'userName', 'reference']);
  sheet.addRow(['good@example.com', 'Good', 'G1']);
  sheet.addRow(['bad-address', 'Bad', 'B1']);
  // Report mail goes only to the domains of the company's own users.
  await t.db.insert(users).values([
    { companyId: company.companyId, email: 'hr@example.com', userName: 'HR', reference: 'U1' },
    {
      companyId: company.companyId,
      email: 'ops@sub.example.com',
      userName: 'Ops',
      reference: 'U2',
    },
  ]);
  const baseUrl = await t.listen();
  const { body } = await uploadFile(
    baseUrl,
    company.token,
    START_IMPORT,
    { input: { file: null } },
    {
      name: 'staff.xlsx',
      content: new Uint8Array(await workbook.xlsx.writeBuffer()),
    },
  );
  const id = body.data.startImport.id as string;
  await subscribeSse(
    baseUrl,
    company.token,
    'subscription($id: ID!) { importSessionUpdated(id: $id) { busy } }',
    { id },
    (event) => event.data?.importSessionUpdated?.busy === false,
  );
  return id;
}

const EMAIL = `mutation($input: EmailImportReportInput!) { emailImportReport(input: $input) {
  __typename ... on Error { code message } ... on InvalidRecipientsError { invalid } } }`;

describe('emailImportReport', () => {
  it('sends the error report over SMTP to exactly the recipients given, one message each', async () => {
    const company = await viaSmtp.createTestCompany();
    const id = await sessionWithErrors(viaSmtp, company);
    const result = await viaSmtp.request(company.token, EMAIL, {
      input: {
        sessionId: id,
        report: 'ERRORS',
        to: ['hr+imports@sub.example.com', 'boss@example.com'],
      },
    });
    expect(result.data?.emailImportReport.__typename).toBe('ImportSession');
    const messages = received.slice(-2);
    expect(messages.map((message) => message.to)).toEqual([
      ['hr+imports@sub.example.com'],
      ['boss@example.com'],
    ]);
    for (const message of messages) {
      expect(message.from).toBe('muster@test.example');
      expect(message.raw).toContain('Subject: Errors in an import');
      expect(message.raw).toContain('"staff.xlsx"');
      expect(message.raw).toContain('staff-errors.xlsx');
    }
    const outbox = await viaSmtp.db.select().from(mailOutbox);
    expect(outbox.at(-1)).toMatchObject({
      companyId: company.companyId,
      recipients: ['hr+imports@sub.example.com', 'boss@example.com'],
    });
  });

  it('refuses bad recipients and unavailable reports, sending nothing', async () => {
    const company = await viaSmtp.createTestCompany();
    const id = await sessionWithErrors(viaSmtp, company);
    const before = received.length;
    const injected = await viaSmtp.request(company.token, EMAIL, {
      input: {
        sessionId: id,
        report: 'ERRORS',
        to: ['ok@example.com', 'x@example.com\r\nBcc: evil@example.com'],
      },
    });
    expect(injected.data?.emailImportReport).toMatchObject({ code: 'INVALID_RECIPIENTS' });
    expect(injected.data?.emailImportReport.invalid).toHaveLength(1);
    const early = await viaSmtp.request(company.token, EMAIL, {
      input: { sessionId: id, report: 'IMPORTED_USERS', to: ['ok@example.com'] },
    });
    expect(early.data?.emailImportReport.code).toBe('REPORT_NOT_AVAILABLE');
    const other = await viaSmtp.createTestCompany();
    const foreign = await viaSmtp.request(other.token, EMAIL, {
      input: { sessionId: id, report: 'ERRORS', to: ['ok@example.com'] },
    });
    expect(foreign.data?.emailImportReport.code).toBe('NOT_FOUND');
    expect(received.length).toBe(before);
  });

  it('keeps the mail as an .eml in the outbox under DATA_DIR without SMTP_URL', async () => {
    const company = await viaOutbox.createTestCompany();
    const id = await sessionWithErrors(viaOutbox, company);
    const result = await viaOutbox.request(company.token, EMAIL, {
      input: { sessionId: id, report: 'ERRORS', to: ['hr@example.com'] },
    });
    expect(result.data?.emailImportReport.__typename).toBe('ImportSession');
    const outboxDir = join(viaOutbox.config.DATA_DIR, 'outbox');
    const files = (await readdir(outboxDir)).filter((file) => file.endsWith('.eml'));
    expect(files).toHaveLength(1);
    const eml = await readFile(join(outboxDir, files[0] as string), 'utf8');
    expect(eml).toContain('To: hr@example.com');
    expect(eml).toContain('staff-errors.xlsx');
  });
});
