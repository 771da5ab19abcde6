import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Database, DatabaseHandle } from '../../drizzle/client.js';
import { importSessions, users } from '../../drizzle/tables.js';
import { commitImport } from '../../server/import/commit.js';
import { StaleClaimError } from '../../server/import/workflow.js';
import { createCustomField, deleteCustomField } from '../../server/settings/fields.js';
import { createTrainingGroup, deleteTrainingGroup } from '../../server/settings/training-groups.js';
import { setUsersStatus } from '../../server/settings/user-status.js';
import { sessionReadyToCommit, userCount } from '../support/commit-fixtures.js';
import { connectionsWaitingForLocks, createTestDatabase } from '../support/database.js';

/**
 * Another connection can act during a commit only on a real server: vitest.config.ts selects
 * this file when DATABASE_URL names one (as in CI). The embedded database has one connection,
 * which the commit's transaction holds.
 */

let database: DatabaseHandle;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database.close();
});

it('lets progress be written meanwhile, and rolls back whole if the claim moves on before the end', async () => {
  const target = await sessionReadyToCommit(database.db);
  const commit = commitImport(database.db, target, {
    pace: { rows: 2, targetMs: null },
    onProgress: async (done, total) => {
      // Through the pool, outside the transaction: the session row is not locked.
      await database.db
        .update(importSessions)
        .set({
          progress: { phase: 'COMMITTING', done, total },
          // Half-way, another process takes the session over (or it is cancelled).
          ...(done === 4 ? { attempt: sql`${importSessions.attempt} + 1` } : {}),
        })
        .where(eq(importSessions.id, target.id));
    },
  });
  await expect(commit).rejects.toBeInstanceOf(StaleClaimError);
  expect(await userCount(database.db, target.companyId)).toBe(0);
  const [session] = await database.db
    .select({ stage: importSessions.stage, progress: importSessions.progress })
    .from(importSessions)
    .where(eq(importSessions.id, target.id));
  expect(session).toEqual({
    stage: 'GROUP_ASSIGNMENT',
    progress: { phase: 'COMMITTING', done: 5, total: 5 },
  });
});

/** Until `count` connections of this database wait for a lock (bounded). */
async function waitersForLocks(count: number): Promise<void> {
  await expect
    .poll(() => connectionsWaitingForLocks(database.db), { timeout: 5_000, interval: 25 })
    .toBeGreaterThanOrEqual(count);
}

/**
 * Changes of users an admin makes while a commit runs. Each locked users before the company row
 * the commit holds (shared) until it ends; the commit then waited for a user the change held:
 * a deadlock that Postgres ends by aborting one of them.
 */
const USER_CHANGES = {
  'deleting a group': async (db: Database, user: Leaver) =>
    deleteTrainingGroup(db, user.companyId, user.groupId),
  'archiving a user': async (db: Database, user: Leaver) =>
    setUsersStatus(db, user.companyId, [user.userId], 'ARCHIVED'),
  'deleting a custom field': async (db: Database, user: Leaver) =>
    deleteCustomField(db, user.companyId, user.fieldId),
} as const;

/** The user the change is about: in the file's last range, in a group, with a custom value. */
interface Leaver {
  companyId: string;
  userId: string;
  groupId: string;
  fieldId: string;
}

it.each(Object.keys(USER_CHANGES) as (keyof typeof USER_CHANGES)[])(
  'and %s while it runs wait for each other in turn, neither aborted',
  async (change) => {
    const db = database.db;
    const leaver = { companyId: '', userId: '', groupId: '', fieldId: '' };
    const target = await sessionReadyToCommit(db, {
      beforeValidation: async (companyId) => {
        const field = await createCustomField(db, companyId, 'Desk');
        const group = await createTrainingGroup(db, companyId, 'Leavers');
        // Both in the file with a new name: the commit updates user2 first and user5 last.
        const [, user5] = await db
          .insert(users)
          .values(
            ['user2', 'user5'].map((name) => ({
              companyId,
              email: `${name}@example.com`,
              userName: 'Old name',
              reference: `R0-${name}`,
              ...(name === 'user5'
                ? { trainingGroupId: group.id, customValues: { [field.key]: 'D5' } }
                : {}),
            })),
          )
          .returning({ id: users.id });
        Object.assign(leaver, {
          companyId,
          userId: user5?.id,
          groupId: group.id,
          fieldId: field.id,
        });
      },
    });
    // Another writer holds user2: the commit stops at its first range, having taken the
    // company row (shared) as it does before any upsert.
    let releaseUser2 = () => {};
    const user2Held = new Promise<void>((resolve) => {
      releaseUser2 = resolve;
    });
    let user2Locked = () => {};
    const locked = new Promise<void>((resolve) => {
      user2Locked = resolve;
    });
    const holder = db.transaction(async (tx) => {
      await tx.select().from(users).where(eq(users.email, 'user2@example.com')).for('update');
      user2Locked();
      await user2Held;
    });
    await locked;
    const commit = commitImport(db, target, { pace: { rows: 2, targetMs: null } });
    await waitersForLocks(1);
    const userChange = USER_CHANGES[change](db, leaver);
    await waitersForLocks(2);
    releaseUser2();
    await holder;
    expect(await commit).toMatchObject({ created: 3, updated: 2 });
    await expect(userChange).resolves.toBeDefined();
    const [user5] = await db
      .select({ userName: users.userName })
      .from(users)
      .where(eq(users.id, leaver.userId));
    expect(user5).toEqual({ userName: 'User 5' });
  },
);
