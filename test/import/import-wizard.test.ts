import { decodeGlobalID } from '@pothos/plugin-relay';
import { sql } from 'drizzle-orm';
import ExcelJS from 'exceljs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CancelImportDocument,
  CreateCustomFieldDocument,
  CreateDistributionRuleDocument,
  CreateTrainingGroupDocument,
  ImportErrorsDocument,
  type ImportErrorsQuery,
  ImportGroupAssignmentDocument,
  ImportReportsDocument,
  type ImportRowFilter,
  ImportRowsDocument,
  type ImportStage,
  ReorderDistributionRulesDocument,
  UsersDocument,
} from '../../client/index.js';
import { queryRows } from '../../drizzle/client.js';
import { users } from '../../drizzle/tables.js';
import {
  createTestApp,
  type GraphQLResponse,
  type TestApp,
  type TestCompany,
} from '../support/app.js';
import { type ImportSteps, importSteps } from '../support/import-steps.js';

let t: TestApp;
let baseUrl: string;
let steps: ImportSteps;
beforeAll(async () => {
  t = await createTestApp();
  baseUrl = await t.listen();
  steps = importSteps(t, baseUrl);
});
afterAll(async () => {
  await t.close();
});

const waitUntilIdle = (company: TestCompany, id: string) => steps.waitUntilIdle(company, id);
const continueFrom = (company: TestCompany, id: string, stage: ImportStage) =>
  steps.continueFrom(company, id, stage);

/** Succeeds or throws with the answer: for setting up data through the API. */
async function mutate(
  company: TestCompany,
  document: Parameters<ImportSteps['mutation']>[1],
  variables: Record<string, unknown> = {},
) {
  const payload = await steps.mutation(company.token, document, variables);
  if (!payload || payload.code) throw new Error(`mutation failed: ${JSON.stringify(payload)}`);
  return payload;
}

/** A company with a custom field, two groups, two rules and two existing users. */
async function companyWithSettings() {
  const company = await t.createTestCompany();
  const department = await mutate(company, CreateCustomFieldDocument, {
    input: { label: 'Department' },
  });
  const sales = await mutate(company, CreateTrainingGroupDocument, { input: { name: 'Sales' } });
  const support = await mutate(company, CreateTrainingGroupDocument, {
    input: { name: 'Support' },
  });
  const bySalesDepartment = await mutate(company, CreateDistributionRuleDocument, {
    input: {
      fieldKey: department.key,
      operator: 'EQUALS',
      value: 'SALES',
      trainingGroupId: sales.id,
    },
  });
  const bySupportEmail = await mutate(company, CreateDistributionRuleDocument, {
    input: {
      fieldKey: 'email',
      operator: 'CONTAINS',
      value: 'support',
      trainingGroupId: support.id,
    },
  });
  const supportGroupRow = await t.db.query.trainingGroups.findFirst({
    where: { companyId: company.companyId, name: 'Support' },
  });
  await t.db.insert(users).values([
    {
      companyId: company.companyId,
      email: 'Old@Example.com',
      userName: 'Old',
      reference: 'R-OLD',
      customValues: { department: 'Legacy' },
    },
    {
      companyId: company.companyId,
      email: 'other@example.com',
      userName: 'Other',
      reference: 'R-OTHER',
    },
    {
      companyId: company.companyId,
      email: 'keep@example.com',
      userName: 'Keep',
      reference: 'R-KEEP',
      trainingGroupId: supportGroupRow?.id,
    },
  ]);
  return {
    company,
    rules: { bySalesDepartment: bySalesDepartment.id, bySupportEmail: bySupportEmail.id },
  };
}

