import { eq, sql } from 'drizzle-orm';
import ExcelJS from 'exceljs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryRows } from '../../drizzle/client.js';
import { importRows, importSessions } from '../../drizzle/tables.js';
import { globalId } from '../../schema/ids.js';
import { createTestApp, type TestApp, type TestCompany } from '../support/app.js';
import { START_IMPORT, subscribeSse, uploadFile } from '../support/http.js';

let t: TestApp;
let baseUrl: string;
beforeAll(async () => {
  t = await createTestApp({ MAX_UPLOAD_BYTES: String(256 * 1024), MAX_ROWS: '50' });
  baseUrl = await t.listen();
});
afterAll(async () => {
  await t.close();
});

type Cell = string | number | Date | boolean | null | ExcelJS.CellValue;

async function workbookBytes(
  rows: Cell[][],
  sheetName = 'Users',
): Promise<Uint8Array<ArrayBuffer>> {
  const workbook = new ExcelJS.Workbook();
  const sheet = workbook.addWorksheet(sheetName);
  for (const row of rows) sheet.addRow(row);
  return new Uint8Array(await workbook.xlsx.writeBuffer());
}

const SESSION = `query($id: ID!) { importSession(id: $id) {
  id stage busy rowCount fileName comment
  progress { phase processed total percent }
  columns { header columnIndex status field { key label } }
  failure { code message }
} }`;

const FOLLOW = `subscription($id: ID!) { importSessionUpdated(id: $id) {
  stage busy rowCount progress { phase processed total } failure { code message }
} }`;

async function startImport(
  company: TestCompany,
  content: Uint8Array<ArrayBuffer>,
  name = 'users.xlsx',
) {
  const { status, body } = await uploadFile(
    baseUrl,
    company.token,
    START_IMPORT,
    { input: { file: null, comment: '  first import  ' } },
    { name, content },
  );
  expect(status, JSON.stringify(body)).toBe(200);
  expect(body.data, JSON.stringify(body)).toBeTruthy();
  return body.data.startImport;
}

/** Follows the session over SSE until its background work is done. */
async function waitUntilIdle(company: TestCompany, id: string) {
  const events = await subscribeSse(
    baseUrl,
    company.token,
    FOLLOW,
    { id },
    (event) => event.data?.importSessionUpdated?.busy === false,
  );
  return { events, last: events.at(-1)?.data?.importSessionUpdated };
}

async function session(company: TestCompany, id: string) {
  const result = await t.request(company.token, SESSION, { id });
  return result.data?.importSession;
}

async function stagedCells(id: string): Promise<(string | null)[][]> {
  const rows = await t.db
    .select({ cells: importRows.cells })
    .from(importRows)
    .where(eq(importRows.sessionId, id.length === 36 ? id : sessionUuid(id)))
    .orderBy(importRows.rowNumber);
  return rows.map((row) => row.cells);
}

function sessionUuid(id: string): string {
  return Buffer.from(id, 'base64').toString('utf8').split(':')[1] as string;
}

