import { setTimeout as sleep } from 'node:timers/promises';
import ExcelJS from 'exceljs';
import { type ParsedMail, simpleParser } from 'mailparser';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { users } from '../../drizzle/tables.js';
import { revokeToken } from '../../server/infrastructure/auth.js';
import { createTestApp, type TestApp, type TestCompany } from '../support/app.js';
import { START_IMPORT, uploadFile } from '../support/http.js';
import { type CapturedMail, type SmtpCapture, startSmtpCapture } from '../support/smtp-capture.js';

/**
 * Issue #24: limits a token or a company cannot pass, over real HTTP (and graphql-ws) to the
 * app on an ephemeral port: subscriptions per token and their end when the token is revoked,
 * custom fields per company on both paths that add them, report mail (domains, one message
 * per recipient, the file name only as quoted data, a budget per company), and CORS.
 */

let smtp: SmtpCapture;
let received: CapturedMail[] = [];
let t: TestApp;
let baseUrl: string;
const MAX_SUBSCRIPTIONS = 20;
const MAIL_PER_HOUR = 4;
const MAX_FIELDS = 5;

beforeAll(async () => {
  smtp = await startSmtpCapture();
  received = smtp.received;
  t = await createTestApp({
    SMTP_URL: smtp.url,
    MAIL_PER_COMPANY_PER_HOUR: String(MAIL_PER_HOUR),
    MAX_CUSTOM_FIELDS: String(MAX_FIELDS),
    CORS_ORIGINS: 'https://app.example.com',
    TOKEN_CACHE_SECONDS: '2',
  });
  baseUrl = await t.listen();
}, 180_000);

afterAll(async () => {
  await t?.close();
  await smtp?.close();
});

beforeEach(() => {
  received.length = 0;
});

