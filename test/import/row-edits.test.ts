import ExcelJS from 'exceljs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp, type TestCompany } from '../support/app.js';
import { subscribeSse, uploadFile } from '../support/http.js';
import { importSteps, workbookBytes } from '../support/import-steps.js';

let t: TestApp;
let baseUrl: string;
let steps: ReturnType<typeof importSteps>;
beforeAll(async () => {
  t = await createTestApp();
  baseUrl = await t.listen();
  steps = importSteps(t, baseUrl);
});
afterAll(async () => {
  await t.close();
});

const SESSION = `id stage rowCount validRowCount invalidRowCount
  columns { header status field { key } }
  edits { kind rowCount cellCount tokenId }`;

const ROWS = `query($id: ID!) { importSession(id: $id) { validRowCount invalidRowCount
  rows(first: 50) { edges { node { rowNumber action edited
    values { header value } editedValues { header value fileValue }
    errors { code column value } } } } } }`;

const UPDATE = `mutation($input: UpdateImportRowsInput!) { updateImportRows(input: $input) {
  __typename
  ... on ImportSession { stage validRowCount invalidRowCount }
  ... on Error { code message }
  ... on RowNotFoundError { rowNumbers }
  ... on UnknownHeaderError { headers }
} }`;

const REVERT = `mutation($input: RevertImportRowsInput!) { revertImportRows(input: $input) {
  __typename ... on ImportSession { validRowCount invalidRowCount } ... on Error { code message } } }`;

const REPLACE = `mutation($input: ReplaceInColumnInput!) { replaceInColumn(input: $input) {
  __typename ... on ImportSession { validRowCount invalidRowCount } ... on Error { code message } } }`;

const CONTINUE = `mutation($id: ID!, $stage: ImportStage!) { continueImport(input: { sessionId: $id, stage: $stage }) {
  __typename ... on ImportSession { stage busy } ... on Error { code } } }`;

const FILE: (string | null)[][] = [
  ['Email', 'userName', 'reference'],
  ['a@example.com', 'A', 'R1'], // 2 valid
  ['bad-email', 'B', 'R2'], // 3 INVALID_EMAIL
  ['A@example.com', 'C', 'R3'], // 4 DUPLICATE_IN_FILE of row 2
  ['e@example,com', 'E', 'R5'], // 5 INVALID_EMAIL: a comma for the dot
  ['f@example,com', 'F', 'R6'], // 6 the same
];

async function atValidation(company: TestCompany, rows = FILE, counts = [1, 4]) {
  const started = await steps.startImport(company, rows);
  const session = await steps.waitUntilIdle(company, started.id, SESSION);
  expect(session).toMatchObject({
    stage: 'VALIDATION',
    validRowCount: counts[0],
    invalidRowCount: counts[1],
  });
  return session;
}

async function rowsOf(company: TestCompany, id: string) {
  const { importSession } = await steps.query(company.token, ROWS, { id });
  const rows = new Map<number, any>(
    importSession.rows.edges.map((edge: any) => [edge.node.rowNumber, edge.node]),
  );
  return { session: importSession, rows };
}

const cell = (row: any, header: string) =>
  row.values.find((value: any) => value.header === header).value;

