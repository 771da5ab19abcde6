import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DatabaseHandle, queryRows } from '../../drizzle/client.js';
import {
  companies,
  importRowPreviews,
  importRows,
  importSessions,
  importUserChanges,
} from '../../drizzle/tables.js';
import { copyImportRows } from '../../server/import/load-rows.js';
import {
  inPacedRowRanges,
  nextRangeUnits,
  type RangePace,
  type RangeWalk,
  type RowRange,
} from '../../server/import/row-ranges.js';
import { analyzeLoaded, deleteLoadedRows } from '../../server/import/rows.js';
import { createImportSession } from '../../server/import/sessions.js';
import { failClaimedStep, StaleClaimError } from '../../server/import/workflow.js';
import { createCompany } from '../../server/infrastructure/auth.js';
import { createTestDatabase } from '../support/database.js';

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
    chunks: [Buffer.from('PK\x03\x04')],
    maxBytes: 1024,
    comment: null,
  });
}

describe('copyImportRows', () => {
  it('stages cells exactly, quotes, commas, newlines, backslashes and nulls included', async () => {
    const session = await newSession();
    const cells = ['a@b.c', 'He said "hi", ok\nbye', null, '\\N', '', 'ünïcødé 🎉'];
    await copyImportRows(database.db, session, [{ rowNumber: 7, cells }]);
    const rows = await database.db
      .select()
      .from(importRows)
      .where(eq(importRows.sessionId, session.id));
    expect(rows.map((row) => [row.rowNumber, row.cells])).toEqual([[7, cells]]);
  });

  it('fails loudly when a batch cannot be staged, instead of losing it', async () => {
    const session = await newSession();
    const batch = [{ rowNumber: 2, cells: ['x@y.z', 'X', '1'] }];
    await copyImportRows(database.db, session, batch);
    await expect(copyImportRows(database.db, session, batch)).rejects.toThrow();
  });

  it('stages nothing for a claim that is no longer current, and says so', async () => {
    const session = await newSession();
    const batch = [{ rowNumber: 2, cells: ['x@y.z', 'X', '1'] }];
    // Another process took the work over (or the import was cancelled): the attempt moved on.
    await database.db
      .update(importSessions)
      .set({ attempt: session.attempt + 1 })
      .where(eq(importSessions.id, session.id));
    await expect(copyImportRows(database.db, session, batch)).rejects.toBeInstanceOf(
      StaleClaimError,
    );
    expect(await stagedRowNumbers(session.id)).toEqual([]);
    await copyImportRows(database.db, { id: session.id, attempt: session.attempt + 1 }, batch);
    expect(await stagedRowNumbers(session.id)).toEqual([2]);
  });
});

