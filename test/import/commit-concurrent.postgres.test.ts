import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { DatabaseHandle } from '../../drizzle/client.js';
import { importSessions } from '../../drizzle/tables.js';
import { commitImport } from '../../server/import/commit.js';
import { StaleClaimError } from '../../server/import/workflow.js';
import { sessionReadyToCommit, userCount } from '../support/commit-fixtures.js';
import { createTestDatabase } from '../support/database.js';

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
