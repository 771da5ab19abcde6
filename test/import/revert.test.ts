import { decodeGlobalID } from '@pothos/plugin-relay';
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ImportChangesDocument,
  ImportSessionDocument,
  RevertImportDocument,
  ViewerDocument,
} from '../../client/index.js';
import { importSessions } from '../../drizzle/tables.js';
import { createTestApp, type TestApp, type TestCompany } from '../support/app.js';
import { importDriver, userRows } from '../support/sync-fixtures.js';

// Each case runs several whole imports: on a loaded machine that takes more than the
// default minute.
/** revertImport and ImportSession.changes through the API, on PGlite or Postgres. */

let t: TestApp;
let drive: ReturnType<typeof importDriver>;
beforeAll(async () => {
  t = await createTestApp();
  drive = importDriver(t, await t.listen());
});
afterAll(async () => {
  await t.close();
});

const REVERT = `mutation($input: RevertImportInput!) { revertImport(input: $input) {
  __typename
  ... on ImportSession { stage busy }
  ... on RevertConflictError { conflictCount
    conflicts(first: 1) { edges { node { email action revertOutcome } } pageInfo { hasNextPage } } }
  ... on Error { code message } } }`;

async function revert(company: TestCompany, sessionId: string, force?: boolean) {
  const result = await t.request(company.token, REVERT, {
    input: { sessionId, ...(force === undefined ? {} : { force }) },
  });
  expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
  return result.data?.revertImport;
}

async function changes(company: TestCompany, sessionId: string) {
  const result = await t.request(
    company.token,
    `query($id: ID!) { importSession(id: $id) { changes(first: 100) { edges { node {
      email action revertOutcome user { status } fields { fieldKey before after } } } } } }`,
    { id: sessionId },
  );
  expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
  return result.data?.importSession.changes.edges
    .map((edge: any) => edge.node)
    .sort((a: any, b: any) => a.email.localeCompare(b.email));
}

const state = (users: any[]) =>
  users
    .map((user) => `${user.email} ${user.userName} ${user.status}`)
    .sort()
    .join('\n');