const FILE: (string | null)[][] = [
  ['Email', 'userName', 'reference', 'Department'],
  ['new1@example.com', 'New One', 'R1', 'Sales'], // 2 CREATE → Sales
  ['OLD@example.com', 'Old Renamed', 'R-OLD', null], // 3 UPDATE userName; Department kept
  ['not-an-email', '=SUM(1,2)', 'R4', null], // 4 INVALID_EMAIL; a would-be formula
  ['New1@Example.com', 'Dup', 'R5', null], // 5 DUPLICATE_IN_FILE of row 2 (email)
  ['dupref@example.com', 'Y', 'R1', null], // 6 DUPLICATE_IN_FILE of row 2 (reference)
  ['taker@example.com', 'Z', 'R-OTHER', null], // 7 REFERENCE_TAKEN
  ['keep@example.com', 'Keep', 'R-KEEP', null], // 8 UNCHANGED, keeps Support
  [null, 'Q', 'R9', null], // 9 REQUIRED
  ['ann+tag@support.example.co.uk', 'Ann', 'R10', 'sales'], // 10 CREATE: both rules match
];

async function startAndValidate(company: TestCompany, file = FILE) {
  const { id } = await steps.startImport(company, file);
  const validated = await waitUntilIdle(company, id);
  return { id, validated };
}

/** Uploads FILE and continues it as-is to GROUP_ASSIGNMENT, waiting there; returns its id. */
async function importToGroupAssignment(company: TestCompany): Promise<string> {
  const { id } = await startAndValidate(company);
  await steps.continueThrough(company, id, ['VALIDATION', 'REVIEW']);
  return id;
}

/** Commits a session waiting at GROUP_ASSIGNMENT and returns the session once idle. */
async function commit(company: TestCompany, id: string) {
  await continueFrom(company, id, 'GROUP_ASSIGNMENT');
  return waitUntilIdle(company, id);
}

/** FILE committed the first time into companyWithSettings(): rows 2 and 10 are new, 3 changes. */
const ADDED = { created: 2, updated: 1, unchanged: 1, skipped: 5, archived: 0, restored: 0 };
/** FILE committed again: nothing changes. */
const UNCHANGED = { created: 0, updated: 0, unchanged: 4, skipped: 5, archived: 0, restored: 0 };

/** A page of the session's staged rows, as the client's review screen reads them. */
async function rowsOf(company: TestCompany, id: string, first: number, filter?: ImportRowFilter) {
  const result = await t.send(company.token, ImportRowsDocument, { id, first, filter });
  expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
  return (result.data?.importSession?.rows.edges ?? []).map((edge) => edge.node);
}

/** Each staged row's action and group, by row number: "CREATE Sales", "UPDATE -". */
async function previewOf(company: TestCompany, id: string): Promise<Record<string, string>> {
  return Object.fromEntries(
    (await rowsOf(company, id, 20)).map((node) => [
      node.rowNumber,
      `${node.action} ${node.trainingGroup?.name ?? '-'}`,
    ]),
  );
}

/** How many rows of a session are staged, and how many have a preview. */
async function stagedCounts(id: string): Promise<{ rows: number; previews: number }> {
  const sessionId = decodeGlobalID(id).id;
  const [counts] = await queryRows<{ rows: number; previews: number }>(
    t.db,
    sql`select (select count(*)::int from import_rows where session_id = ${sessionId}) as rows,
      (select count(*)::int from import_row_previews where session_id = ${sessionId}) as previews`,
  );
  return counts ?? { rows: -1, previews: -1 };
}

/** GETs a signed link over real HTTP (no token) and opens the .xlsx. */
async function downloadSheet(url: string): Promise<ExcelJS.Worksheet> {
  const link = new URL(url);
  link.host = new URL(baseUrl).host;
  const response = await fetch(link);
  expect(response.status).toBe(200);
  const workbook = new ExcelJS.Workbook();
  await workbook.xlsx.load(await response.arrayBuffer());
  const [sheet] = workbook.worksheets;
  if (!sheet) throw new Error('no sheet in the download');
  return sheet;
}

/** The company's users with the fields an import sets. */
async function companyUsers(company: TestCompany) {
  const result = await t.send(company.token, UsersDocument, { first: 50 });
  expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
  return result.data?.users.edges.map(({ node }) => ({
    email: node.email,
    userName: node.userName,
    reference: node.reference,
    customFieldValues: node.customFieldValues.map(({ fieldKey, value }) => ({ fieldKey, value })),
    trainingGroup: node.trainingGroup && { name: node.trainingGroup.name },
  }));
}

