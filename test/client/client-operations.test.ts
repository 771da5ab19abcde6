import { readdirSync, readFileSync } from 'node:fs';
import type { AnyVariables, Client, OperationResult, TypedDocumentNode } from '@urql/core';
import { Kind, parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pipe, take, toPromise } from 'wonka';
import {
  ApiTokensDocument,
  ArchiveUsersDocument,
  CancelImportDocument,
  ColumnMappingsDocument,
  CompanySettingsDocument,
  ConfirmColumnsDocument,
  ConfirmCustomFieldsDocument,
  ContinueImportDocument,
  CreateApiTokenDocument,
  CreateCustomFieldDocument,
  CreateDistributionRuleDocument,
  CreateTrainingGroupDocument,
  createMusterClient,
  DeleteColumnMappingDocument,
  DeleteCustomFieldDocument,
  DeleteDistributionRuleDocument,
  DeleteTrainingGroupDocument,
  DistributionRulesDocument,
  EmailImportReportDocument,
  ImportChangesDocument,
  ImportErrorsDocument,
  ImportGroupAssignmentDocument,
  ImportReportsDocument,
  ImportReviewCountsDocument,
  ImportRowsDocument,
  ImportSessionDocument,
  ImportSessionEditsDocument,
  ImportSessionsDocument,
  ImportSessionUpdatedDocument,
  ImportTemplateDocument,
  importUsers,
  RenameCustomFieldDocument,
  RenameTrainingGroupDocument,
  ReorderDistributionRulesDocument,
  ReplaceImportFileDocument,
  ReplaceInColumnDocument,
  RestoreUsersDocument,
  RevertImportDocument,
  RevertImportRowsDocument,
  RevokeApiTokenDocument,
  SetReportMailDomainsDocument,
  StartImportDocument,
  TrainingGroupsDocument,
  UpdateDistributionRuleDocument,
  UpdateImportRowsDocument,
  UserFieldsDocument,
  UsersDocument,
  UsersToArchiveDocument,
  ViewerDocument,
} from '../../client/index.js';
import { MAX_PAGE_SIZE } from '../../schema/pagination.js';
import { createTestApp, type TestApp, type TestCompany } from '../support/app.js';
import { workbookBytes } from '../support/tenant-fixtures.js';

/**
 * Every operation the client package ships, run through the client against a company whose
 * data is at the stage the operation belongs to: a session at REVIEW with thousands of rows
 * (creates, updates with changes, rows with errors, training groups by rules), with the
 * largest page size; a SYNC of a corrected file with row edits, committed and undone; column
 * mappings, archived users and API tokens. Any error at all fails: a query limit, a validation error, a typed error
 * where success was expected.
 */

/** Existing users (the first import creates them), then the rows the reviewed file adds. */
const EXISTING = 1500;
const NEW = 1000;
/** Every INVALID_EVERY-th row of the reviewed file has an invalid email. */
const INVALID_EVERY = 25;

let t: TestApp;
let company: TestCompany;
let client: Client;
let reviewId: string;

function person(n: number): string[] {
  return [`user${n}@example.com`, `User ${n}`, `R${n}`, n % 2 ? 'North' : 'South'];
}

