import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseHandle } from '../drizzle/client.js';
import { importRows } from '../drizzle/tables.js';
import { createCompany } from '../server/auth.js';
import { createImportSession } from '../server/import/sessions.js';
import { copyImportRows } from '../server/import/stage-rows.js';
import { createTestDatabase } from './database.js';

let database: DatabaseHandle;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database.close();
});

async function newSession() {
  const company = await createCompany(database.db, 'Staging');
  return createImportSession(database.db, {
    companyId: company.companyId,
    fileName: 'staging.xlsx',
    content: Buffer.from('PK\x03\x04'),
    comment: null,
  });
}

describe('copyImportRows', () => {
  it('stages cells exactly, quotes, commas, newlines, backslashes and nulls included', async () => {
    const session = await newSession();
    const cells = ['a@b.c', 'He said "hi", ok\nbye', null, '\\N', '', 'ünïcødé 🎉'];
    await copyImportRows(database.db, session.id, [{ rowNumber: 7, cells }]);
    const rows = await database.db
      .select()
      .from(importRows)
      .where(eq(importRows.sessionId, session.id));
    expect(rows.map((row) => [row.rowNumber, row.cells])).toEqual([[7, cells]]);
  });

  it('fails loudly when a batch cannot be staged, instead of losing it', async () => {
    const session = await newSession();
    const batch = [{ rowNumber: 2, cells: ['x@y.z', 'X', '1'] }];
    await copyImportRows(database.db, session.id, batch);
    await expect(copyImportRows(database.db, session.id, batch)).rejects.toThrow();
  });
});