describe('inPacedRowRanges', () => {
  /** A session with rows 2, 3, 5, 6, 7, 10, 11, 12 staged, row 6 invalid. */
  async function sessionWithGaps() {
    const session = await newSession();
    const rowNumbers = [2, 3, 5, 6, 7, 10, 11, 12];
    await copyImportRows(
      database.db,
      session,
      rowNumbers.map((rowNumber) => ({ rowNumber, cells: ['a@b.c', 'A', String(rowNumber)] })),
    );
    // As validation previews them: row 6 with an error.
    await database.db.insert(importRowPreviews).values(
      rowNumbers.map((rowNumber) => ({
        sessionId: session.id,
        rowNumber,
        errors:
          rowNumber === 6
            ? [{ columnIndex: 0, code: 'REQUIRED', message: 'x', value: null }]
            : null,
        action: rowNumber === 6 ? 'SKIP' : 'CREATE',
      })),
    );
    return session;
  }

  async function calls(sessionId: string, validOnly: boolean, pace: RangePace) {
    const seen: { range: RowRange; rows: number }[] = [];
    const total = await inPacedRowRanges(
      database.db,
      sessionId,
      { validOnly },
      pace,
      async (range, rows) => {
        seen.push({ range, rows });
      },
    );
    return { seen, total };
  }

  /** Walks the rows in ranges of `rows` rows each (no target), with the walk's options. */
  function walkRanges(
    sessionId: string,
    { validOnly, rows }: { validOnly: boolean; rows: number },
    work: (range: RowRange) => Promise<void>,
    walk: RangeWalk,
  ) {
    return inPacedRowRanges(
      database.db,
      sessionId,
      { validOnly },
      { rows, targetMs: null },
      work,
      walk,
    );
  }

  it('walks the staged rows in consecutive ranges of a unit without a target, valid ones only or all', async () => {
    const { id } = await sessionWithGaps();
    expect(await calls(id, true, { rows: 3, targetMs: null })).toEqual({
      seen: [
        { range: { from: 2, to: 5 }, rows: 3 },
        { range: { from: 7, to: 11 }, rows: 3 },
        { range: { from: 12, to: 12 }, rows: 1 },
      ],
      total: 7,
    });
    expect(await calls(id, false, { rows: 3, targetMs: null })).toEqual({
      seen: [
        { range: { from: 2, to: 5 }, rows: 3 },
        { range: { from: 6, to: 10 }, rows: 3 },
        { range: { from: 11, to: 12 }, rows: 2 },
      ],
      total: 8,
    });
    const empty = await newSession();
    expect(await calls(empty.id, true, { rows: 3, targetMs: null })).toEqual({
      seen: [],
      total: 0,
    });
  });

  it('takes, at most doubling, more units a call while the calls take less than the target', async () => {
    const { id } = await sessionWithGaps();
    // A call never takes a day: each next one may take twice as many units as the last.
    expect(await calls(id, false, { rows: 1, targetMs: 86_400_000 })).toEqual({
      seen: [
        { range: { from: 2, to: 2 }, rows: 1 },
        { range: { from: 3, to: 5 }, rows: 2 },
        { range: { from: 6, to: 11 }, rows: 4 },
        { range: { from: 12, to: 12 }, rows: 1 },
      ],
      total: 8,
    });
  });

  it('runs as many calls at once as the lanes allow when asked, each row once', async () => {
    const { id } = await sessionWithGaps();
    const seen: RowRange[] = [];
    let running = 0;
    let mostAtOnce = 0;
    const atOnceWhenStarted: number[] = [];
    const total = await walkRanges(
      id,
      { validOnly: false, rows: 1 },
      async (range) => {
        running += 1;
        atOnceWhenStarted.push(running);
        mostAtOnce = Math.max(mostAtOnce, running);
        await sleep(30);
        seen.push(range);
        running -= 1;
      },
      // One lane for the first two calls, then two.
      { lanes: () => (atOnceWhenStarted.length < 2 ? 1 : 2) },
    );
    expect(total).toBe(8);
    expect(mostAtOnce).toBe(2);
    expect(atOnceWhenStarted.slice(0, 2)).toEqual([1, 1]);
    expect(seen.map((range) => range.from).sort((a, b) => a - b)).toEqual([
      2, 3, 5, 6, 7, 10, 11, 12,
    ]);
    expect(seen.every((range) => range.from === range.to)).toBe(true);
  });

  it('starts no range after a call fails, waits for the others, and throws the failure', async () => {
    const { id } = await sessionWithGaps();
    const events: string[] = [];
    const walk = walkRanges(
      id,
      { validOnly: false, rows: 1 },
      async (range) => {
        events.push(`start ${range.from}`);
        if (range.from === 3) throw new Error('range 3 failed');
        await sleep(50);
        events.push(`end ${range.from}`);
      },
      { lanes: () => 2 },
    );
    await expect(walk).rejects.toThrow('range 3 failed');
    // Rows 2 and 3 started together; 3 failed at once, so no range started after it, and the
    // walk threw only once row 2's call had ended.
    expect(events).toEqual(['start 2', 'start 3', 'end 2']);
  });

  it('reports each range after its call without holding up the next, one report at a time, all ended on return', async () => {
    const { id } = await sessionWithGaps();
    const events: string[] = [];
    let reportsRunning = 0;
    let mostReportsAtOnce = 0;
    const total = await walkRanges(
      id,
      { validOnly: true, rows: 3 },
      async (range) => {
        events.push(`call ${range.from}`);
        await sleep(10);
      },
      {
        report: async (rows) => {
          reportsRunning += 1;
          mostReportsAtOnce = Math.max(mostReportsAtOnce, reportsRunning);
          events.push(`report ${rows}`);
          await sleep(80);
          events.push(`reported ${rows}`);
          reportsRunning -= 1;
        },
      },
    );
    expect(total).toBe(7);
    expect(mostReportsAtOnce).toBe(1);
    // The second call started while the first range's report (80 ms) still ran; the walk
    // returned only after the last report had ended.
    expect(events.indexOf('call 7')).toBeLessThan(events.indexOf('reported 3'));
    expect(events.at(-1)).toBe('reported 1');
    expect(events.filter((event) => event.startsWith('report '))).toEqual([
      'report 3',
      'report 3',
      'report 1',
    ]);
  });

  it('starts no range after a report fails, and throws its failure', async () => {
    const { id } = await sessionWithGaps();
    const started: number[] = [];
    const walk = walkRanges(
      id,
      { validOnly: false, rows: 1 },
      async (range) => {
        started.push(range.from);
        await sleep(20);
      },
      {
        report: async () => {
          await sleep(5);
          throw new Error('the claim is lost');
        },
      },
    );
    await expect(walk).rejects.toThrow('the claim is lost');
    // The first report failed while the second range ran: no third one started.
    expect(started).toEqual([2, 3]);
  });

  it('sizes the next call by the time the last one took', () => {
    expect(nextRangeUnits(4, 250, 125)).toBe(2);
    expect(nextRangeUnits(4, 100, 125)).toBe(5);
    expect(nextRangeUnits(4, 10, 125)).toBe(8);
    expect(nextRangeUnits(1, 5_000, 125)).toBe(1);
  });
});