beforeAll(async () => {
  t = await createTestApp();
  company = await t.createTestCompany();
  const base = await t.listen();
  client = createMusterClient({ url: `${base}/graphql`, token: company.token });
  await succeed('CreateCustomField', CreateCustomFieldDocument, {
    input: { label: 'Department' },
  });
  for (const name of ['North', 'South']) {
    const group = await succeed('CreateTrainingGroup', CreateTrainingGroupDocument, {
      input: { name },
    });
    const groupId = (group.createTrainingGroup as { id: string }).id;
    await succeed('CreateDistributionRule', CreateDistributionRuleDocument, {
      input: { fieldKey: 'department', operator: 'EQUALS', value: name, trainingGroupId: groupId },
    });
  }
  const header = ['Email', 'userName', 'reference', 'Department'];
  const existing = Array.from({ length: EXISTING }, (_, i) => person(i + 1));
  await importUsers(client, await workbookBytes([header, ...existing]), {});

  // Updates (renamed, moved to the other department), unchanged rows, creates, errors, and a
  // new column that becomes a custom field.
  const reviewed = Array.from({ length: EXISTING + NEW }, (_, i) => {
    const n = i + 1;
    const [email, userName, reference, department] = person(n);
    const row =
      n % 3 === 0
        ? [email, `${userName} renamed`, reference, department === 'North' ? 'South' : 'North']
        : [email, userName, reference, department];
    if (n % INVALID_EVERY === 0) row[0] = `not-an-email-${n}`;
    return [...row, `Site ${n % 7}`] as string[];
  });
  const review = await importUsers(
    client,
    await workbookBytes([[...header, 'Site'], ...reviewed]),
    { newColumns: 'all', onRowErrors: 'skip', stopAt: 'review' },
  );
  expect(review.stage).toBe('REVIEW');
  reviewId = review.id;
}, 300_000);

afterAll(async () => {
  await t?.close();
});

/** Runs a document through the client; throws on any error, returns the data. */
async function succeed<Data, Variables extends AnyVariables>(
  name: string,
  document: TypedDocumentNode<Data, Variables>,
  variables: Variables,
): Promise<Data> {
  const definition = document.definitions.find((node) => node.kind === Kind.OPERATION_DEFINITION);
  const kind = definition?.kind === Kind.OPERATION_DEFINITION ? definition.operation : 'query';
  const result: OperationResult<Data, Variables> =
    kind === 'mutation'
      ? await client.mutation(document, variables).toPromise()
      : kind === 'subscription'
        ? await pipe(client.subscription(document, variables), take(1), toPromise)
        : await client.query(document, variables).toPromise();
  expect(result.error, `${name}: ${result.error?.message}`).toBeUndefined();
  expect(result.data, name).toBeTruthy();
  // Unions answer a typed error as data: realistic variables must reach the success member.
  for (const [field, value] of Object.entries(result.data as Record<string, unknown>)) {
    const typename = (value as { __typename?: string } | null)?.__typename ?? '';
    expect(typename, `${name}.${field}: ${JSON.stringify(value)}`).not.toMatch(/Error$/);
  }
  ran.add(name);
  return result.data as Data;
}

const ran = new Set<string>();

/** Every operation of every document in client/operations, so a new file cannot slip past. */
function shippedOperationNames(): string[] {
  const directory = new URL('../../client/operations/', import.meta.url);
  const files = readdirSync(directory).filter((file) => file.endsWith('.graphql'));
  return files.flatMap((file) =>
    parse(readFileSync(new URL(file, directory), 'utf8'))
      .definitions.filter((definition) => definition.kind === Kind.OPERATION_DEFINITION)
      .map((definition) => definition.name?.value ?? '(anonymous)'),
  );
}