describe('stage 1: upload and read', () => {
  it('returns at once, streams progress over SSE, stages every row and stops at CUSTOM_FIELDS', async () => {
    const company = await t.createTestCompany();
    const bytes = await workbookBytes([
      ['  EMAIL ', 'UserName', 'reference', 'Department'],
      ['ann@example.com', 'Ann', '0042', 'Sales'],
      [null, null, null, null],
      ['bob@example.com', 'Bob', 7, 'Support'],
      ['cy@example.com', 'Cy', 'R3', null],
    ]);
    const started = await startImport(company, bytes);
    expect(started).toMatchObject({
      __typename: 'ImportSession',
      stage: 'UPLOAD',
      busy: true,
      fileName: 'users.xlsx',
      fileSize: bytes.length,
      comment: 'first import',
    });
    const { events, last } = await waitUntilIdle(company, started.id);
    expect(events[0].data.importSessionUpdated).toMatchObject({ stage: 'UPLOAD' });
    expect(last).toMatchObject({ stage: 'CUSTOM_FIELDS', busy: false, rowCount: 3 });

    const read = await session(company, started.id);
    expect(read.columns).toEqual([
      {
        header: 'EMAIL',
        columnIndex: 0,
        status: 'MATCHED',
        field: { key: 'email', label: 'Email' },
      },
      {
        header: 'UserName',
        columnIndex: 1,
        status: 'MATCHED',
        field: { key: 'userName', label: 'userName' },
      },
      {
        header: 'reference',
        columnIndex: 2,
        status: 'MATCHED',
        field: { key: 'reference', label: 'reference' },
      },
      { header: 'Department', columnIndex: 3, status: 'NEW', field: null },
    ]);
    const rows = await t.db
      .select({ rowNumber: importRows.rowNumber, cells: importRows.cells })
      .from(importRows)
      .where(eq(importRows.sessionId, sessionUuid(started.id)))
      .orderBy(importRows.rowNumber);
    expect(rows).toEqual([
      { rowNumber: 2, cells: ['ann@example.com', 'Ann', '0042', 'Sales'] },
      { rowNumber: 4, cells: ['bob@example.com', 'Bob', '7', 'Support'] },
      { rowNumber: 5, cells: ['cy@example.com', 'Cy', 'R3', null] },
    ]);
  });

  it('passes stage 2 on its own when every column is known (and a file without errors on to REVIEW)', async () => {
    const company = await t.createTestCompany();
    const bytes = await workbookBytes([
      ['Email', 'userName', 'reference'],
      ['dee@example.com', 'Dee', 'D1'],
    ]);
    const started = await startImport(company, bytes);
    const { last } = await waitUntilIdle(company, started.id);
    expect(last).toMatchObject({ stage: 'REVIEW', busy: false, rowCount: 1 });
  });

  it('ends FAILED with a clear ImportFailure for a sheet where no column is recognisable, and keeps serving', async () => {
    const company = await t.createTestCompany();
    const bytes = await workbookBytes([
      ['Phone', 'City'],
      ['555-0100', 'Springfield'],
    ]);
    const started = await startImport(company, bytes);
    const { last } = await waitUntilIdle(company, started.id);
    expect(last.stage).toBe('FAILED');
    expect(last.failure.code).toBe('MISSING_COLUMNS');
    expect(last.failure.message).toContain('userName');
    expect(last.failure.message).toContain('reference');
    expect(await stagedCells(started.id)).toEqual([]);
    const viewer = await t.request(company.token, '{ viewer { role } }');
    expect(viewer.data?.viewer.role).toBe('ADMIN');
  });

  it('waits at stage 2 when required columns are missing but others are recognisable', async () => {
    const company = await t.createTestCompany();
    const bytes = await workbookBytes([
      ['Email', 'Name'],
      ['eve@example.com', 'Eve'],
    ]);
    const started = await startImport(company, bytes);
    const { last } = await waitUntilIdle(company, started.id);
    expect(last).toMatchObject({ stage: 'CUSTOM_FIELDS', failure: null, rowCount: 1 });
    expect(await stagedCells(started.id)).toEqual([['eve@example.com', 'Eve']]);
  });

  it('ends FAILED with TOO_MANY_ROWS past MAX_ROWS, staging nothing', async () => {
    const company = await t.createTestCompany();
    const rows: Cell[][] = [['Email', 'userName', 'reference']];
    for (let i = 0; i < 51; i++) rows.push([`u${i}@example.com`, `U${i}`, `R${i}`]);
    const started = await startImport(company, await workbookBytes(rows));
    const { last } = await waitUntilIdle(company, started.id);
    expect(last.failure.code).toBe('TOO_MANY_ROWS');
    expect(await stagedCells(started.id)).toEqual([]);
  });

  it('answers typed errors for an empty file, a non-workbook, an old .xls and a too large file', async () => {
    const company = await t.createTestCompany();
    const cases: [Uint8Array<ArrayBuffer>, string][] = [
      [new Uint8Array(0), 'EMPTY_FILE'],
      [new Uint8Array(Buffer.from('Email,userName,reference\na@b.c,A,1\n')), 'NOT_A_WORKBOOK'],
      [new Uint8Array([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1, 0, 0, 0]), 'NOT_A_WORKBOOK'],
      [new Uint8Array(300 * 1024).fill(0x50), 'FILE_TOO_LARGE'],
    ];
    for (const [content, code] of cases) {
      const started = await startImport(company, content, 'bad.xlsx');
      expect(started.code).toBe(code);
      expect(started.message.length).toBeGreaterThan(20);
    }
    const sessions = await t.request(
      company.token,
      '{ importSessions(first: 10) { edges { node { id } } } }',
    );
    expect(sessions.data?.importSessions.edges).toEqual([]);
  });

  it('refuses uploads from a VIEWER token', async () => {
    const company = await t.createTestCompany();
    const { body } = await uploadFile(
      baseUrl,
      company.viewerToken,
      START_IMPORT,
      { input: { file: null } },
      { name: 'users.xlsx', content: await workbookBytes([['Email']]) },
    );
    expect(body.errors[0].extensions.code).toBe('FORBIDDEN');
  });

  it('redoes the read of a session whose worker died, replacing what it staged', async () => {
    const company = await t.createTestCompany();
    const bytes = await workbookBytes([
      ['Email', 'userName', 'reference'],
      ['fay@example.com', 'Fay', 'F1'],
      ['gus@example.com', 'Gus', 'G1'],
    ]);
    const started = await startImport(company, bytes);
    await waitUntilIdle(company, started.id);
    const id = sessionUuid(started.id);
    const attempt = async () =>
      (
        await queryRows<{ attempt: number }>(
          t.db,
          sql`select attempt from import_sessions where id = ${id}`,
        )
      )[0]?.attempt ?? 0;
    const attemptBefore = await attempt();
    // As if a process had claimed the session, staged part of it, and died holding the lease.
    await t.db.delete(importRows).where(eq(importRows.sessionId, id));
    await t.db
      .insert(importRows)
      .values({ sessionId: id, rowNumber: 2, cells: ['stale@example.com', 'S', 'S1'] });
    await t.db
      .update(importSessions)
      .set({
        stage: 'UPLOAD',
        step: 'READ',
        busy: true,
        leaseOwner: 'dead-process',
        leaseExpiresAt: new Date(Date.now() - 1000),
      })
      .where(eq(importSessions.id, id));
    const { last } = await waitUntilIdle(company, started.id);
    expect(last).toMatchObject({ stage: 'REVIEW', rowCount: 2 });
    expect(await stagedCells(id)).toEqual([
      ['fay@example.com', 'Fay', 'F1'],
      ['gus@example.com', 'Gus', 'G1'],
    ]);
    // Claimed again: every claim bumps the attempt, so the dead process's writes would fail.
    expect(await attempt()).toBeGreaterThan(attemptBefore);
  });
});

