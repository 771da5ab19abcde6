import { readFileSync } from 'node:fs';
import type { AnyVariables, Client, OperationResult, TypedDocumentNode } from '@urql/core';
import { Kind, parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pipe, take, toPromise } from 'wonka';
import {
  CancelImportDocument,
  ConfirmCustomFieldsDocument,
  ContinueImportDocument,
  CreateCustomFieldDocument,
  CreateDistributionRuleDocument,
  CreateTrainingGroupDocument,
  createMusterClient,
  DeleteCustomFieldDocument,
  DeleteDistributionRuleDocument,
  DeleteTrainingGroupDocument,
  DistributionRulesDocument,
  EmailImportReportDocument,
  ImportErrorsDocument,
  ImportGroupAssignmentDocument,
  ImportReportsDocument,
  ImportRowsDocument,
  ImportSessionDocument,
  ImportSessionsDocument,
  ImportSessionUpdatedDocument,
  ImportTemplateDocument,
  importUsers,
  RenameCustomFieldDocument,
  RenameTrainingGroupDocument,
  ReorderDistributionRulesDocument,
  StartImportDocument,
  TrainingGroupsDocument,
  UpdateDistributionRuleDocument,
  UserFieldsDocument,
  UsersDocument,
  ViewerDocument,
} from '../../client/index.js';
import { MAX_PAGE_SIZE } from '../../schema/pagination.js';
import { createTestApp, type TestApp, type TestCompany } from '../support/app.js';
import { workbookBytes } from '../support/tenant-fixtures.js';

/**
 * Every operation the client package ships, run through the client against a company whose
 * data is at the stage the operation belongs to: a session at REVIEW with thousands of rows
 * (creates, updates with changes, rows with errors, training groups by rules), with the
 * largest page size. Any error at all fails: a query limit, a validation error, a typed error
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

function shippedOperationNames(): string[] {
  return ['import.graphql', 'settings.graphql'].flatMap((file) =>
    parse(readFileSync(new URL(`../../client/operations/${file}`, import.meta.url), 'utf8'))
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

    // A file with a new column waits at CUSTOM_FIELDS.
    const header = ['Email', 'userName', 'reference', 'Floor'];
    const upload = new Blob([await workbookBytes([header, ['f@example.com', 'F', 'RF', '3']])]);
    const started = await succeed('StartImport', StartImportDocument, {
      input: { file: upload, comment: 'every operation' },
    });
    const startedId = (started.startImport as { id: string }).id;
    expect(await waitForStage(startedId, 'CUSTOM_FIELDS')).toBe('CUSTOM_FIELDS');
    await succeed('ConfirmCustomFields', ConfirmCustomFieldsDocument, {
      input: { sessionId: startedId, addToDatabase: ['Floor'] },
    });

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
  for (let attempt = 0; attempt < 600; attempt++) {
    const result = await client.query(ImportSessionDocument, { id }).toPromise();
    const session = result.data?.importSession;
    if (session && !session.busy && session.stage === stage) return session.stage;
    if (session && !session.busy && ['FAILED', 'CANCELLED', 'COMPLETED'].includes(session.stage)) {
      return session.stage;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`session ${id} never reached ${stage}`);
}
