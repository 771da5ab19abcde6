import { randomBytes } from 'node:crypto';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, queryRows } from '../../drizzle/client.js';
import {
  createServerDatabase,
  type ServerDatabase,
  whileInTransaction,
} from '../support/database.js';
import { START_IMPORT, subscribeSse, uploadFile } from '../support/http.js';
import {
  killAllServerProcesses,
  type ServerProcess,
  startServerProcess as startProcess,
} from '../support/processes.js';
import { userRows, workbookBytes } from '../support/sync-fixtures.js';

/**
 * A server PROCESS dies (SIGKILL) in the middle of a revert; a second process claims the
 * revert once the dead one's lease runs out and does it whole, once. On PGlite in a temp
 * DATA_DIR (the servers one after the other) or a fresh Postgres database (DATABASE_URL).
 */

const leaseSeconds = 2;
/** Users the import creates: enough that their revert is one long transaction. */
const dataRows = 20_000;
const token = randomBytes(32).toString('base64url');

const FOLLOW = `subscription($id: ID!) { importSessionUpdated(id: $id) {
  stage busy progress { phase } result { created }
  revertResult { removed updated unarchived rearchived conflicts } failure { code message } } }`;

function startServerProcess(name: string, env: Record<string, string>): Promise<ServerProcess> {
  // A new PGlite data directory takes a while to set up on a busy machine.
  return startProcess(
    name,
    { ...env, WORK_LEASE_SECONDS: String(leaseSeconds), BOOTSTRAP_ADMIN_TOKEN: token },
    { startTimeoutMs: 120_000 },
  );
}

async function follow(server: ServerProcess, id: string, until: (session: any) => boolean) {
  const events = await subscribeSse(
    server.url,
    token,
    FOLLOW,
    { id },
    (event) => until(event.data?.importSessionUpdated ?? {}),
    120_000,
  );
  return events.at(-1)?.data?.importSessionUpdated;
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('the condition never held');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function continueFrom(server: ServerProcess, id: string, stage: string) {
  const moved = await server.graphql(
    token,
    `mutation($id: ID!, $stage: ImportStage!) { continueImport(input: { sessionId: $id, stage: $stage }) {
      __typename ... on Error { code message } } }`,
    { id, stage },
  );
  expect(moved.data?.continueImport?.__typename, JSON.stringify(moved)).toBe('ImportSession');
  return follow(server, id, (session) => session.busy === false);
}

describe('a revert whose worker process is killed in the middle', () => {
  let database: ServerDatabase;
  let serverA: ServerProcess;

  beforeAll(async () => {
    database = await createServerDatabase('muster-revert-crash-');
    serverA = await startServerProcess('server A', database.env);
  }, 180_000);

  afterAll(async () => {
    await killAllServerProcesses();
    await database?.remove();
  });

  it('is done whole by another process, once', async () => {
    const { body } = await uploadFile(
      serverA.url,
      token,
      START_IMPORT,
      { input: { file: null } },
      { name: 'users.xlsx', content: await workbookBytes(userRows(1, dataRows)) },
    );
    const id = body.data?.startImport?.id;
    expect(id, JSON.stringify(body)).toBeTruthy();
    expect(await follow(serverA, id, (session) => session.busy === false)).toMatchObject({
      stage: 'REVIEW',
    });
    await continueFrom(serverA, id, 'REVIEW');
    expect(await continueFrom(serverA, id, 'GROUP_ASSIGNMENT')).toMatchObject({
      stage: 'COMPLETED',
      result: { created: dataRows },
    });

    const requestRevert = async () => {
      const requested = await serverA.graphql(
        token,
        `mutation($id: ID!) { revertImport(input: { sessionId: $id }) {
          __typename ... on Error { code message } } }`,
        { id },
      );
      expect(requested.data?.revertImport?.__typename, JSON.stringify(requested)).toBe(
        'ImportSession',
      );
    };
    const sessionId = decodeGlobalID(id).id;
    const attemptOf = async (db: Database) => {
      const [row] = await queryRows<{ attempt: number }>(
        db,
        sql`select attempt from import_sessions where id = ${sessionId}`,
      );
      return row?.attempt ?? 0;
    };
    /** On Postgres, the session's attempt before the revert: A claims it once, B once. */
    let attemptBefore: number | null = null;
    if (database.env.DATABASE_URL) {
      // On Postgres: a row lock of this test's holds A's revert inside its transaction, after
      // its first statements, until A is dead; then A's server process rolls it back.
      const handle = await database.open();
      try {
        await whileInTransaction(
          handle.db,
          async (tx) => {
            await tx.execute(
              sql`select id from users where email = 'user1@example.com' for update`,
            );
          },
          async () => {
            attemptBefore = await attemptOf(handle.db);
            await requestRevert();
            await waitFor(async () => {
              const [waiting] = await queryRows<{ count: number }>(
                handle.db,
                sql`select count(*)::int as count from pg_stat_activity
                    where datname = current_database() and wait_event_type = 'Lock'
                      and query ilike '%delete from users%'`,
              );
              return (waiting?.count ?? 0) > 0;
            });
            expect(await serverA.kill('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
          },
        );
      } finally {
        await handle.close();
      }
    } else {
      // On PGlite the revert's transaction holds the one connection, so nothing outside A can
      // see it run: A dies as soon as it has accepted the revert (its worker is woken at once).
      await requestRevert();
      expect(await serverA.kill('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
    }

    const serverB = await startServerProcess('server B', database.env);
    expect(await follow(serverB, id, (session) => session.busy === false)).toMatchObject({
      stage: 'REVERTED',
      failure: null,
      revertResult: { removed: dataRows, updated: 0, unarchived: 0, rearchived: 0, conflicts: 0 },
    });
    const logsB = serverB.logs();
    expect(await serverB.kill('SIGTERM'), logsB).toEqual({ code: 0, signal: null });
    expect(logsB).not.toMatch(/ (WARN|ERROR) /);

    const handle = await database.open();
    try {
      const [after] = await queryRows<{
        attempt: number;
        users: number;
        reverted: number;
        other: number;
      }>(
        handle.db,
        sql`select s.attempt,
              (select count(*)::int from users where company_id = s.company_id) as users,
              (select count(*)::int from import_user_changes
                where session_id = s.id and outcome = 'REVERTED') as reverted,
              (select count(*)::int from import_user_changes
                where session_id = s.id and outcome is distinct from 'REVERTED') as other
            from import_sessions s where s.id = ${sessionId}`,
      );
      expect(after).toMatchObject({ users: 0, reverted: dataRows, other: 0 });
      if (attemptBefore !== null) expect(after?.attempt).toBe(attemptBefore + 2);
    } finally {
      await handle.close();
    }
  }, 300_000);
});
