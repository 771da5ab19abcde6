import { setTimeout as sleep } from 'node:timers/promises';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import ExcelJS from 'exceljs';
import { print } from 'graphql';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  CompanySettingsDocument,
  EmailImportReportDocument,
  ImportSessionDocument,
  SetReportMailDomainsDocument,
  StartImportDocument,
} from '../../client/gql/graphql.js';
import { users } from '../../drizzle/tables.js';
import { createTestApp, type TestApp, type TestCompany } from '../support/app.js';
import { uploadFile } from '../support/http.js';
import { type CapturedMail, type SmtpCapture, startSmtpCapture } from '../support/smtp-capture.js';

/**
 * Issue #24: the domains report mail may go to are a company setting an ADMIN manages; unset,
 * they are the domains of the company's own users. Over real HTTP with the client's typed
 * documents, the mail captured by an SMTP server on loopback.
 */

let smtp: SmtpCapture;
let received: CapturedMail[] = [];
let t: TestApp;
let baseUrl: string;

beforeAll(async () => {
  smtp = await startSmtpCapture();
  received = smtp.received;
  t = await createTestApp({ SMTP_URL: smtp.url });
  baseUrl = await t.listen();
}, 180_000);

afterAll(async () => {
  await t?.close();
  await smtp?.close();
});

beforeEach(() => {
  received.length = 0;
});