describe('the import wizard, end to end', () => {
  it('validates, reviews, assigns groups and commits exactly what was previewed', async () => {
    const { company, rules } = await companyWithSettings();
    const { id, validated } = await startAndValidate(company);
    expect(validated).toMatchObject({
      stage: 'VALIDATION',
      busy: false,
      rowCount: 9,
      validRowCount: 4,
      invalidRowCount: 5,
    });

    // Stage 3: every error with its row, column, value, code and message, paged by keyset.
    const errors: any[] = [];
    let after: string | null = null;
    do {
      const page: GraphQLResponse<ImportErrorsQuery> = await t.send(
        company.token,
        ImportErrorsDocument,
        { id, first: 3, after },
      );
      const connection = page.data?.importSession?.errors;
      if (!connection) throw new Error(JSON.stringify(page));
      errors.push(...connection.edges.map((edge) => edge.node));
      after = connection.pageInfo.hasNextPage ? connection.pageInfo.endCursor : null;
    } while (after);
    expect(errors.map((error) => [error.rowNumber, error.column, error.code])).toEqual([
      [4, 'Email', 'INVALID_EMAIL'],
      [5, 'Email', 'DUPLICATE_IN_FILE'],
      [6, 'reference', 'DUPLICATE_IN_FILE'],
      [7, 'reference', 'REFERENCE_TAKEN'],
      [9, 'Email', 'REQUIRED'],
    ]);
    expect(errors[0]).toMatchObject({ value: 'not-an-email', columnIndex: 0 });
    expect(errors[1].message).toContain('row 2');
    expect(errors[2].message).toContain('row 2');
    expect(errors[3].message).toContain('other@example.com');

    // A stale call is refused and changes nothing.
    expect(await continueFrom(company, id, 'REVIEW')).toMatchObject({ code: 'WRONG_STAGE' });

    // Continue as-is: stage 4 labels the valid rows.
    expect(await continueFrom(company, id, 'VALIDATION')).toMatchObject({
      stage: 'REVIEW',
      busy: true,
    });
    expect(await waitUntilIdle(company, id)).toMatchObject({ stage: 'REVIEW', busy: false });
    const reviewed = await rowsOf(company, id, 50, { withErrors: false });
    const actions = reviewed.map((node) => [node.rowNumber, node.action]);
    expect(actions).toEqual([
      [2, 'CREATE'],
      [3, 'UPDATE'],
      [8, 'UNCHANGED'],
      [10, 'CREATE'],
    ]);
    const updates = await rowsOf(company, id, 50, { action: 'UPDATE' });
    expect(
      updates[0]?.changes.map(({ field, from, to }) => ({ field: { key: field.key }, from, to })),
    ).toEqual([{ field: { key: 'userName' }, from: 'Old', to: 'Old Renamed' }]);
    const skipped = await rowsOf(company, id, 50, { action: 'SKIP' });
    expect(skipped).toHaveLength(5);

    // Stage 5: first matching rule wins; existing users keep their group.
    expect(await continueFrom(company, id, 'REVIEW')).toMatchObject({ stage: 'GROUP_ASSIGNMENT' });
    await waitUntilIdle(company, id);
    const groupsOf = async () =>
      Object.fromEntries(
        (await rowsOf(company, id, 50, { withErrors: false })).map((node) => [
          node.rowNumber,
          node.trainingGroup?.name ?? null,
        ]),
      );
    expect(await groupsOf()).toEqual({ 2: 'Sales', 3: null, 8: 'Support', 10: 'Sales' });
    const counts = await t.send(company.token, ImportGroupAssignmentDocument, { id });
    expect(
      counts.data?.importSession?.groupAssignment.map(({ trainingGroup, userCount }) => ({
        trainingGroup: trainingGroup && { name: trainingGroup.name },
        userCount,
      })),
    ).toEqual(
      expect.arrayContaining([
        { trainingGroup: { name: 'Sales' }, userCount: 2 },
        { trainingGroup: { name: 'Support' }, userCount: 1 },
        { trainingGroup: null, userCount: 1 },
      ]),
    );

    // Reordering the rules at stage 5 recomputes the preview.
    await mutate(company, ReorderDistributionRulesDocument, {
      input: { ruleIds: [rules.bySupportEmail, rules.bySalesDepartment] },
    });
    await waitUntilIdle(company, id);
    expect(await groupsOf()).toEqual({ 2: 'Sales', 3: null, 8: 'Support', 10: 'Support' });

    // The commit.
    expect(await continueFrom(company, id, 'GROUP_ASSIGNMENT')).toMatchObject({
      stage: 'GROUP_ASSIGNMENT',
      busy: true,
    });
    const committed = await waitUntilIdle(company, id);
    expect(committed).toMatchObject({ stage: 'COMPLETED', result: ADDED });
    expect(await continueFrom(company, id, 'GROUP_ASSIGNMENT')).toMatchObject({
      code: 'WRONG_STAGE',
    });

    const after_ = await companyUsers(company);
    expect(after_).toEqual([
      {
        email: 'ann+tag@support.example.co.uk',
        userName: 'Ann',
        reference: 'R10',
        customFieldValues: [{ fieldKey: 'department', value: 'sales' }],
        trainingGroup: { name: 'Support' },
      },
      {
        email: 'keep@example.com',
        userName: 'Keep',
        reference: 'R-KEEP',
        customFieldValues: [],
        trainingGroup: { name: 'Support' },
      },
      {
        email: 'new1@example.com',
        userName: 'New One',
        reference: 'R1',
        customFieldValues: [{ fieldKey: 'department', value: 'Sales' }],
        trainingGroup: { name: 'Sales' },
      },
      {
        email: 'Old@Example.com',
        userName: 'Old Renamed',
        reference: 'R-OLD',
        customFieldValues: [{ fieldKey: 'department', value: 'Legacy' }],
        trainingGroup: null,
      },
      {
        email: 'other@example.com',
        userName: 'Other',
        reference: 'R-OTHER',
        customFieldValues: [],
        trainingGroup: null,
      },
    ]);
  });

  it('serves the error report and the imported-users report as signed .xlsx downloads', async () => {
    const { company } = await companyWithSettings();
    const { id } = await startAndValidate(company);
    const atValidation = await t.send(company.token, ImportReportsDocument, { id });
    expect(atValidation.data?.importSession?.importedUsersReport).toBeNull();
    const errorReport = atValidation.data?.importSession?.errorReport;
    if (!errorReport) throw new Error(JSON.stringify(atValidation));
    expect(errorReport.fileName).toBe('users-errors.xlsx');

    const sheet = await downloadSheet(errorReport.url);
    expect(sheet.getRow(1).values).toEqual([
      undefined,
      'Row',
      'Email',
      'userName',
      'reference',
      'Department',
      'Errors',
    ]);
    const rowNumbers = [];
    for (let row = 2; row <= sheet.rowCount; row++)
      rowNumbers.push(sheet.getRow(row).getCell(1).value);
    expect(rowNumbers).toEqual([4, 5, 6, 7, 9]);
    const invalidEmailRow = sheet.getRow(2);
    expect(invalidEmailRow.getCell(2).value).toBe('not-an-email');
    expect((invalidEmailRow.getCell(2).fill as ExcelJS.FillPattern).fgColor?.argb).toBe('FFFFC7CE');
    expect(JSON.stringify(invalidEmailRow.getCell(2).note)).toContain('not a valid email address');
    expect(invalidEmailRow.getCell(3).fill).toBeUndefined();
    expect(String(invalidEmailRow.getCell(6).value)).toContain(
      'Email: not-an-email is not a valid email address.',
    );
    // Formula injection: the would-be formula comes back as inert text.
    expect(invalidEmailRow.getCell(3).formula).toBeUndefined();
    expect(invalidEmailRow.getCell(3).value).toBe("'=SUM(1,2)");

    await continueFrom(company, id, 'VALIDATION');
    await waitUntilIdle(company, id);
    const atReview = await t.send(company.token, ImportReportsDocument, { id });
    const usersSheet = await downloadSheet(
      atReview.data?.importSession?.importedUsersReport?.url as string,
    );
    expect(usersSheet.getRow(1).values).toEqual([
      undefined,
      'Row',
      'Email',
      'userName',
      'reference',
      'Department',
      'Action',
      'Training group',
    ]);
    const actions = [];
    for (let row = 2; row <= usersSheet.rowCount; row++) {
      actions.push([
        usersSheet.getRow(row).getCell(1).value,
        usersSheet.getRow(row).getCell(6).value,
      ]);
    }
    expect(actions).toEqual([
      [2, 'CREATE'],
      [3, 'UPDATE'],
      [8, 'UNCHANGED'],
      [10, 'CREATE'],
    ]);

    const other = await t.createTestCompany();
    const foreign = await t.send(other.token, ImportReportsDocument, { id });
    expect(foreign.data?.importSession).toBeNull();
  });

  it('imports the same file a second time as all unchanged, creating no duplicates', async () => {
    const { company } = await companyWithSettings();
    for (const expected of [ADDED, UNCHANGED]) {
      const id = await importToGroupAssignment(company);
      expect((await commit(company, id)).result).toEqual(expected);
    }
    expect(await companyUsers(company)).toHaveLength(5);
  });

  it('recomputes the preview of an open import when another import changed the users', async () => {
    const { company } = await companyWithSettings();
    const actions = (id: string) => previewOf(company, id);

    const first = await importToGroupAssignment(company);
    const previewed = await actions(first);
    expect(previewed).toMatchObject({ 2: 'CREATE Sales', 3: 'UPDATE -', 10: 'CREATE Sales' });

    // A second import of the same file commits first: rows 2, 3 and 10 are now users as is.
    const second = await importToGroupAssignment(company);
    expect((await commit(company, second)).result).toEqual(ADDED);

    // The first import, still open, is recomputed: it shows what its commit would do now.
    await waitUntilIdle(company, first);
    expect(await actions(first)).toMatchObject({
      2: 'UNCHANGED Sales',
      3: 'UNCHANGED -',
      8: 'UNCHANGED Support',
      10: 'UNCHANGED Sales',
    });
    expect((await commit(company, first)).result).toEqual(UNCHANGED);
  });

  it('relabels at the review what validation previewed when the users changed since', async () => {
    const { company } = await companyWithSettings();
    const { id: first } = await startAndValidate(company);
    // Validation previews the actions along with the errors.
    expect(await previewOf(company, first)).toMatchObject({
      2: 'CREATE Sales',
      3: 'UPDATE -',
      4: 'SKIP -',
    });

    const second = await importToGroupAssignment(company);
    expect((await commit(company, second)).stage).toBe('COMPLETED');

    await continueFrom(company, first, 'VALIDATION');
    expect(await waitUntilIdle(company, first)).toMatchObject({ stage: 'REVIEW' });
    expect(await previewOf(company, first)).toMatchObject({
      2: 'UNCHANGED Sales',
      3: 'UNCHANGED -',
      4: 'SKIP -',
      8: 'UNCHANGED Support',
      10: 'UNCHANGED Sales',
    });
  });

  it('regroups at the group preview what validation previewed when the rules changed since', async () => {
    const { company, rules } = await companyWithSettings();
    const { id } = await startAndValidate(company);
    expect(await previewOf(company, id)).toMatchObject({ 10: 'CREATE Sales' });
    await continueFrom(company, id, 'VALIDATION');
    await waitUntilIdle(company, id);

    // Not at GROUP_ASSIGNMENT yet, so nothing is recomputed now, but the next step sees it.
    await mutate(company, ReorderDistributionRulesDocument, {
      input: { ruleIds: [rules.bySupportEmail, rules.bySalesDepartment] },
    });
    expect(await previewOf(company, id)).toMatchObject({ 10: 'CREATE Sales' });
    await continueFrom(company, id, 'REVIEW');
    await waitUntilIdle(company, id);
    expect(await previewOf(company, id)).toMatchObject({
      2: 'CREATE Sales',
      3: 'UPDATE -',
      10: 'CREATE Support',
    });
  });

  it('commits only what changes, and gives a group to an unchanged user who had none', async () => {
    const { company } = await companyWithSettings();
    await t.db.insert(users).values({
      companyId: company.companyId,
      email: 'solo@support.example.com',
      userName: 'Solo',
      reference: 'R-SOLO',
    });
    const { id } = await startAndValidate(company, [
      ['Email', 'userName', 'reference'],
      ['solo@support.example.com', 'Solo', 'R-SOLO'], // same values, no group yet
      ['keep@example.com', 'Keep', 'R-KEEP'], // same values, has a group
      ['new2@example.com', 'New Two', 'R2'],
    ]);
    await steps.continueThrough(company, id, ['REVIEW', 'GROUP_ASSIGNMENT']);
    expect(await previewOf(company, id)).toEqual({
      2: 'UNCHANGED Support',
      3: 'UNCHANGED Support',
      4: 'CREATE -',
    });
    expect((await commit(company, id)).result).toEqual({
      created: 1,
      updated: 1,
      unchanged: 1,
      skipped: 0,
      archived: 0,
      restored: 0,
    });
    const solo = await t.db.query.users.findFirst({
      where: { email: 'solo@support.example.com' },
      with: { trainingGroup: true },
    });
    expect(solo?.trainingGroup?.name).toBe('Support');
  });

  it('cancels at every stage before the commit, leaving the users as they were', async () => {
    const { company } = await companyWithSettings();
    const before = await companyUsers(company);
    const path: ImportStage[] = ['VALIDATION', 'REVIEW', 'GROUP_ASSIGNMENT'];
    for (let stop = 0; stop < path.length; stop++) {
      const { id } = await startAndValidate(company);
      await steps.continueThrough(company, id, path.slice(0, stop));
      const cancelled = await t.send(company.token, CancelImportDocument, {
        input: { sessionId: id },
      });
      expect(cancelled.data?.cancelImport).toMatchObject({ stage: 'CANCELLED' });
      expect(await continueFrom(company, id, path[stop] as ImportStage)).toMatchObject({
        code: 'WRONG_STAGE',
      });
      // Nothing of the file stays staged: no row, and no preview computed from one.
      expect(await stagedCounts(id)).toEqual({ rows: 0, previews: 0 });
    }
    expect(await companyUsers(company)).toEqual(before);
  });

  it('redoes a validation step that was cut short (a crash), giving the same preview', async () => {
    const { company } = await companyWithSettings();
    const { id, validated } = await startAndValidate(company);
    const preview = await previewOf(company, id);
    const sessionId = decodeGlobalID(id).id;
    // As a process that died half-way through the step leaves it: claimed, its lease run
    // out, part of the previews written (and the rest not).
    await t.db.execute(sql`delete from import_row_previews
      where session_id = ${sessionId} and row_number > 4`);
    await t.db.execute(sql`update import_sessions
      set busy = true, step = 'VALIDATE', lease_owner = 'dead-process',
          lease_expires_at = now() - interval '1 second', stage = 'VALIDATION'
      where id = ${sessionId}`);
    const redone = await waitUntilIdle(company, id);
    // The same session, but for when it was last written (by the redone step).
    expect(redone).toEqual({ ...validated, updatedAt: expect.any(String) });
    expect(await previewOf(company, id)).toEqual(preview);
    expect(await stagedCounts(id)).toEqual({
      rows: validated.rowCount,
      previews: validated.rowCount,
    });
  });
});