describe('failClaimedStep', () => {
  it('fails the session and drops its rows while the claim is current, else changes nothing', async () => {
    const session = await newSession();
    await copyImportRows(database.db, session, [{ rowNumber: 2, cells: ['a@b.c', 'A', '1'] }]);
    const failure = { code: 'INTERNAL_ERROR', message: 'broken' } as const;

    // A stale process (its attempt was taken over) must leave the new owner's rows alone.
    expect(
      await failClaimedStep(database.db, { id: session.id, attempt: session.attempt - 1 }, failure),
    ).toBe(false);
    expect(await stagedRowNumbers(session.id)).toEqual([2]);
    const [untouched] = await database.db
      .select()
      .from(importSessions)
      .where(eq(importSessions.id, session.id));
    expect(untouched?.stage).toBe('UPLOAD');

    expect(await failClaimedStep(database.db, session, failure)).toBe(true);
    expect(await stagedRowNumbers(session.id)).toEqual([]);
    const [failed] = await database.db
      .select()
      .from(importSessions)
      .where(eq(importSessions.id, session.id));
    expect(failed).toMatchObject({ stage: 'FAILED', busy: false, failure });
  });
});

async function stagedRowNumbers(sessionId: string): Promise<number[]> {
  const rows = await database.db
    .select({ rowNumber: importRows.rowNumber })
    .from(importRows)
    .where(eq(importRows.sessionId, sessionId));
  return rows.map((row) => row.rowNumber).sort((a, b) => a - b);
}

describe('staged rows and their previews', () => {
  /** A session with two rows staged and previewed; returns it with a count of what it has. */
  async function stagedAndPreviewed() {
    const session = await newSession();
    await copyImportRows(database.db, session, [
      { rowNumber: 2, cells: ['a@b.co', 'A', 'R1'] },
      { rowNumber: 3, cells: ['b@b.co', 'B', 'R2'] },
    ]);
    await database.db.insert(importRowPreviews).values([
      { sessionId: session.id, rowNumber: 2, action: 'CREATE' },
      { sessionId: session.id, rowNumber: 3, action: 'CREATE' },
    ]);
    const counts = async () => ({
      rows: await database.db.$count(importRows, eq(importRows.sessionId, session.id)),
      previews: await database.db.$count(
        importRowPreviews,
        eq(importRowPreviews.sessionId, session.id),
      ),
    });
    expect(await counts()).toEqual({ rows: 2, previews: 2 });
    return { session, counts };
  }

  it('get planner statistics from analyzeLoaded, on both tables', async () => {
    const { session } = await stagedAndPreviewed();
    await copyImportRows(
      database.db,
      session,
      Array.from({ length: 500 }, (_, index) => ({
        rowNumber: index + 10,
        cells: [`u${index}@b.co`, 'U', `R${index}`],
      })),
    );
    for (const table of ['import_rows', 'import_row_previews'] as const) {
      await analyzeLoaded(database.db, table);
      const [stats] = await queryRows<{ rows: number }>(
        database.db,
        sql`select reltuples::int as rows from pg_class where relname = ${table}`,
      );
      // Never analyzed, Postgres says -1; the sample counts what the tests staged so far.
      expect(stats?.rows).toBeGreaterThanOrEqual(table === 'import_rows' ? 502 : 2);
    }
  });

  it('are deleted together by deleteLoadedRows', async () => {
    const { session, counts } = await stagedAndPreviewed();
    const other = await stagedAndPreviewed();
    await deleteLoadedRows(database.db, [session.id]);
    expect(await counts()).toEqual({ rows: 0, previews: 0 });
    expect(await other.counts()).toEqual({ rows: 2, previews: 2 });
  });

  // They have no foreign key to their session (see drizzle/tables.ts): a trigger deletes them.
  it('go with their session, and with their company', async () => {
    const bySession = await stagedAndPreviewed();
    await database.db.delete(importSessions).where(eq(importSessions.id, bySession.session.id));
    expect(await bySession.counts()).toEqual({ rows: 0, previews: 0 });

    const byCompany = await stagedAndPreviewed();
    await database.db.delete(companies).where(eq(companies.id, byCompany.session.companyId));
    expect(await byCompany.counts()).toEqual({ rows: 0, previews: 0 });
  });

  it('and so do the user records a commit kept for undo', async () => {
    const { session } = await stagedAndPreviewed();
    const records = () =>
      database.db.$count(importUserChanges, eq(importUserChanges.sessionId, session.id));
    await database.db
      .insert(importUserChanges)
      .values({ sessionId: session.id, userId: randomUUID(), action: 'CREATE' });
    expect(await records()).toBe(1);
    await database.db.delete(importSessions).where(eq(importSessions.id, session.id));
    expect(await records()).toBe(0);
  });
});