describe('stage 1: which sheet, and cells the reader cannot read', () => {
  const SHEETS = `query($id: ID!) { importSession(id: $id) {
    stage rowCount sheets { name hasRequiredHeaders read }
    errors(first: 10) { edges { node { rowNumber column columnIndex value code } } }
  } }`;

  async function twoSheets(): Promise<Uint8Array<ArrayBuffer>> {
    const workbook = new ExcelJS.Workbook();
    workbook.addWorksheet('Notes').addRow(['Fill in the users below']);
    workbook.addWorksheet('Old').addRows([
      ['Email', 'userName', 'reference'],
      ['old@example.com', 'Old', 'O1'],
    ]);
    workbook.addWorksheet('New').addRows([
      ['Email', 'userName', 'reference'],
      ['new@example.com', 'New', 'N1'],
      ['newer@example.com', 'Newer', 'N2'],
    ]);
    return new Uint8Array(await workbook.xlsx.writeBuffer());
  }

  it('reads the sheet startImport names and lists every sheet on the session', async () => {
    const company = await t.createTestCompany();
    const { status, body } = await uploadFile(
      baseUrl,
      company.token,
      START_IMPORT,
      { input: { file: null, sheet: 'New' } },
      { name: 'users.xlsx', content: await twoSheets() },
    );
    expect(status, JSON.stringify(body)).toBe(200);
    const id = body.data.startImport.id;
    await waitUntilIdle(company, id);
    const read = await t.request(company.token, SHEETS, { id });
    expect(read.data?.importSession).toMatchObject({
      stage: 'REVIEW',
      rowCount: 2,
      sheets: [
        { name: 'Notes', hasRequiredHeaders: false, read: false },
        { name: 'Old', hasRequiredHeaders: true, read: false },
        { name: 'New', hasRequiredHeaders: true, read: true },
      ],
    });
    expect(await stagedCells(id)).toEqual([
      ['new@example.com', 'New', 'N1'],
      ['newer@example.com', 'Newer', 'N2'],
    ]);
  });

  it('fails with SHEET_NOT_FOUND for a sheet the file lacks', async () => {
    const company = await t.createTestCompany();
    const { body } = await uploadFile(
      baseUrl,
      company.token,
      START_IMPORT,
      { input: { file: null, sheet: 'Staff' } },
      { name: 'users.xlsx', content: await twoSheets() },
    );
    const { last } = await waitUntilIdle(company, body.data.startImport.id);
    expect(last).toMatchObject({ stage: 'FAILED', failure: { code: 'SHEET_NOT_FOUND' } });
    expect(last.failure.message).toContain('"New"');
  });

  it('reports error values and formulas never calculated as row errors of their own', async () => {
    const company = await t.createTestCompany();
    const bytes = await workbookBytes([
      ['Email', 'userName', 'reference'],
      ['ann@example.com', { formula: 'A2&"x"' } as ExcelJS.CellFormulaValue, 'A1'],
      ['bob@example.com', 'Bob', { error: '#N/A' } as ExcelJS.CellErrorValue],
      ['cy@example.com', 'Cy', 'C1'],
    ]);
    const started = await startImport(company, bytes);
    const { last } = await waitUntilIdle(company, started.id);
    expect(last).toMatchObject({ stage: 'VALIDATION', rowCount: 3 });
    const read = await t.request(company.token, SHEETS, { id: started.id });
    const errors = read.data?.importSession.errors.edges.map((edge: any) => edge.node);
    expect(errors).toEqual([
      {
        rowNumber: 2,
        column: 'userName',
        columnIndex: 1,
        value: '=A2&"x"',
        code: 'FORMULA_WITHOUT_VALUE',
      },
      {
        rowNumber: 3,
        column: 'reference',
        columnIndex: 2,
        value: '#N/A',
        code: 'CELL_ERROR_VALUE',
      },
    ]);
  });
});