describe('every operation of the client package', () => {
  it('runs without any error against data at its stage, at the largest page size', async () => {
    const id = reviewId;
    const first = MAX_PAGE_SIZE;
    const pageWithoutErrors = { action: 'UPDATE' as const, withErrors: false };

    await succeed('Viewer', ViewerDocument, {});
    await succeed('UserFields', UserFieldsDocument, {});
    await succeed('TrainingGroups', TrainingGroupsDocument, {});
    const rules = await succeed('DistributionRules', DistributionRulesDocument, {});
    const users = await succeed('Users', UsersDocument, { first, search: 'example' });
    expect(users.users.edges).toHaveLength(first);
    expect(users.users.edges[0]?.node.customFieldValues.length).toBeGreaterThan(0);
    expect(users.users.edges.some((edge) => edge.node.trainingGroup)).toBe(true);
    await succeed('Users', UsersDocument, { first, after: users.users.pageInfo.endCursor });

    await succeed('ImportTemplate', ImportTemplateDocument, {});
    await succeed('ImportSession', ImportSessionDocument, { id });
    await succeed('ImportSessions', ImportSessionsDocument, { first });
    await succeed('ImportSessionUpdated', ImportSessionUpdatedDocument, { id });
    const errors = await succeed('ImportErrors', ImportErrorsDocument, { id, first });
    expect(errors.importSession?.errors.edges).toHaveLength(first);
    const rows = await succeed('ImportRows', ImportRowsDocument, { id, first });
    const page = rows.importSession?.rows.edges.map((edge) => edge.node) ?? [];
    expect(page).toHaveLength(first);
    expect(page.some((row) => row.changes.length > 0)).toBe(true);
    expect(page.some((row) => row.errors.length > 0)).toBe(true);
    expect(page.some((row) => row.trainingGroup && row.matchedRule)).toBe(true);
    const after = rows.importSession?.rows.pageInfo.endCursor;
    await succeed('ImportRows', ImportRowsDocument, {
      id,
      first,
      after,
      filter: pageWithoutErrors,
    });
    const counts = await succeed('ImportReviewCounts', ImportReviewCountsDocument, { id });
    expect(counts.importSession?.actionCounts?.create).toBe(NEW - NEW / INVALID_EVERY);
    await succeed('ImportReports', ImportReportsDocument, { id });
    await succeed('EmailImportReport', EmailImportReportDocument, {
      input: { sessionId: id, report: 'IMPORTED_USERS', to: ['hr@example.com'] },
    });

    // The review goes on to GROUP_ASSIGNMENT, is read there, and is cancelled before the commit.
    await succeed('ContinueImport', ContinueImportDocument, {
      input: { sessionId: id, stage: 'REVIEW' },
    });
    expect(await waitForStage(id, 'GROUP_ASSIGNMENT')).toBe('GROUP_ASSIGNMENT');
    const groups = await succeed('ImportGroupAssignment', ImportGroupAssignmentDocument, { id });
    expect(groups.importSession?.groupAssignment.length).toBeGreaterThan(1);
    await succeed('CancelImport', CancelImportDocument, { input: { sessionId: id } });

    // A SYNC file with a new column waits at CUSTOM_FIELDS; its corrected file (another new
    // column, a mistyped domain, an invalid email) is fixed at VALIDATION, committed (archiving
    // the users it lacks) and undone.
    const upload = new Blob([
      await workbookBytes([
        ['Email', 'userName', 'reference', 'Floor'],
        ['f@example.com', 'F', 'RF', '3'],
      ]),
    ]);
    const started = await succeed('StartImport', StartImportDocument, {
      input: { file: upload, comment: 'every operation', mode: 'SYNC' },
    });
    const syncId = (started.startImport as { id: string }).id;
    expect(await waitForStage(syncId, 'CUSTOM_FIELDS')).toBe('CUSTOM_FIELDS');
    await succeed('ConfirmCustomFields', ConfirmCustomFieldsDocument, {
      input: { sessionId: syncId, addToDatabase: ['Floor'] },
    });
    expect(await waitForStage(syncId, 'REVIEW')).toBe('REVIEW');

    const corrected = new Blob([
      await workbookBytes([
        ['Email', 'userName', 'reference', 'Storey'],
        ['f@example.com', 'F', 'RF', '3'],
        ['g@exmaple.com', 'G', 'RG', '4'],
        ['user2@example.com', 'User 2 renamed', 'R2', '5'],
        ['h.example.com', 'H', 'RH', '2'],
      ]),
    ]);
    await succeed('ReplaceImportFile', ReplaceImportFileDocument, {
      input: { sessionId: syncId, file: corrected },
    });
    expect(await waitForStage(syncId, 'CUSTOM_FIELDS')).toBe('CUSTOM_FIELDS');
    const fields = await succeed('UserFields', UserFieldsDocument, {});
    const floor = fields.userFields.find((candidate) => candidate.label === 'Floor');
    expect(floor).toBeTruthy();
    await succeed('ConfirmColumns', ConfirmColumnsDocument, {
      input: {
        sessionId: syncId,
        columns: [{ header: 'Storey', action: 'MAP', fieldKey: floor?.key }],
      },
    });
    expect(await waitForStage(syncId, 'VALIDATION')).toBe('VALIDATION');

    const fixed = await succeed('UpdateImportRows', UpdateImportRowsDocument, {
      input: {
        sessionId: syncId,
        rows: [{ rowNumber: 5, values: [{ header: 'Email', value: 'h@example.com' }] }],
      },
    });
    expect(fixed.updateImportRows).toMatchObject({ invalidRowCount: 0 });
    expect(await waitForStage(syncId, 'VALIDATION')).toBe('VALIDATION');
    const reverted = await succeed('RevertImportRows', RevertImportRowsDocument, {
      input: { sessionId: syncId, rowNumbers: [5] },
    });
    expect(reverted.revertImportRows).toMatchObject({ invalidRowCount: 1 });
    expect(await waitForStage(syncId, 'VALIDATION')).toBe('VALIDATION');
    await succeed('ReplaceInColumn', ReplaceInColumnDocument, {
      input: { sessionId: syncId, header: 'Email', find: '@exmaple.com', replace: '@example.com' },
    });
    expect(await waitForStage(syncId, 'VALIDATION')).toBe('VALIDATION');
    const edits = await succeed('ImportSessionEdits', ImportSessionEditsDocument, { id: syncId });
    expect(edits.importSession?.edits.map((edit) => edit.kind).sort()).toEqual([
      'REPLACE_FILE',
      'REPLACE_IN_COLUMN',
      'REVERT_ROWS',
      'UPDATE_ROWS',
    ]);

    await succeed('ContinueImport', ContinueImportDocument, {
      input: { sessionId: syncId, stage: 'VALIDATION', acknowledgeArchive: true },
    });
    expect(await waitForStage(syncId, 'REVIEW')).toBe('REVIEW');
    const syncCounts = await succeed('ImportReviewCounts', ImportReviewCountsDocument, {
      id: syncId,
    });
    expect(syncCounts.importSession?.actionCounts?.archive).toBe(EXISTING - 1);
    const toArchive = await succeed('UsersToArchive', UsersToArchiveDocument, {
      id: syncId,
      first,
    });
    expect(toArchive.importSession?.usersToArchive?.edges).toHaveLength(first);
    await succeed('UsersToArchive', UsersToArchiveDocument, {
      id: syncId,
      first,
      after: toArchive.importSession?.usersToArchive?.pageInfo.endCursor,
    });
    await succeed('ContinueImport', ContinueImportDocument, {
      input: { sessionId: syncId, stage: 'REVIEW', acknowledgeArchive: true },
    });
    expect(await waitForStage(syncId, 'GROUP_ASSIGNMENT')).toBe('GROUP_ASSIGNMENT');
    await succeed('ContinueImport', ContinueImportDocument, {
      input: { sessionId: syncId, stage: 'GROUP_ASSIGNMENT', acknowledgeArchive: true },
    });
    expect(await waitForStage(syncId, 'COMPLETED')).toBe('COMPLETED');
    const changes = await succeed('ImportChanges', ImportChangesDocument, { id: syncId, first });
    expect(changes.importSession?.changes?.edges).toHaveLength(first);
    await succeed('ImportChanges', ImportChangesDocument, {
      id: syncId,
      first,
      after: changes.importSession?.changes?.pageInfo.endCursor,
      onlyConflicts: false,
    });
    await succeed('RevertImport', RevertImportDocument, { input: { sessionId: syncId } });
    expect(await waitForStage(syncId, 'REVERTED')).toBe('REVERTED');
    const undone = await succeed('ImportSession', ImportSessionDocument, { id: syncId });
    expect(undone.importSession?.revertResult).toMatchObject({
      removed: 2,
      updated: 1,
      unarchived: EXISTING - 1,
      conflicts: 0,
    });

    const mappings = await succeed('ColumnMappings', ColumnMappingsDocument, {});
    const storey = mappings.columnMappings.find((mapping) => mapping.header === 'Storey');
    expect(storey?.field?.key).toBe(floor?.key);
    await succeed('DeleteColumnMapping', DeleteColumnMappingDocument, {
      input: { id: storey?.id ?? '' },
    });

    const userIds = users.users.edges.map((edge) => edge.node.id);
    const archived = await succeed('ArchiveUsers', ArchiveUsersDocument, { input: { userIds } });
    const archivedUsers = (archived.archiveUsers as { users: { status: string }[] }).users;
    expect(archivedUsers.map((user) => user.status)).toEqual(userIds.map(() => 'ARCHIVED'));
    const restored = await succeed('RestoreUsers', RestoreUsersDocument, { input: { userIds } });
    const restoredUsers = (restored.restoreUsers as { users: { status: string }[] }).users;
    expect(restoredUsers.map((user) => user.status)).toEqual(userIds.map(() => 'ACTIVE'));

    const domains = await succeed('SetReportMailDomains', SetReportMailDomainsDocument, {
      input: { domains: ['HR.Example.com', 'hr.example.com'] },
    });
    expect(domains.setReportMailDomains).toMatchObject({
      reportMailDomains: ['hr.example.com'],
      reportMailDomainsSet: true,
    });
    const settings = await succeed('CompanySettings', CompanySettingsDocument, {});
    expect(settings.companySettings.reportMailDomains).toEqual(['hr.example.com']);

    await succeed('ApiTokens', ApiTokensDocument, {});
    const created = await succeed('CreateApiToken', CreateApiTokenDocument, {
      input: { label: 'Nightly HR sync', role: 'VIEWER' },
    });
    const tokenId = (created.createApiToken as { token: { id: string } }).token.id;
    await succeed('RevokeApiToken', RevokeApiTokenDocument, { input: { tokenId } });

    const field = await succeed('CreateCustomField', CreateCustomFieldDocument, {
      input: { label: 'Cost centre' },
    });
    const fieldId = (field.createCustomField as { id: string }).id;
    await succeed('RenameCustomField', RenameCustomFieldDocument, {
      input: { id: fieldId, label: 'Cost center' },
    });
    await succeed('DeleteCustomField', DeleteCustomFieldDocument, { input: { id: fieldId } });

    const group = await succeed('CreateTrainingGroup', CreateTrainingGroupDocument, {
      input: { name: 'East' },
    });
    const groupId = (group.createTrainingGroup as { id: string }).id;
    await succeed('RenameTrainingGroup', RenameTrainingGroupDocument, {
      input: { id: groupId, name: 'East wing' },
    });
    const rule = await succeed('CreateDistributionRule', CreateDistributionRuleDocument, {
      input: {
        fieldKey: 'email',
        operator: 'ENDS_WITH',
        value: '@east.example',
        trainingGroupId: groupId,
      },
    });
    const ruleId = (rule.createDistributionRule as { id: string }).id;
    await succeed('UpdateDistributionRule', UpdateDistributionRuleDocument, {
      input: { id: ruleId, operator: 'CONTAINS', value: 'east' },
    });
    const ruleIds = [ruleId, ...rules.distributionRules.map((existing) => existing.id)];
    await succeed('ReorderDistributionRules', ReorderDistributionRulesDocument, {
      input: { ruleIds },
    });
    await succeed('DeleteDistributionRule', DeleteDistributionRuleDocument, {
      input: { id: ruleId },
    });
    await succeed('DeleteTrainingGroup', DeleteTrainingGroupDocument, { input: { id: groupId } });

    expect([...ran].sort()).toEqual([...new Set(shippedOperationNames())].sort());
  }, 300_000);
});

/** Waits until the session is idle and returns its stage. */
async function waitForStage(id: string, stage: string): Promise<string> {
  let seen = '';
  for (let attempt = 0; attempt < 600; attempt++) {
    const result = await client.query(ImportSessionDocument, { id }).toPromise();
    const session = result.data?.importSession;
    seen = JSON.stringify({
      stage: session?.stage,
      busy: session?.busy,
      error: result.error?.message,
    });
    if (session && !session.busy && session.stage === stage) return session.stage;
    if (session && !session.busy && ['FAILED', 'CANCELLED', 'COMPLETED'].includes(session.stage)) {
      return session.stage;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`session ${id} never reached ${stage}: ${seen}`);
}