describe('revertImport', () => {
  it('undoes what an import did: creations, updates, archiving and restoring', async () => {
    const company = await t.createTestCompany();
    const other = await t.createTestCompany();
    await drive.importRows(company, userRows(1, 10));
    await drive.importRows(other, userRows(1, 10));
    await drive.importRows(company, userRows(1, 9), 'SYNC');
    const before = state([
      ...(await drive.listUsers(company)),
      ...(await drive.listUsers(company, 'ARCHIVED')),
    ]);

    // Updates user2, creates user11, brings user10 back and archives user9.
    const rows = userRows(1, 8);
    rows[1] = ['user2@example.com', 'User 2 renamed', 'R2'];
    rows.push(['user10@example.com', 'User 10', 'R10'], ['user11@example.com', 'User 11', 'R11']);
    const done = await drive.importRows(company, rows, 'SYNC');
    expect(done.result).toMatchObject({ created: 1, updated: 1, archived: 1, restored: 1 });
    expect(await changes(company, done.id)).toEqual([
      {
        email: 'user10@example.com',
        action: 'RESTORE',
        revertOutcome: null,
        user: { status: 'ACTIVE' },
        fields: [{ fieldKey: 'status', before: 'ARCHIVED', after: 'ACTIVE' }],
      },
      {
        email: 'user11@example.com',
        action: 'CREATE',
        revertOutcome: null,
        user: { status: 'ACTIVE' },
        fields: [
          { fieldKey: 'email', before: null, after: 'user11@example.com' },
          { fieldKey: 'userName', before: null, after: 'User 11' },
          { fieldKey: 'reference', before: null, after: 'R11' },
          { fieldKey: 'status', before: null, after: 'ACTIVE' },
        ],
      },
      {
        email: 'user2@example.com',
        action: 'UPDATE',
        revertOutcome: null,
        user: { status: 'ACTIVE' },
        fields: [{ fieldKey: 'userName', before: 'User 2', after: 'User 2 renamed' }],
      },
      {
        email: 'user9@example.com',
        action: 'ARCHIVE',
        revertOutcome: null,
        user: { status: 'ARCHIVED' },
        fields: [{ fieldKey: 'status', before: 'ACTIVE', after: 'ARCHIVED' }],
      },
    ]);

    const queued = await revert(company, done.id);
    expect(queued).toMatchObject({ __typename: 'ImportSession', stage: 'COMPLETED', busy: true });
    const reverted = await drive.waitUntilIdle(company, done.id);
    expect(reverted).toMatchObject({
      stage: 'REVERTED',
      revertResult: { removed: 1, updated: 1, unarchived: 1, rearchived: 1, conflicts: 0 },
    });
    expect(
      state([...(await drive.listUsers(company)), ...(await drive.listUsers(company, 'ARCHIVED'))]),
    ).toBe(before);
    expect((await changes(company, done.id)).map((change: any) => change.revertOutcome)).toEqual([
      'REVERTED',
      'REVERTED',
      'REVERTED',
      'REVERTED',
    ]);
    expect(await drive.listUsers(other)).toHaveLength(10);

    // Reverting twice changes nothing.
    expect(await revert(company, done.id)).toMatchObject({
      __typename: 'WrongStageError',
      code: 'WRONG_STAGE',
    });
    expect(
      state([...(await drive.listUsers(company)), ...(await drive.listUsers(company, 'ARCHIVED'))]),
    ).toBe(before);
  }, 180_000);

  it('refuses users changed since, listing them, and with force reverts the rest', async () => {
    const company = await t.createTestCompany();
    await drive.importRows(company, userRows(1, 5));
    const renamed = userRows(1, 5, 'Renamed');
    const second = await drive.importRows(company, renamed);
    expect(second.result).toMatchObject({ updated: 5 });
    // Later: another import changes user1 and an admin archives user2.
    await drive.importRows(company, [['user1@example.com', 'Later', 'R1']]);
    const user2 = (await drive.listUsers(company)).find((u) => u.email === 'user2@example.com');
    const archived = await t.request(
      company.token,
      `mutation($ids: [ID!]!) { archiveUsers(input: { userIds: $ids }) { __typename } }`,
      { ids: [user2.id] },
    );
    expect(archived.data?.archiveUsers.__typename).toBe('UsersStatusChanged');

    const refused = await revert(company, second.id);
    expect(refused).toMatchObject({
      __typename: 'RevertConflictError',
      code: 'REVERT_CONFLICT',
      conflictCount: 2,
      conflicts: { pageInfo: { hasNextPage: true } },
    });
    expect(refused.conflicts.edges).toHaveLength(1);
    const conflicts = await t.request(
      company.token,
      `query($id: ID!) { importSession(id: $id) { stage busy
        changes(first: 10, onlyConflicts: true) { edges { node { email revertOutcome } } } } }`,
      { id: second.id },
    );
    expect(conflicts.data?.importSession).toMatchObject({ stage: 'COMPLETED', busy: false });
    expect(
      conflicts.data?.importSession.changes.edges.map((edge: any) => edge.node.email).sort(),
    ).toEqual(['user1@example.com', 'user2@example.com']);
    const untouched = (await drive.listUsers(company)).map((user) => user.userName).sort();
    expect(untouched).toEqual(['Later', 'Renamed 3', 'Renamed 4', 'Renamed 5']);

    expect(await revert(company, second.id, true)).toMatchObject({ busy: true });
    const reverted = await drive.waitUntilIdle(company, second.id);
    expect(reverted).toMatchObject({
      stage: 'REVERTED',
      revertResult: { removed: 0, updated: 3, conflicts: 2 },
    });
    const after = await drive.listUsers(company);
    expect(after.map((user) => `${user.email} ${user.userName}`).sort()).toEqual([
      'user1@example.com Later',
      'user3@example.com User 3',
      'user4@example.com User 4',
      'user5@example.com User 5',
    ]);
    expect(await drive.listUsers(company, 'ARCHIVED')).toMatchObject([
      { email: 'user2@example.com', userName: 'Renamed 2' },
    ]);
  }, 180_000);

  it('is refused after IMPORT_UNDO_DAYS, and for an import that is not COMPLETED', async () => {
    const company = await t.createTestCompany();
    const done = await drive.importRows(company, userRows(1, 2));
    await t.db
      .update(importSessions)
      .set({ committedAt: sql`now() - interval '8 days'` })
      .where(eq(importSessions.id, decodeGlobalID(done.id).id));
    expect(await revert(company, done.id)).toMatchObject({
      __typename: 'UndoExpiredError',
      code: 'UNDO_EXPIRED',
    });
    const open = await drive.start(company, userRows(3, 3));
    expect(await revert(company, open.id)).toMatchObject({ __typename: 'WrongStageError' });
    expect(await drive.listUsers(company)).toHaveLength(2);
  }, 180_000);

  it('fails REVERT_FAILED when its transaction fails: nothing reverted, still COMPLETED', async () => {
    const company = await t.createTestCompany();
    await drive.importRows(company, userRows(1, 3));
    const rows = userRows(1, 4);
    rows[0] = ['user1@example.com', 'User 1 renamed', 'R1'];
    const done = await drive.importRows(company, rows);
    expect(done.result).toMatchObject({ created: 1, updated: 1 });
    const imported = state(await drive.listUsers(company));
    const user4 = (await drive.listUsers(company)).find((u) => u.email === 'user4@example.com');

    // Another system's table refers to the user the import created: deleting it fails.
    await t.db.execute(
      sql.raw(`create table test_enrolments (user_id uuid not null references users (id))`),
    );
    try {
      await t.db.execute(
        sql.raw(`insert into test_enrolments values ('${decodeGlobalID(user4.id).id}')`),
      );
      const queued = await t.send(company.token, RevertImportDocument, {
        input: { sessionId: done.id },
      });
      expect(queued.data?.revertImport).toMatchObject({
        __typename: 'ImportSession',
        stage: 'COMPLETED',
        busy: true,
      });
      await drive.waitUntilIdle(company, done.id);
    } finally {
      await t.db.execute(sql.raw('drop table test_enrolments'));
    }

    const failed = await t.send(company.token, ImportSessionDocument, { id: done.id });
    const session = failed.data?.importSession;
    expect(session).toMatchObject({
      stage: 'COMPLETED',
      busy: false,
      result: { created: 1, updated: 1 },
      revertResult: null,
      failure: { code: 'REVERT_FAILED' },
    });
    expect(session?.failure?.message).toContain('nothing was reverted');
    expect(state(await drive.listUsers(company))).toBe(imported);
    const recorded = await t.send(company.token, ImportChangesDocument, { id: done.id, first: 10 });
    expect(
      recorded.data?.importSession?.changes.edges.map((edge) => edge.node.revertOutcome),
    ).toEqual([null, null]);
    // The server keeps serving, and the revert can be asked again once it can be done.
    expect((await t.send(company.token, ViewerDocument)).data?.viewer.role).toBe('ADMIN');
    expect(
      (await t.send(company.token, RevertImportDocument, { input: { sessionId: done.id } })).data
        ?.revertImport.__typename,
    ).toBe('ImportSession');
    expect(await drive.waitUntilIdle(company, done.id)).toMatchObject({
      stage: 'REVERTED',
      revertResult: { removed: 1, updated: 1 },
    });
  }, 180_000);
});