describe('stage 2: new custom fields', () => {
  async function atCustomFields(company: TestCompany) {
    const bytes = await workbookBytes([
      ['Email', 'userName', 'reference', 'Department', 'Shoe size'],
      ['hal@example.com', 'Hal', 'H1', 'IT', '44'],
    ]);
    const started = await startImport(company, bytes);
    const { last } = await waitUntilIdle(company, started.id);
    expect(last.stage).toBe('CUSTOM_FIELDS');
    return started.id as string;
  }

  const CONFIRM = `mutation($input: ConfirmCustomFieldsInput!) { confirmCustomFields(input: $input) {
    __typename
    ... on ImportSession { stage busy columns { header status field { key label } } }
    ... on Error { code message }
    ... on UnknownHeaderError { headers }
  } }`;

  it('adds the chosen columns as company fields, ignores the others and moves on', async () => {
    const company = await t.createTestCompany();
    const id = await atCustomFields(company);
    const result = await t.request(company.token, CONFIRM, {
      input: { sessionId: id, addToDatabase: [' department '] },
    });
    expect(result.data?.confirmCustomFields).toMatchObject({
      __typename: 'ImportSession',
      stage: 'VALIDATION',
      busy: true,
    });
    expect((await waitUntilIdle(company, id)).last).toMatchObject({ stage: 'REVIEW', busy: false });
    expect(result.data?.confirmCustomFields.columns.slice(3)).toEqual([
      { header: 'Department', status: 'ADDED', field: { key: 'department', label: 'Department' } },
      { header: 'Shoe size', status: 'IGNORED', field: null },
    ]);
    const fields = await t.request(company.token, '{ userFields { label } }');
    expect(fields.data?.userFields.map((field: { label: string }) => field.label)).toEqual([
      'Email',
      'userName',
      'reference',
      'Department',
    ]);
    const again = await t.request(company.token, CONFIRM, {
      input: { sessionId: id, addToDatabase: [] },
    });
    expect(again.data?.confirmCustomFields).toMatchObject({
      __typename: 'WrongStageError',
      code: 'WRONG_STAGE',
    });
  });

  it('refuses headers that are not new columns, changing nothing', async () => {
    const company = await t.createTestCompany();
    const id = await atCustomFields(company);
    const result = await t.request(company.token, CONFIRM, {
      input: { sessionId: id, addToDatabase: ['Department', 'Email', 'Nope'] },
    });
    expect(result.data?.confirmCustomFields).toMatchObject({
      code: 'UNKNOWN_HEADER',
      headers: ['Email', 'Nope'],
    });
    expect((await session(company, id)).stage).toBe('CUSTOM_FIELDS');
    const fields = await t.request(company.token, '{ userFields { label } }');
    expect(fields.data?.userFields).toHaveLength(3);
  });

  it('reports a clash with a field created meanwhile as NameTakenError', async () => {
    const company = await t.createTestCompany();
    const id = await atCustomFields(company);
    await t.request(
      company.token,
      'mutation { createCustomField(input: { label: "DEPARTMENT" }) { __typename } }',
    );
    const result = await t.request(company.token, CONFIRM, {
      input: { sessionId: id, addToDatabase: ['Department'] },
    });
    expect(result.data?.confirmCustomFields.code).toBe('NAME_TAKEN');
  });

  it('cancels at CUSTOM_FIELDS: CANCELLED, staged rows gone, a second cancel refused', async () => {
    const company = await t.createTestCompany();
    const id = await atCustomFields(company);
    const cancel = `mutation($id: ID!) { cancelImport(input: { sessionId: $id }) {
      ... on ImportSession { stage busy } ... on Error { code } } }`;
    const result = await t.request(company.token, cancel, { id });
    expect(result.data?.cancelImport).toEqual({ stage: 'CANCELLED', busy: false });
    expect(await stagedCells(id)).toEqual([]);
    const again = await t.request(company.token, cancel, { id });
    expect(again.data?.cancelImport.code).toBe('WRONG_STAGE');
  });

  it("treats another company's session like one that does not exist", async () => {
    const company = await t.createTestCompany();
    const other = await t.createTestCompany();
    const id = await atCustomFields(company);
    expect(await session(other, id)).toBeNull();
    const confirm = await t.request(other.token, CONFIRM, {
      input: { sessionId: id, addToDatabase: [] },
    });
    expect(confirm.data?.confirmCustomFields.code).toBe('NOT_FOUND');
    const cancel = await t.request(
      other.token,
      'mutation($id: ID!) { cancelImport(input: { sessionId: $id }) { ... on Error { code } } }',
      { id },
    );
    expect(cancel.data?.cancelImport.code).toBe('NOT_FOUND');
    expect((await session(company, id)).stage).toBe('CUSTOM_FIELDS');
    expect(globalId('ImportSession', sessionUuid(id))).toBe(id);
  });
});

describe('template', () => {
  it('downloads the company template through a signed link, and refuses a tampered one', async () => {
    const company = await t.createTestCompany();
    await t.request(
      company.token,
      'mutation { createCustomField(input: { label: "Hire date" }) { __typename } }',
    );
    const result = await t.request(company.token, '{ importTemplate { url fileName expiresAt } }');
    const download = result.data?.importTemplate;
    expect(download.fileName).toBe('import-template.xlsx');
    expect(new Date(download.expiresAt).getTime()).toBeGreaterThan(Date.now());
    const url = new URL(download.url);
    url.host = new URL(baseUrl).host;
    const response = await fetch(url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('spreadsheetml');
    const workbook = new ExcelJS.Workbook();
    await workbook.xlsx.load(await response.arrayBuffer());
    expect(workbook.worksheets[0]?.getRow(1).values).toEqual([
      undefined,
      'Email',
      'userName',
      'reference',
      'Hire date',
    ]);

    const [, , token] = url.pathname.split('/');
    const tampered = new URL(url);
    tampered.pathname = `/downloads/${token?.slice(0, -2)}xx/import-template.xlsx`;
    expect((await fetch(tampered)).status).toBe(404);
  });
});
