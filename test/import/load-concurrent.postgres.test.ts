import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type DatabaseHandle, queryRows } from '../../drizzle/client.js';
import { importRows, importSessions } from '../../drizzle/tables.js';
import { copyImportRows } from '../../server/import/load-rows.js';
import { cancelImport, createImportSession } from '../../server/import/sessions.js';
import { createCompany } from '../../server/infrastructure/auth.js';
import {
  connectionsWaitingForLocks,
  createTestDatabase,
  whileInTransaction,
} from '../support/database.js';

/**
 * What other connections may do while a batch is being staged: only on a real server
 * (vitest.config.ts selects this file when DATABASE_URL names one, as in CI). The embedded
 * database has one connection, so nothing runs beside a statement there.
 */

let database: DatabaseHandle;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database.close();
});

async function newSession() {
  const company = await createCompany(database.db, 'Concurrent staging');
  const session = await createImportSession(database.db, {
    companyId: company.companyId,
    fileName: 'staging.xlsx',
    chunks: [Buffer.from('PK\x03\x04')],
    maxBytes: 1024,
    comment: null,
  });
  return { companyId: company.companyId, session };
}

/**
 * Runs `during` while a batch is being staged: its transaction is left open, so the insert
 * still holds its lock on the session row.
 */
function whileStaging<T>(
  session: { id: string; attempt: number },
  during: () => Promise<T>,
): Promise<T> {
  return whileInTransaction(
    database.db,
    (tx) => copyImportRows(tx, session, [{ rowNumber: 2, cells: ['x@y.z', 'X', '1'] }]),
    during,
  );
}

it('lets progress be written while a batch is being staged', async () => {
  const { session } = await newSession();
  // With the session row held FOR SHARE, this UPDATE waited for the batch's insert: the read's
  // progress fell silent for as long as a batch took. The timeout turns a wait into a failure.
  await whileStaging(session, () =>
    database.db.transaction(async (tx) => {
      await tx.execute(sql`set local lock_timeout = '5s'`);
      await tx
        .update(importSessions)
        .set({ progress: { phase: 'READING', done: 1, total: 2 } })
        .where(eq(importSessions.id, session.id));
    }),
  );
  const [after] = await database.db
    .select({ progress: importSessions.progress })
    .from(importSessions)
    .where(eq(importSessions.id, session.id));
  expect(after?.progress).toEqual({ phase: 'READING', done: 1, total: 2 });
});

it('keeps a cancel waiting until the batch is in, so that the cancel deletes it', async () => {
  const { companyId, session } = await newSession();
  const cancel = await whileStaging(session, async () => {
    const cancelling = cancelImport(database.db, companyId, session.id);
    // The cancel locks the session row FOR UPDATE: it waits for the batch's transaction.
    await expect
      .poll(() => connectionsWaitingForLocks(database.db), { timeout: 10_000 })
      .toBeGreaterThan(0);
    return { cancelling };
  });
  expect((await cancel.cancelling).stage).toBe('CANCELLED');
  const left = await database.db
    .select({ rowNumber: importRows.rowNumber })
    .from(importRows)
    .where(eq(importRows.sessionId, session.id));
  expect(left).toEqual([]);
});

it('keeps another process from taking the session over while a batch is being staged', async () => {
  const { session } = await newSession();
  // The worker's claim (its lease ran out): it skips a session whose row is locked.
  const claimed = await whileStaging(session, () =>
    queryRows<{ id: string }>(
      database.db,
      sql`update import_sessions set attempt = attempt + 1
          where id = (select id from import_sessions where id = ${session.id}::uuid
                      for update skip locked)
          returning id`,
    ),
  );
  expect(claimed).toEqual([]);
});
