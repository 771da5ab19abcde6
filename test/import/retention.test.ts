import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  importRows,
  importSessions,
  rateLimits,
  uploadFilePieces,
  uploadFiles,
} from '../../drizzle/tables.js';
import { purgeExpiredRateLimits } from '../../server/http/rate-limit.js';
import { purgeOldImports } from '../../server/jobs/retention.js';
import { createTestApp, type TestApp } from '../support/app.js';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(async () => {
  await t.close();
});

/** An upload stored `daysAgo`, of one piece. */
async function storedFile(companyId: string, daysAgo: number) {
  const [file] = await t.db
    .insert(uploadFiles)
    .values({
      companyId,
      fileName: 'old.xlsx',
      size: 4,
      createdAt: new Date(Date.now() - daysAgo * 24 * 60 * 60 * 1000),
    })
    .returning();
  if (!file) throw new Error('upload insert returned nothing');
  await t.db
    .insert(uploadFilePieces)
    .values({ uploadFileId: file.id, piece: 0, content: Buffer.from('PK\x03\x04') });
  return file;
}

/** Whether the upload is still stored, and how many of its pieces. */
async function fileState(id: string) {
  const files = await t.db.select().from(uploadFiles).where(eq(uploadFiles.id, id));
  const pieces = await t.db
    .select()
    .from(uploadFilePieces)
    .where(eq(uploadFilePieces.uploadFileId, id));
  return { file: files.length, pieces: pieces.length };
}

/**
 * A session as it would be after an import, inserted directly (never busy, so the test app's
 * worker does not take it) with its stored file and one staged row.
 */
async function sessionAt(
  companyId: string,
  stage: (typeof importSessions.$inferSelect)['stage'],
  daysAgo: number,
) {
  const file = await storedFile(companyId, daysAgo);
  const [session] = await t.db
    .insert(importSessions)
    .values({
      companyId,
      uploadFileId: file?.id,
      fileName: 'old.xlsx',
      fileSize: 4,
      stage,
      busy: false,
      updatedAt: new Date(Date.now() - daysAgo * 24 * 60 * 60 * 1000),
    })
    .returning();
  if (!session) throw new Error('session insert returned nothing');
  await t.db
    .insert(importRows)
    .values({ sessionId: session.id, rowNumber: 2, cells: ['a@b.c', 'A', '1'] });
  return session;
}

async function state(id: string) {
  const [session] = await t.db.select().from(importSessions).where(eq(importSessions.id, id));
  const rows = await t.db.select().from(importRows).where(eq(importRows.sessionId, id));
  const files = session?.uploadFileId
    ? await t.db
        .select({ id: uploadFiles.id })
        .from(uploadFiles)
        .where(eq(uploadFiles.id, session.uploadFileId))
    : [];
  return { stage: session?.stage, rows: rows.length, file: files.length };
}

describe('retention', () => {
  it('purges ended imports past the retention period and ends idle ones, keeping recent ones', async () => {
    const company = await t.createTestCompany();
    const oldCompleted = await sessionAt(company.companyId, 'COMPLETED', 8);
    const oldIdle = await sessionAt(company.companyId, 'CUSTOM_FIELDS', 8);
    const recentEnded = await sessionAt(company.companyId, 'FAILED', 1);
    const recentIdle = await sessionAt(company.companyId, 'VALIDATION', 1);

    await purgeOldImports(t.db, 7);

    expect(await state(oldCompleted.id)).toEqual({ stage: 'COMPLETED', rows: 0, file: 0 });
    expect(await state(oldIdle.id)).toEqual({ stage: 'CANCELLED', rows: 0, file: 0 });
    expect(await state(recentEnded.id)).toEqual({ stage: 'FAILED', rows: 1, file: 1 });
    expect(await state(recentIdle.id)).toEqual({ stage: 'VALIDATION', rows: 1, file: 1 });
    expect(await fileState(oldCompleted.uploadFileId ?? '')).toEqual({ file: 0, pieces: 0 });
  });

  it('purges old uploads that no session names, and keeps recent ones (an upload in flight)', async () => {
    const company = await t.createTestCompany();
    const oldOrphan = await storedFile(company.companyId, 8);
    const recentOrphan = await storedFile(company.companyId, 0);
    const named = await sessionAt(company.companyId, 'VALIDATION', 1);
    // The session's file is as old as the orphan; being named keeps it.
    await t.db
      .update(uploadFiles)
      .set({ createdAt: new Date(Date.now() - 8 * 24 * 60 * 60 * 1000) })
      .where(eq(uploadFiles.id, named.uploadFileId ?? ''));

    const purged = await purgeOldImports(t.db, 7);

    expect(purged.orphanedUploads).toBe(1);
    expect(await fileState(oldOrphan.id)).toEqual({ file: 0, pieces: 0 });
    expect(await fileState(recentOrphan.id)).toEqual({ file: 1, pieces: 1 });
    expect(await fileState(named.uploadFileId ?? '')).toEqual({ file: 1, pieces: 1 });
  });
});

describe('purgeExpiredRateLimits', () => {
  it('deletes counters whose window ended over an hour ago, and keeps the others', async () => {
    const now = Date.now();
    await t.db.insert(rateLimits).values([
      { key: `work:old-${now}`, points: 3, expire: new Date(now - 2 * 60 * 60 * 1000) },
      { key: `work:recent-${now}`, points: 3, expire: new Date(now - 10 * 60 * 1000) },
      { key: `work:live-${now}`, points: 1, expire: new Date(now + 30 * 1000) },
    ]);
    expect(await purgeExpiredRateLimits(t.db, new Date(now))).toBeGreaterThanOrEqual(1);
    const keys = (await t.db.select({ key: rateLimits.key }).from(rateLimits)).map(
      (row) => row.key,
    );
    expect(keys).not.toContain(`work:old-${now}`);
    expect(keys).toEqual(expect.arrayContaining([`work:recent-${now}`, `work:live-${now}`]));
  });
});
