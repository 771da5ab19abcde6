import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseHandle } from '../../drizzle/client.js';
import { importSessions, users } from '../../drizzle/tables.js';
import { commitImport } from '../../server/import/commit.js';
import { sessionReadyToCommit, userCount } from '../support/commit-fixtures.js';
import { createTestDatabase } from '../support/database.js';

let database: DatabaseHandle;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database.close();
});

describe('commitImport', () => {
  it('upserts range by range, reporting progress after each', async () => {
    const target = await sessionReadyToCommit(database.db);
    const progress: [number, number][] = [];
    const result = await commitImport(database.db, target, {
      pace: { rows: 2, targetMs: null },
      onProgress: async (done, total) => {
        progress.push([done, total]);
      },
    });
    expect(progress).toEqual([
      [2, 5],
      [4, 5],
      [5, 5],
    ]);
    expect(result).toEqual({
      created: 5,
      updated: 0,
      unchanged: 0,
      skipped: 1,
      archived: 0,
      restored: 0,
    });
    expect(await userCount(database.db, target.companyId)).toBe(5);
    const [session] = await database.db
      .select({ stage: importSessions.stage, result: importSessions.result })
      .from(importSessions)
      .where(eq(importSessions.id, target.id));
    expect(session).toEqual({ stage: 'COMPLETED', result });
  });

  it('gives the users it creates time-ordered ids (UUID v7)', async () => {
    const target = await sessionReadyToCommit(database.db);
    const before = Date.now();
    await commitImport(database.db, target, { pace: { rows: 2, targetMs: null } });
    const created = await database.db
      .select({ id: users.id })
      .from(users)
      .where(eq(users.companyId, target.companyId));
    expect(created).toHaveLength(5);
    for (const { id } of created) {
      expect(id[14], id).toBe('7');
      // The first 48 bits are the time of the insert, in milliseconds.
      const millis = Number.parseInt(id.replaceAll('-', '').slice(0, 12), 16);
      expect(millis).toBeGreaterThanOrEqual(before - 1_000);
      expect(millis).toBeLessThanOrEqual(Date.now() + 1_000);
    }
  });

  it('rolls back the ranges already upserted when it stops half-way', async () => {
    const target = await sessionReadyToCommit(database.db);
    const lost = new Error('the claim was lost');
    await expect(
      commitImport(database.db, target, {
        pace: { rows: 2, targetMs: null },
        onProgress: async (done) => {
          if (done === 4) throw lost;
        },
      }),
    ).rejects.toBe(lost);
    expect(await userCount(database.db, target.companyId)).toBe(0);
    const [session] = await database.db
      .select({ stage: importSessions.stage })
      .from(importSessions)
      .where(eq(importSessions.id, target.id));
    expect(session?.stage).toBe('GROUP_ASSIGNMENT');
  });
});