describe('fixing rows in place', () => {
  it('revalidates edited rows at once, rechecking duplicates across the file, and publishes it', async () => {
    const company = await t.createTestCompany();
    const session = await atValidation(company);
    const published = subscribeSse(
      baseUrl,
      company.token,
      'subscription($id: ID!) { importSessionUpdated(id: $id) { validRowCount invalidRowCount } }',
      { id: session.id },
      (event) => event.data?.importSessionUpdated?.validRowCount === 3,
    );
    // Row 2 moves away from the address row 4 repeats: row 4 is no duplicate any more.
    const updated = await steps.mutation(company.token, UPDATE, {
      input: {
        sessionId: session.id,
        rows: [
          { rowNumber: 3, values: [{ header: 'Email', value: 'b@example.com' }] },
          { rowNumber: 2, values: [{ header: 'email', value: 'z@example.com' }] },
        ],
      },
    });
    expect(updated).toEqual({
      __typename: 'ImportSession',
      stage: 'VALIDATION',
      validRowCount: 3,
      invalidRowCount: 2,
    });
    const events = await published;
    expect(events.at(-1).data.importSessionUpdated).toEqual({
      validRowCount: 3,
      invalidRowCount: 2,
    });
    const { rows } = await rowsOf(company, session.id);
    expect(rows.get(3)).toMatchObject({ edited: true, errors: [] });
    expect(rows.get(3).editedValues).toEqual([
      { header: 'Email', value: 'b@example.com', fileValue: 'bad-email' },
    ]);
    expect(rows.get(4).errors).toEqual([]);
    expect(rows.get(4).edited).toBe(false);

    // An edit can make a duplicate too: row 5's reference becomes row 3's.
    const duplicated = await steps.mutation(company.token, UPDATE, {
      input: {
        sessionId: session.id,
        rows: [
          { rowNumber: 5, values: [{ header: 'Email', value: 'e@example.com' }] },
          { rowNumber: 5, values: [{ header: 'reference', value: 'R2' }] },
        ],
      },
    });
    expect(duplicated).toMatchObject({ validRowCount: 3, invalidRowCount: 2 });
    const afterDuplicate = await rowsOf(company, session.id);
    expect(afterDuplicate.rows.get(5).errors).toEqual([
      { code: 'DUPLICATE_IN_FILE', column: 'reference', value: 'R2' },
    ]);

    // Reverting row 2 brings its address back, and row 4's duplicate with it.
    const reverted = await steps.mutation(company.token, REVERT, {
      input: { sessionId: session.id, rowNumbers: [2, 4] },
    });
    expect(reverted).toMatchObject({ validRowCount: 2, invalidRowCount: 3 });
    const afterRevert = await rowsOf(company, session.id);
    expect(afterRevert.rows.get(2)).toMatchObject({ edited: false, editedValues: [] });
    expect(cell(afterRevert.rows.get(2), 'Email')).toBe('a@example.com');
    expect(afterRevert.rows.get(4).errors.map((error: any) => error.code)).toEqual([
      'DUPLICATE_IN_FILE',
    ]);

    const { importSession } = await steps.query(
      company.token,
      `query($id: ID!) { importSession(id: $id) { errors(first: 20) { edges { node { rowNumber code } } } } }`,
      { id: session.id },
    );
    expect(importSession.errors.edges.map((edge: any) => edge.node)).toEqual([
      { rowNumber: 4, code: 'DUPLICATE_IN_FILE' },
      { rowNumber: 5, code: 'DUPLICATE_IN_FILE' },
      { rowNumber: 6, code: 'INVALID_EMAIL' },
    ]);
  });

  it('keeps the duplicates an edit does not touch, of rows it finds by another key', async () => {
    const company = await t.createTestCompany();
    const session = await atValidation(
      company,
      [
        ['Email', 'userName', 'reference'],
        ['a@example.com', 'A', 'R1'], // 2 valid
        ['A@example.com', 'B', 'R2'], // 3 DUPLICATE_IN_FILE of row 2 by its email
        ['c@example.com', 'C', 'R4'], // 4 valid
      ],
      [2, 1],
    );
    // Row 4 takes row 3's reference: the edit finds row 3 by that reference, and row 3 still
    // repeats row 2's email, which the edit did not touch.
    const updated = await steps.mutation(company.token, UPDATE, {
      input: {
        sessionId: session.id,
        rows: [{ rowNumber: 4, values: [{ header: 'reference', value: 'R2' }] }],
      },
    });
    expect(updated).toMatchObject({ validRowCount: 1, invalidRowCount: 2 });
    const { rows } = await rowsOf(company, session.id);
    expect(rows.get(3).errors).toEqual([
      { code: 'DUPLICATE_IN_FILE', column: 'Email', value: 'A@example.com' },
    ]);
    expect(rows.get(4).errors).toEqual([
      { code: 'DUPLICATE_IN_FILE', column: 'reference', value: 'R2' },
    ]);
  });

  it('replaces in a column, set-based, and audits every fix on the session', async () => {
    const company = await t.createTestCompany();
    const session = await atValidation(company);
    const replaced = await steps.mutation(company.token, REPLACE, {
      input: { sessionId: session.id, header: 'Email', find: ',com', replace: '.com' },
    });
    expect(replaced).toEqual({ __typename: 'ImportSession', validRowCount: 3, invalidRowCount: 2 });
    const { rows } = await rowsOf(company, session.id);
    expect(cell(rows.get(5), 'Email')).toBe('e@example.com');
    expect(rows.get(6).editedValues).toEqual([
      { header: 'Email', value: 'f@example.com', fileValue: 'f@example,com' },
    ]);
    expect(rows.get(2).edited).toBe(false);

    const emptyFind = await t.request(company.token, REPLACE, {
      input: { sessionId: session.id, header: 'Email', find: '', replace: 'x' },
    });
    expect(emptyFind.data?.replaceInColumn.__typename).toBe('InvalidInputError');
    const unknown = await steps.mutation(company.token, REPLACE, {
      input: { sessionId: session.id, header: 'Mail', find: 'a', replace: 'b' },
    });
    expect(unknown.__typename).toBe('UnknownHeaderError');

    await steps.mutation(company.token, UPDATE, {
      input: {
        sessionId: session.id,
        rows: [
          {
            rowNumber: 3,
            values: [
              { header: 'Email', value: 'b@example.com' },
              { header: 'userName', value: 'Bee' },
            ],
          },
        ],
      },
    });
    const after = await steps.query(
      company.token,
      `query($id: ID!) { importSession(id: $id) { ${SESSION} } }`,
      {
        id: session.id,
      },
    );
    expect(
      after.importSession.edits.map((edit: any) => [edit.kind, edit.rowCount, edit.cellCount]),
    ).toEqual([
      ['REPLACE_IN_COLUMN', 2, 2],
      ['UPDATE_ROWS', 1, 2],
    ]);
    for (const edit of after.importSession.edits) expect(edit.tokenId).toEqual(expect.any(String));
  });

  it('has a replace over many rows validated in the background, as validation does it', async () => {
    const company = await t.createTestCompany();
    // More rows than LARGE_REPLACE_ROWS, every one with a comma for the dot.
    const rows = Array.from({ length: 5100 }, (_, i) => [`u${i}@example,com`, `U${i}`, `R${i}`]);
    const session = await atValidation(
      company,
      [['Email', 'userName', 'reference'], ...rows],
      [0, 5100],
    );
    const replaced = await steps.mutation(
      company.token,
      `mutation($input: ReplaceInColumnInput!) { replaceInColumn(input: $input) {
        __typename ... on ImportSession { stage busy } ... on Error { code message } } }`,
      { input: { sessionId: session.id, header: 'Email', find: ',com', replace: '.com' } },
    );
    // Answered at once, busy: the file is validated again in the background.
    expect(replaced).toEqual({ __typename: 'ImportSession', stage: 'VALIDATION', busy: true });
    const done = await steps.waitUntilIdle(company, session.id, SESSION);
    // No row has an error any more: on to the review, as a file without errors goes.
    expect(done).toMatchObject({ stage: 'REVIEW', validRowCount: 5100, invalidRowCount: 0 });
    expect(done.edits).toEqual([
      expect.objectContaining({ kind: 'REPLACE_IN_COLUMN', rowCount: 5100, cellCount: 5100 }),
    ]);
  });

  it('refuses bad edits with typed errors and changes nothing', async () => {
    const company = await t.createTestCompany();
    const session = await atValidation(company);
    const update = (token: string, rows: unknown[]) =>
      t.request(token, UPDATE, { input: { sessionId: session.id, rows } });
    const good = { rowNumber: 3, values: [{ header: 'Email', value: 'b@example.com' }] };

    const missingRow = await update(company.token, [
      good,
      { rowNumber: 99, values: [{ header: 'Email', value: 'x@example.com' }] },
    ]);
    expect(missingRow.data?.updateImportRows).toMatchObject({
      __typename: 'RowNotFoundError',
      code: 'ROW_NOT_FOUND',
      rowNumbers: [99],
    });
    const header = await update(company.token, [
      { rowNumber: 3, values: [{ header: 'Phone', value: '1' }] },
    ]);
    expect(header.data?.updateImportRows).toMatchObject({
      __typename: 'UnknownHeaderError',
      headers: ['Phone'],
    });
    const tooMany = await update(company.token, [
      {
        rowNumber: 3,
        values: Array.from({ length: 1001 }, () => ({ header: 'Email', value: 'x' })),
      },
    ]);
    expect(tooMany.data?.updateImportRows.__typename).toBe('EditTooLargeError');
    const revertMissing = await steps.mutation(company.token, REVERT, {
      input: { sessionId: session.id, rowNumbers: [1] },
    });
    expect(revertMissing.code).toBe('ROW_NOT_FOUND');

    const viewer = await update(company.viewerToken, [good]);
    expect(viewer.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const other = await t.createTestCompany();
    const foreign = await update(other.token, [good]);
    expect(foreign.data?.updateImportRows.__typename).toBe('NotFoundError');

    const { session: unchanged, rows } = await rowsOf(company, session.id);
    expect(unchanged).toMatchObject({ validRowCount: 1, invalidRowCount: 4 });
    expect(cell(rows.get(3), 'Email')).toBe('bad-email');
    const { importSession } = await steps.query(
      company.token,
      'query($id: ID!) { importSession(id: $id) { edits { kind } } }',
      { id: session.id },
    );
    expect(importSession.edits).toEqual([]);
  });

  it('is safe against a continue: an edit either lands before it or is refused, typed', async () => {
    const company = await t.createTestCompany();
    const session = await atValidation(company);
    const edit = (value: string) =>
      t.request(company.token, UPDATE, {
        input: {
          sessionId: session.id,
          rows: [{ rowNumber: 3, values: [{ header: 'userName', value }] }],
        },
      });
    const [edited, continued] = await Promise.all([
      edit('Raced'),
      t.request(company.token, CONTINUE, { id: session.id, stage: 'VALIDATION' }),
    ]);
    expect(continued.data?.continueImport).toMatchObject({
      __typename: 'ImportSession',
      stage: 'REVIEW',
    });
    const editResult = edited.data?.updateImportRows;
    // Right after the continue, the session is busy: a further edit waits its turn, typed.
    const busy = await edit('Too soon');
    expect(['SESSION_BUSY', 'WRONG_STAGE']).toContain(busy.data?.updateImportRows.code);

    await steps.waitUntilIdle(company, session.id, 'stage');
    const { rows } = await rowsOf(company, session.id);
    if (editResult.__typename === 'ImportSession') {
      expect(cell(rows.get(3), 'userName')).toBe('Raced');
    } else {
      expect(['SESSION_BUSY', 'WRONG_STAGE']).toContain(editResult.code);
      expect(cell(rows.get(3), 'userName')).toBe('B');
    }
    expect(cell(rows.get(3), 'userName')).not.toBe('Too soon');
  });

  it('edits at REVIEW relabel the row, and the imported-users report marks the edited cells', async () => {
    const company = await t.createTestCompany();
    const session = await atValidation(
      company,
      [
        ['Email', 'userName', 'reference'],
        ['a@example.com', 'A', 'R1'],
        ['b@example.com', 'B', 'R2'],
        ['bad', 'X', 'R3'],
      ],
      [2, 1],
    );
    await steps.mutation(company.token, CONTINUE, { id: session.id, stage: 'VALIDATION' });
    const review = await steps.waitUntilIdle(company, session.id, 'stage validRowCount');
    expect(review).toMatchObject({ stage: 'REVIEW', validRowCount: 2 });

    const broken = await steps.mutation(company.token, UPDATE, {
      input: {
        sessionId: session.id,
        rows: [{ rowNumber: 2, values: [{ header: 'Email', value: 'b@example.com' }] }],
      },
    });
    expect(broken).toMatchObject({ stage: 'REVIEW', validRowCount: 1, invalidRowCount: 2 });
    let { rows } = await rowsOf(company, session.id);
    // Row 2 now has row 3's address: row 3, the later one, is the duplicate.
    expect(rows.get(2).action).toBe('CREATE');
    expect(rows.get(3).action).toBe('SKIP');
    expect(rows.get(3).errors.map((error: any) => error.code)).toEqual(['DUPLICATE_IN_FILE']);

    const fixed = await steps.mutation(company.token, UPDATE, {
      input: {
        sessionId: session.id,
        rows: [
          {
            rowNumber: 2,
            values: [
              { header: 'Email', value: 'c@example.com' },
              { header: 'userName', value: 'Cee' },
            ],
          },
        ],
      },
    });
    expect(fixed).toMatchObject({ validRowCount: 2, invalidRowCount: 1 });
    ({ rows } = await rowsOf(company, session.id));
    expect(rows.get(3).action).toBe('CREATE');

    const { importSession } = await steps.query(
      company.token,
      'query($id: ID!) { importSession(id: $id) { importedUsersReport { url } } }',
      { id: session.id },
    );
    const link = new URL(importSession.importedUsersReport.url);
    const response = await fetch(`${baseUrl}${link.pathname}${link.search}`);
    expect(response.status).toBe(200);
    const workbook = new ExcelJS.Workbook();
    await workbook.xlsx.load(await response.arrayBuffer());
    const sheet = workbook.getWorksheet('Users');
    if (!sheet) throw new Error('no Users sheet');
    const edited = sheet.getRow(2);
    expect(edited.getCell(1).value).toBe(2);
    expect(edited.getCell(2).value).toBe('c@example.com');
    expect(JSON.stringify(edited.getCell(2).note)).toContain('a@example.com');
    expect((edited.getCell(2).fill as ExcelJS.FillPattern).pattern).toBe('solid');
    expect(JSON.stringify(edited.getCell(3).note)).toContain('The file had: A');
    expect(edited.getCell(4).note).toBeUndefined();
    const untouched = sheet.getRow(3);
    expect(untouched.getCell(2).value).toBe('b@example.com');
    expect(untouched.getCell(2).note).toBeUndefined();
  });

  it('takes a corrected file into the same session, keeping the stage-2 decisions', async () => {
    const company = await t.createTestCompany();
    const started = await steps.startImport(company, [
      ['Kontakt', 'Name', 'Personalnummer', 'Notizen'],
      ['anna@example.com', 'Anna', 'P-1', 'x'],
      ['not-an-address', 'Bert', 'P-2', 'y'],
    ]);
    const atColumns = await steps.waitUntilIdle(company, started.id, 'stage');
    expect(atColumns.stage).toBe('CUSTOM_FIELDS');
    const confirmed = await steps.mutation(
      company.token,
      `mutation($input: ConfirmColumnsInput!) { confirmColumns(input: $input) { __typename } }`,
      {
        input: {
          sessionId: started.id,
          columns: [
            { header: 'Kontakt', action: 'MAP', fieldKey: 'email' },
            { header: 'Name', action: 'MAP', fieldKey: 'userName' },
            { header: 'Personalnummer', action: 'MAP', fieldKey: 'reference' },
            { header: 'Notizen', action: 'IGNORE' },
          ],
        },
      },
    );
    expect(confirmed.__typename).toBe('ImportSession');
    const validated = await steps.waitUntilIdle(company, started.id, SESSION);
    expect(validated).toMatchObject({ stage: 'VALIDATION', invalidRowCount: 1 });

    const REPLACE_FILE = `mutation($input: ReplaceImportFileInput!) { replaceImportFile(input: $input) {
        __typename ... on ImportSession { stage busy fileName } ... on Error { code message } } }`;
    const other = await t.createTestCompany();
    const foreign = await uploadFile(
      baseUrl,
      other.token,
      REPLACE_FILE,
      { input: { sessionId: started.id, file: null } },
      { name: 'theirs.xlsx', content: await workbookBytes([['Email'], ['x@example.com']]) },
    );
    expect(foreign.body.data.replaceImportFile.__typename).toBe('NotFoundError');
    const { status, body } = await uploadFile(
      baseUrl,
      company.token,
      REPLACE_FILE,
      { input: { sessionId: started.id, file: null } },
      {
        name: 'users-fixed.xlsx',
        content: await workbookBytes([
          ['Kontakt', 'Name', 'Personalnummer', 'Notizen'],
          ['anna@example.com', 'Anna', 'P-1', 'x'],
          ['bert@example.com', 'Bert', 'P-2', 'y'],
          ['carl@example.com', 'Carl', 'P-3', 'z'],
        ]),
      },
    );
    expect(status).toBe(200);
    expect(body.data.replaceImportFile).toEqual({
      __typename: 'ImportSession',
      stage: 'UPLOAD',
      busy: true,
      fileName: 'users-fixed.xlsx',
    });
    const reread = await steps.waitUntilIdle(company, started.id, SESSION);
    expect(reread).toMatchObject({
      stage: 'REVIEW',
      rowCount: 3,
      validRowCount: 3,
      invalidRowCount: 0,
    });
    expect(reread.columns.map((c: any) => [c.header, c.status, c.field?.key ?? null])).toEqual([
      ['Kontakt', 'MAPPED', 'email'],
      ['Name', 'MAPPED', 'userName'],
      ['Personalnummer', 'MAPPED', 'reference'],
      ['Notizen', 'IGNORED', null],
    ]);
    expect(reread.edits.map((edit: any) => edit.kind)).toEqual(['REPLACE_FILE']);
  });
});
