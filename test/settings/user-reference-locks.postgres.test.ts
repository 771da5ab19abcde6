import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCompany } from '../../server/infrastructure/auth.js';
import { createTestDatabase } from '../support/database.js';

/**
 * Between connections, the triggers that stand for users' foreign keys (migration
 * users_references_by_statement) lock what they check as a key does: a training group a
 * transaction has given users cannot be deleted until it ends, and a group being deleted
 * cannot be given. vitest.config.ts selects this file only when DATABASE_URL is set (PGlite
 * has one connection); test/settings/user-references.test.ts covers the rules on both databases.
 */

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let sql: postgres.Sql;
beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url as string, { max: 4, onnotice: () => {} });
});
afterAll(async () => {
  await sql?.end();
  await database?.close();
});

async function companyWithGroup(name: string) {
  const { companyId } = await createCompany(database.db, name);
  const [group] = await sql<{ id: string }[]>`
    insert into training_groups (company_id, name) values (${companyId}, 'Group') returning id`;
  return { companyId, groupId: group?.id as string };
}

/** Resolves once the backend `pid` waits for a lock. */
async function waitingForLock(pid: number): Promise<void> {
  await expect
    .poll(
      async () => {
        const [row] = await sql<{ wait: string | null }[]>`
          select wait_event_type as wait from pg_stat_activity where pid = ${pid}`;
        return row?.wait;
      },
      { timeout: 5_000, interval: 20 },
    )
    .toBe('Lock');
}

/** A connection of its own (reserved) and its backend's pid. */
async function reserveConnection() {
  const connection = await sql.reserve();
  const [row] = await connection<{ pid: number }[]>`select pg_backend_pid() as pid`;
  return { sql: connection, pid: row?.pid as number };
}

/** A writer's and a deleter's connections, released after `run`. */
async function withWriterAndDeleter(
  run: (
    writer: Awaited<ReturnType<typeof reserveConnection>>,
    deleter: Awaited<ReturnType<typeof reserveConnection>>,
  ) => Promise<void>,
): Promise<void> {
  const writer = await reserveConnection();
  const deleter = await reserveConnection();
  try {
    await run(writer, deleter);
  } finally {
    writer.sql.release();
    deleter.sql.release();
  }
}

async function groupsOf(companyId: string) {
  return sql<{ email: string; group: string | null }[]>`
    select email, training_group_id as "group" from users where company_id = ${companyId}`;
}

describe('users and the groups they are given, between connections', () => {
  it('a group given in an open transaction is deleted only after it, and then unset', async () => {
    const { companyId, groupId } = await companyWithGroup('Given first');
    await withWriterAndDeleter(async (writer, deleter) => {
      await writer.sql`begin`;
      await writer.sql`insert into users (company_id, email, user_name, reference, training_group_id)
        values (${companyId}, 'a@example.com', 'A', 'RA', ${groupId})`;
      const deleting = deleter.sql`delete from training_groups where id = ${groupId}`.execute();
      await waitingForLock(deleter.pid);
      await writer.sql`commit`;
      await deleting;
      expect(await groupsOf(companyId)).toEqual([{ email: 'a@example.com', group: null }]);
    });
  });

  it('a group being deleted cannot be given: the write waits, then fails as a key would', async () => {
    const { companyId, groupId } = await companyWithGroup('Deleted first');
    await withWriterAndDeleter(async (writer, deleter) => {
      await deleter.sql`begin`;
      await deleter.sql`delete from training_groups where id = ${groupId}`;
      const writing =
        writer.sql`insert into users (company_id, email, user_name, reference, training_group_id)
        values (${companyId}, 'b@example.com', 'B', 'RB', ${groupId})`
          .execute()
          .then(
            () => 'written',
            (error: { code?: string }) => error.code,
          );
      await waitingForLock(writer.pid);
      await deleter.sql`commit`;
      expect(await writing).toBe('23503');
      expect(await groupsOf(companyId)).toEqual([]);
    });
  });
});
