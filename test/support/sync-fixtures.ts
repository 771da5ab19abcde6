import ExcelJS from 'exceljs';
import { expect } from 'vitest';
import type { TestApp, TestCompany } from './app.js';
import { subscribeSse, uploadFile } from './http.js';

/** Drives imports of real workbooks through the API, as a client does (sync and revert tests). */

export async function workbookBytes(rows: (string | null)[][]): Promise<Uint8Array<ArrayBuffer>> {
  const workbook = new ExcelJS.Workbook();
  const sheet = workbook.addWorksheet('Users');
  sheet.addRow(['Email', 'userName', 'reference']);
  for (const row of rows) sheet.addRow(row);
  return new Uint8Array(await workbook.xlsx.writeBuffer());
}

/** Users n in `from..to`: user<n>@example.com, User <n>, R<n>. */
export function userRows(from: number, to: number, name = 'User'): string[][] {
  const rows: string[][] = [];
  for (let n = from; n <= to; n++) rows.push([`user${n}@example.com`, `${name} ${n}`, `R${n}`]);
  return rows;
}

export const SESSION_FIELDS = `id stage busy mode archiveAcknowledged validRowCount invalidRowCount
  result { created updated unchanged skipped archived restored }
  revertResult { removed updated unarchived rearchived conflicts }
  failure { code message }`;

export function importDriver(t: TestApp, baseUrl: string) {
  async function waitUntilIdle(company: TestCompany, id: string) {
    const events = await subscribeSse(
      baseUrl,
      company.token,
      `subscription($id: ID!) { importSessionUpdated(id: $id) { ${SESSION_FIELDS} } }`,
      { id },
      (event) => event.data?.importSessionUpdated?.busy === false,
      60_000,
    );
    const last = events.at(-1)?.data?.importSessionUpdated;
    expect(last, JSON.stringify(events.at(-1))).toBeTruthy();
    return last;
  }

  async function start(company: TestCompany, rows: (string | null)[][], mode?: string) {
    const { status, body } = await uploadFile(
      baseUrl,
      company.token,
      `mutation($input: StartImportInput!) { startImport(input: $input) {
        __typename ... on ImportSession { id mode } ... on Error { code message } } }`,
      { input: { file: null, ...(mode ? { mode } : {}) } },
      { name: 'users.xlsx', content: await workbookBytes(rows) },
    );
    expect(status, JSON.stringify(body)).toBe(200);
    const session = body.data?.startImport;
    expect(session?.__typename, JSON.stringify(body)).toBe('ImportSession');
    return waitUntilIdle(company, session.id);
  }

  async function continueFrom(
    company: TestCompany,
    id: string,
    stage: string,
    acknowledgeArchive?: boolean,
  ) {
    const result = await t.request(
      company.token,
      `mutation($input: ContinueImportInput!) { continueImport(input: $input) {
        __typename ... on ImportSession { stage busy }
        ... on ArchiveLimitExceededError { archiveCount activeUserCount limitPercent }
        ... on Error { code message } } }`,
      {
        input: {
          sessionId: id,
          stage,
          ...(acknowledgeArchive === undefined ? {} : { acknowledgeArchive }),
        },
      },
    );
    expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
    return result.data?.continueImport;
  }

  /** From REVIEW (or VALIDATION) to COMPLETED; returns the session at the end. */
  async function commitFrom(company: TestCompany, session: any, acknowledgeArchive?: boolean) {
    let current = session;
    for (const stage of ['VALIDATION', 'REVIEW', 'GROUP_ASSIGNMENT']) {
      if (current.stage !== stage) continue;
      const moved = await continueFrom(company, current.id, stage, acknowledgeArchive);
      expect(moved.__typename, JSON.stringify(moved)).toBe('ImportSession');
      current = await waitUntilIdle(company, current.id);
    }
    return current;
  }

  /** A whole import of `rows`, committed. */
  async function importRows(company: TestCompany, rows: (string | null)[][], mode?: string) {
    const done = await commitFrom(company, await start(company, rows, mode), true);
    expect(done.stage, JSON.stringify(done)).toBe('COMPLETED');
    return done;
  }

  /** Every user of the company in `status` (default: the API's default, ACTIVE), by email. */
  async function listUsers(company: TestCompany, status?: string) {
    const found: any[] = [];
    let after: string | null = null;
    for (;;) {
      const result: any = await t.request(
        company.token,
        `query($after: String, $status: UserStatus) {
          users(first: 100, after: $after, status: $status) {
            edges { node { id email userName reference status archivedAt trainingGroup { name } } }
            pageInfo { hasNextPage endCursor } } }`,
        { after, ...(status ? { status } : {}) },
      );
      expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
      found.push(...result.data.users.edges.map((edge: any) => edge.node));
      if (!result.data.users.pageInfo.hasNextPage) return found;
      after = result.data.users.pageInfo.endCursor;
    }
  }

  return { start, waitUntilIdle, continueFrom, commitFrom, importRows, listUsers };
}