/** One of the client's typed documents, POSTed over HTTP as the client sends it. */
async function send<Result, Variables>(
  token: string,
  document: TypedDocumentNode<Result, Variables>,
  variables?: Variables,
): Promise<{ data?: Result; errors?: { message: string; extensions?: { code?: string } }[] }> {
  const response = await fetch(`${baseUrl}/graphql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ query: print(document), variables }),
  });
  return (await response.json()) as never;
}

/** A company with users in example.com and an import resting with an errors report. */
async function companyWithImport(): Promise<{ company: TestCompany; sessionId: string }> {
  const company = await t.createTestCompany();
  await t.db
    .insert(users)
    .values([
      { companyId: company.companyId, email: 'hr@example.com', userName: 'HR', reference: 'U1' },
    ]);
  const workbook = new ExcelJS.Workbook();
  const sheet = workbook.addWorksheet('Users');
  sheet.addRow(['Email', 'userName', 'reference']);
  sheet.addRow(['new@example.com', 'New', 'N1']);
  sheet.addRow(['not-an-address', 'Bad', 'B1']);
  const { body } = await uploadFile(
    baseUrl,
    company.token,
    print(StartImportDocument),
    { input: { file: null } },
    { name: 'users.xlsx', content: new Uint8Array(await workbook.xlsx.writeBuffer()) },
  );
  const sessionId = body.data?.startImport?.id as string;
  if (!sessionId) throw new Error(JSON.stringify(body));
  const deadline = Date.now() + 60_000;
  for (;;) {
    const state = await send(company.token, ImportSessionDocument, { id: sessionId });
    if (state.data?.importSession?.busy === false) return { company, sessionId };
    if (Date.now() > deadline) throw new Error(`import ${sessionId} still busy`);
    await sleep(100);
  }
}

function mail(company: TestCompany, sessionId: string, to: string[]) {
  return send(company.token, EmailImportReportDocument, {
    input: { sessionId, report: 'ERRORS', to },
  });
}

describe('report mail domains', () => {
  it('default to the domains of the company’s users, until an ADMIN sets them', async () => {
    const { company, sessionId } = await companyWithImport();
    expect((await send(company.viewerToken, CompanySettingsDocument)).data).toEqual({
      companySettings: { reportMailDomains: ['example.com'], reportMailDomainsSet: false },
    });
    const outside = await mail(company, sessionId, ['boss@partner.example']);
    expect(outside.data?.emailImportReport).toMatchObject({
      __typename: 'InvalidRecipientsError',
      code: 'INVALID_RECIPIENTS',
      invalid: ['boss@partner.example'],
    });
    expect(received).toEqual([]);

    const set = await send(company.token, SetReportMailDomainsDocument, {
      input: { domains: ['Partner.Example', 'partner.example', 'mail.partner.example'] },
    });
    expect(set.data?.setReportMailDomains).toEqual({
      __typename: 'CompanySettings',
      reportMailDomains: ['mail.partner.example', 'partner.example'],
      reportMailDomainsSet: true,
    });
    expect((await send(company.viewerToken, CompanySettingsDocument)).data).toEqual({
      companySettings: {
        reportMailDomains: ['mail.partner.example', 'partner.example'],
        reportMailDomainsSet: true,
      },
    });

    const allowed = await mail(company, sessionId, [
      'boss@partner.example',
      'it@Mail.Partner.Example',
    ]);
    expect(allowed.data?.emailImportReport.__typename).toBe('ImportSession');
    // (The SMTP server lower-cases the domain of an envelope address.)
    expect(received.map((mail) => mail.to.map((address) => address.toLowerCase()))).toEqual([
      ['boss@partner.example'],
      ['it@mail.partner.example'],
    ]);
    received.length = 0;

    // The users' own domain is no longer allowed once the setting names others, nor is a
    // subdomain of an allowed one.
    for (const to of [['hr@example.com'], ['x@other.partner.example']]) {
      const refused = await mail(company, sessionId, to);
      expect(refused.data?.emailImportReport).toMatchObject({
        __typename: 'InvalidRecipientsError',
        code: 'INVALID_RECIPIENTS',
        invalid: to,
      });
    }
    expect(received).toEqual([]);

    // An empty list allows no report mail; null goes back to the users' domains.
    await send(company.token, SetReportMailDomainsDocument, { input: { domains: [] } });
    expect(
      (await mail(company, sessionId, ['boss@partner.example'])).data?.emailImportReport.__typename,
    ).toBe('InvalidRecipientsError');
    const reset = await send(company.token, SetReportMailDomainsDocument, {
      input: { domains: null },
    });
    expect(reset.data?.setReportMailDomains).toEqual({
      __typename: 'CompanySettings',
      reportMailDomains: ['example.com'],
      reportMailDomainsSet: false,
    });
    expect(
      (await mail(company, sessionId, ['hr@example.com'])).data?.emailImportReport.__typename,
    ).toBe('ImportSession');
    expect(received.map((mail) => mail.to)).toEqual([['hr@example.com']]);
  }, 60_000);

  it('cannot be changed by a VIEWER', async () => {
    const company = await t.createTestCompany();
    const refused = await send(company.viewerToken, SetReportMailDomainsDocument, {
      input: { domains: ['evil.example'] },
    });
    expect(refused.data).toBeNull();
    expect(refused.errors?.map((error) => error.extensions?.code)).toEqual(['FORBIDDEN']);
    expect((await send(company.token, CompanySettingsDocument)).data).toEqual({
      companySettings: { reportMailDomains: [], reportMailDomainsSet: false },
    });
  });

  it('refuses IP literals, addresses, ports, bare hosts and too many domains with InvalidInputError', async () => {
    const company = await t.createTestCompany();
    await send(company.token, SetReportMailDomainsDocument, {
      input: { domains: ['partner.example'] },
    });
    const invalid = [
      '127.0.0.1',
      '[127.0.0.1]',
      '::1',
      'localhost',
      'boss@partner.example',
      'partner.example:25',
      ' partner.example',
      'partner.example\r\nBcc: x@y.z',
      'exämple.com',
      '*.partner.example',
      '',
      `${'a'.repeat(250)}.com`,
    ];
    for (const domain of invalid) {
      const result = await send(company.token, SetReportMailDomainsDocument, {
        input: { domains: ['ok.example', domain] },
      });
      const answer = result.data?.setReportMailDomains;
      expect(answer, JSON.stringify(domain)).toMatchObject({
        __typename: 'InvalidInputError',
        code: 'INVALID_INPUT',
      });
      // Every issue names the bad entry, and only it.
      const issues = answer && 'issues' in answer ? answer.issues : [];
      expect(issues.length).toBeGreaterThan(0);
      expect(new Set(issues.map((issue) => issue.path.join('.')))).toEqual(
        new Set(['input.domains.1']),
      );
    }
    const tooMany = Array.from({ length: 51 }, (_, i) => `d${i}.example`);
    expect(
      (
        await send(company.token, SetReportMailDomainsDocument, {
          input: { domains: tooMany },
        })
      ).data?.setReportMailDomains,
    ).toMatchObject({ __typename: 'InvalidInputError', code: 'INVALID_INPUT' });
    // Fifty is allowed.
    expect(
      (
        await send(company.token, SetReportMailDomainsDocument, {
          input: { domains: tooMany.slice(0, 50) },
        })
      ).data?.setReportMailDomains,
    ).toMatchObject({ __typename: 'CompanySettings', reportMailDomainsSet: true });
    await send(company.token, SetReportMailDomainsDocument, {
      input: { domains: ['partner.example'] },
    });
    expect((await send(company.token, CompanySettingsDocument)).data).toEqual({
      companySettings: { reportMailDomains: ['partner.example'], reportMailDomainsSet: true },
    });
  });

  it('are each company’s own', async () => {
    const first = await t.createTestCompany();
    const second = await t.createTestCompany();
    await send(first.token, SetReportMailDomainsDocument, {
      input: { domains: ['first.example'] },
    });
    expect((await send(second.token, CompanySettingsDocument)).data).toEqual({
      companySettings: { reportMailDomains: [], reportMailDomainsSet: false },
    });
  });
});