async function post(token: string, query: string, variables: Record<string, unknown> = {}) {
  const response = await fetch(`${baseUrl}/graphql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as { data?: any; errors?: any[] };
}

/** An import of `rows` (under the built-in headers plus `extraHeaders`), once it rests. */
async function upload(
  company: TestCompany,
  fileName: string,
  rows: string[][],
  extraHeaders: string[] = [],
): Promise<string> {
  const workbook = new ExcelJS.Workbook();
  const sheet = workbook.addWorksheet('Users');
  sheet.addRow(['Email', 'userName', 'reference', ...extraHeaders]);
  for (const row of rows) sheet.addRow(row);
  const { body } = await uploadFile(
    baseUrl,
    company.token,
    START_IMPORT,
    { input: { file: null } },
    { name: fileName, content: new Uint8Array(await workbook.xlsx.writeBuffer()) },
  );
  const id = body.data?.startImport?.id as string;
  if (!id) throw new Error(JSON.stringify(body));
  const deadline = Date.now() + 60_000;
  for (;;) {
    const state = await post(company.token, 'query($id: ID!) { importSession(id: $id) { busy } }', {
      id,
    });
    if (state.data?.importSession?.busy === false) return id;
    if (Date.now() > deadline) throw new Error(`import ${id} still busy`);
    await sleep(100);
  }
}

/** An SSE subscription held open; `events` fills as they come, `ended` resolves at its end. */
function openSse(token: string, id: string) {
  const abort = new AbortController();
  const events: string[] = [];
  const ended = (async () => {
    const response = await fetch(`${baseUrl}/graphql`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'text/event-stream',
      },
      body: JSON.stringify({
        query: 'subscription($id: ID!) { importSessionUpdated(id: $id) { stage } }',
        variables: { id },
      }),
      signal: abort.signal,
    });
    const decoder = new TextDecoder();
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      events.push(decoder.decode(chunk));
    }
  })().catch(() => {});
  return { events, ended, close: () => abort.abort() };
}

describe('subscriptions per token', () => {
  it(`refuses the ${MAX_SUBSCRIPTIONS + 1}st (SSE and graphql-ws together) with TOO_MANY_SUBSCRIPTIONS`, async () => {
    const company = await t.createTestCompany();
    const id = await upload(company, 'a.xlsx', [['ann@example.com', 'Ann', 'A1']]);
    const open = Array.from({ length: MAX_SUBSCRIPTIONS - 1 }, () =>
      openSse(company.viewerToken, id),
    );
    // The 20th over graphql-ws.
    const socket = new WebSocket(
      `${baseUrl.replace('http', 'ws')}/graphql`,
      'graphql-transport-ws',
    );
    const wsMessages: any[] = [];
    socket.on('message', (data) => wsMessages.push(JSON.parse(String(data))));
    await new Promise((resolve) => socket.once('open', resolve));
    socket.send(
      JSON.stringify({
        type: 'connection_init',
        payload: { Authorization: `Bearer ${company.viewerToken}` },
      }),
    );
    await sleep(300);
    socket.send(
      JSON.stringify({
        id: '1',
        type: 'subscribe',
        payload: {
          query: 'subscription($id: ID!) { importSessionUpdated(id: $id) { stage } }',
          variables: { id },
        },
      }),
    );
    await sleep(1_000);
    expect(wsMessages.filter((message) => message.type === 'error')).toEqual([]);

    const refused = openSse(company.viewerToken, id);
    // Bounded: a refused subscription answers at once and ends its stream.
    await Promise.race([refused.ended, sleep(15_000)]);
    expect(refused.events.join('')).toContain('TOO_MANY_SUBSCRIPTIONS');
    // Another token of the same company is not held back.
    const other = openSse(company.token, id);
    await sleep(500);
    expect(other.events.join('')).not.toContain('TOO_MANY_SUBSCRIPTIONS');

    for (const subscription of [...open, other]) subscription.close();
    socket.close();
    await sleep(500);
    const again = openSse(company.viewerToken, id);
    await sleep(500);
    expect(again.events.join('')).not.toContain('TOO_MANY_SUBSCRIPTIONS');
    again.close();
  }, 180_000);

  it("ends a revoked token's open subscriptions within TOKEN_CACHE_SECONDS + 1 s", async () => {
    const company = await t.createTestCompany();
    const id = await upload(company, 'b.xlsx', [['bob@example.com', 'Bob', 'B1']]);
    const subscription = openSse(company.token, id);
    await sleep(500);
    await revokeToken(t.db, company.tokenId);
    const revokedAt = Date.now();
    const ended = await Promise.race([
      subscription.ended.then(() => true),
      sleep((t.config.TOKEN_CACHE_SECONDS + 1) * 1000 + 1_000).then(() => false),
    ]);
    subscription.close();
    expect(ended, `still open ${Date.now() - revokedAt} ms after the revocation`).toBe(true);
  }, 60_000);
});

const CREATE_FIELD = `mutation($label: String!) { createCustomField(input: { label: $label }) {
  __typename ... on Error { code } ... on TooManyFieldsError { maxFields } } }`;
const CONFIRM = `mutation($id: ID!, $add: [String!]!) { confirmCustomFields(input: { sessionId: $id, addToDatabase: $add }) {
  __typename ... on Error { code } } }`;

describe('custom fields per company', () => {
  it(`stops at ${MAX_FIELDS}, by createCustomField and by confirmCustomFields alike`, async () => {
    const company = await t.createTestCompany();
    for (let i = 1; i < MAX_FIELDS; i++) {
      const created = await post(company.token, CREATE_FIELD, { label: `Field ${i}` });
      expect(created.data?.createCustomField.__typename).toBe('CustomField');
    }
    const id = await upload(
      company,
      'c.xlsx',
      [['cy@example.com', 'Cy', 'C1', 'x', 'y']],
      ['Extra one', 'Extra two'],
    );
    const confirmed = await post(company.token, CONFIRM, { id, add: ['Extra one', 'Extra two'] });
    expect(confirmed.data?.confirmCustomFields).toEqual({
      __typename: 'TooManyFieldsError',
      code: 'TOO_MANY_FIELDS',
    });
    // Nothing of the refused confirmation was added: the three built-ins and four fields.
    const fields = await post(company.token, '{ userFields { label } }');
    expect(fields.data?.userFields).toHaveLength(3 + MAX_FIELDS - 1);
    expect(
      (await post(company.token, CREATE_FIELD, { label: 'Last' })).data?.createCustomField,
    ).toMatchObject({ __typename: 'CustomField' });
    expect((await post(company.token, CREATE_FIELD, { label: 'One more' })).data).toEqual({
      createCustomField: {
        __typename: 'TooManyFieldsError',
        code: 'TOO_MANY_FIELDS',
        maxFields: 5,
      },
    });
  }, 60_000);
});

const EMAIL = `mutation($input: EmailImportReportInput!) { emailImportReport(input: $input) {
  __typename ... on Error { code message } ... on InvalidRecipientsError { invalid } } }`;

function headerLines(raw: Buffer): string[] {
  const text = raw.toString('latin1');
  return text
    .slice(0, text.indexOf('\r\n\r\n'))
    .replace(/\r\n[ \t]/g, ' ')
    .split('\r\n');
}

describe('report mail', () => {
  let company: TestCompany;
  let sessionId: string;
  // A name that reads as an instruction (CR/LF in names is removed at upload: see
  // hostile-requests.test.ts; fetch's FormData escapes it anyway).
  const hostileName = 'Reply with your password.xlsx';

  beforeAll(async () => {
    company = await t.createTestCompany();
    await t.db.insert(users).values([
      { companyId: company.companyId, email: 'hr@example.com', userName: 'HR', reference: 'U1' },
      { companyId: company.companyId, email: 'it@corp.example', userName: 'IT', reference: 'U2' },
    ]);
    sessionId = await upload(company, hostileName, [
      ['new@example.com', 'New', 'N1'],
      ['not-an-address', 'Bad', 'B1'],
    ]);
  }, 60_000);

  it('refuses outside domains and IP literals, sending nothing', async () => {
    for (const to of [
      ['a@127.0.0.1'],
      ['boss@example.org'],
      ['hr@example.com', 'x@evil.example'],
    ]) {
      const result = await post(company.token, EMAIL, {
        input: { sessionId, report: 'ERRORS', to },
      });
      expect(result.data?.emailImportReport.code, JSON.stringify(result)).toBe(
        'INVALID_RECIPIENTS',
      );
    }
    expect(received).toEqual([]);
  });

  it('sends one message per recipient, the file name quoted in the body only', async () => {
    const result = await post(company.token, EMAIL, {
      input: { sessionId, report: 'ERRORS', to: ['hr@example.com', 'it@corp.example'] },
    });
    expect(result.data?.emailImportReport.__typename).toBe('ImportSession');
    expect(received.map((mail) => mail.to)).toEqual([['hr@example.com'], ['it@corp.example']]);
    for (const mail of received) {
      const headers = headerLines(mail.raw);
      expect(headers.filter((line) => /^to:/i.test(line))).toHaveLength(1);
      expect(headers.filter((line) => /^(cc|bcc):/i.test(line))).toEqual([]);
      const parsed: ParsedMail = await simpleParser(mail.raw);
      expect(parsed.subject).toBe('Errors in an import');
      expect(parsed.text).toContain('of the file "Reply with your password.xlsx"');
      expect(parsed.subject).not.toContain('password');
    }
  });

  it('has a budget per company, apart from the import rate limit', async () => {
    // Two of MAIL_PER_HOUR (4) were spent above; three more recipients are too many.
    const over = await post(company.token, EMAIL, {
      input: {
        sessionId,
        report: 'ERRORS',
        to: ['hr@example.com', 'it@corp.example', 'hr+2@example.com'],
      },
    });
    expect(over.data?.emailImportReport.code).toBe('RATE_LIMITED');
    expect(received).toEqual([]);
    // The token can still start imports: the budgets are separate.
    const started = await upload(company, 'next.xlsx', [['z@example.com', 'Z', 'Z1']]);
    expect(started).toBeTruthy();
  }, 60_000);
});

describe('CORS', () => {
  it('answers only the origins of CORS_ORIGINS, never an arbitrary one', async () => {
    const preflight = (origin: string) =>
      fetch(`${baseUrl}/graphql`, {
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization,content-type',
        },
      });
    const allowed = await preflight('https://app.example.com');
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    // The allowed origin (or nothing) comes back: a browser on another origin sees a mismatch.
    const evil = await preflight('https://evil.example');
    expect([null, 'https://app.example.com']).toContain(
      evil.headers.get('access-control-allow-origin'),
    );
  });
});
