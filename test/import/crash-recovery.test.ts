import { randomBytes } from 'node:crypto';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import ExcelJS from 'exceljs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryRows } from '../../drizzle/client.js';
import { importRows } from '../../drizzle/tables.js';
import { createServerDatabase, type ServerDatabase } from '../support/database.js';
import { START_IMPORT, subscribeSse, uploadFile } from '../support/http.js';
import {
  killAllServerProcesses,
  type ServerProcess,
  startServerProcess as startProcess,
} from '../support/processes.js';

/**
 * A worker PROCESS dies (SIGKILL) while it reads an upload; a second server process claims
 * the session once the dead one's lease runs out, redoes the read, and stages every row
 * exactly once. Runs against PGlite in a temp DATA_DIR (the two servers one after the
 * other), or a fresh Postgres database when DATABASE_URL is set.
 */

const leaseSeconds = 2;
/** Data rows in the workbook: enough that reading them takes several seconds. */
const dataRows = 60_000;
/**
 * Killed once the reader reported this many rows. The parent handles the reader's events in
 * order, each after the previous batch's insert (2000 rows a batch), so a progress at 4000 rows
 * means at least one batch was already staged by the process that is about to die.
 */
const killAfterRows = 4_000;
const bootstrapToken = randomBytes(32).toString('base64url');

const FOLLOW = `subscription($id: ID!) { importSessionUpdated(id: $id) {
  stage busy rowCount progress { phase processed total } failure { code message }
} }`;

const SESSION = `query($id: ID!) { importSession(id: $id) {
  stage busy rowCount failure { code message }
  columns { header columnIndex status field { key } }
} }`;

function rowCells(index: number): string[] {
  return [
    `user${index}@example.com`,
    `User ${index}`,
    `R${String(index).padStart(6, '0')}`,
    `Department ${index % 37}`,
  ];
}

async function bigWorkbook(): Promise<Uint8Array<ArrayBuffer>> {
  const workbook = new ExcelJS.Workbook();
  const sheet = workbook.addWorksheet('Users');
  sheet.addRow(['Email', 'userName', 'reference', 'Department']);
  for (let index = 0; index < dataRows; index++) sheet.addRow(rowCells(index));
  return new Uint8Array(await workbook.xlsx.writeBuffer());
}

/** A server process on the test database, with the short lease and the known token. */
function startServerProcess(name: string, env: Record<string, string>): Promise<ServerProcess> {
  return startProcess(name, {
    ...env,
    WORK_LEASE_SECONDS: String(leaseSeconds),
    BOOTSTRAP_ADMIN_TOKEN: bootstrapToken,
  });
}

describe('an import whose worker process is killed in the middle of reading', () => {
  let database: ServerDatabase;
  let workbook: Uint8Array<ArrayBuffer>;
  let serverA: ServerProcess;

  beforeAll(async () => {
    database = await createServerDatabase('muster-crash-');
    // A new PGlite data directory takes a while to set up: write the workbook meanwhile.
    [serverA, workbook] = await Promise.all([
      startServerProcess('server A', database.env),
      bigWorkbook(),
    ]);
  });

  afterAll(async () => {
    await killAllServerProcesses();
    await database?.remove();
  });

  it('is finished by another process, every row staged exactly once', async () => {
    const { status, body } = await uploadFile(
      serverA.url,
      bootstrapToken,
      START_IMPORT,
      { input: { file: null } },
      { name: 'users.xlsx', content: workbook },
    );
    expect(status, JSON.stringify(body)).toBe(200);
    const started = body.data?.startImport;
    expect(started, JSON.stringify(body)).toMatchObject({ __typename: 'ImportSession' });
    const sessionId = decodeGlobalID(started.id).id;

    // Follow A until it has read, and so staged, part of the file; it must still be busy.
    const onA = await subscribeSse(
      serverA.url,
      bootstrapToken,
      FOLLOW,
      { id: started.id },
      (event) => {
        const session = event.data?.importSessionUpdated;
        return (
          session?.busy === false ||
          (session?.progress?.phase === 'READING' && session.progress.processed >= killAfterRows)
        );
      },
      30_000,
    );
    expect(onA.at(-1)?.data?.importSessionUpdated, serverA.logs()).toMatchObject({
      stage: 'UPLOAD',
      busy: true,
      progress: { phase: 'READING' },
    });
    expect(await serverA.kill('SIGKILL'), serverA.logs()).toEqual({
      code: null,
      signal: 'SIGKILL',
    });

    /** On Postgres: a transaction id taken after A died; every row B stages is newer. */
    let afterKill: string | undefined;
    if (database.env.DATABASE_URL) {
      // A held the first claim and had staged part of the file when it died.
      const handle = await database.open();
      try {
        const [left] = await queryRows<{ attempt: number; staged: number; xid: string }>(
          handle.db,
          sql`select attempt, pg_current_xact_id()::text as xid,
                (select count(*)::int from import_rows where session_id = ${sessionId}) as staged
              from import_sessions where id = ${sessionId}`,
        );
        expect(left?.attempt).toBe(1);
        expect(left?.staged).toBeGreaterThan(0);
        expect(left?.staged).toBeLessThan(dataRows);
        afterKill = left?.xid;
      } finally {
        await handle.close();
      }
    }
    // On PGlite the data directory is left as A's death left it, for B to open.

    // A's pid file is stale now, so B may open the same data directory. B claims the session
    // once A's lease runs out and reads the file again from the start.
    const serverB = await startServerProcess('server B', database.env);
    const onB = await subscribeSse(
      serverB.url,
      bootstrapToken,
      FOLLOW,
      { id: started.id },
      (event) => event.data?.importSessionUpdated?.busy === false,
      60_000,
    );
    expect(onB.at(-1)?.data?.importSessionUpdated, serverB.logs()).toMatchObject({
      stage: 'CUSTOM_FIELDS',
      busy: false,
      rowCount: dataRows,
      failure: null,
    });
    const read = await serverB.graphql(bootstrapToken, SESSION, { id: started.id });
    expect(read.errors).toBeUndefined();
    expect(read.data.importSession).toMatchObject({
      stage: 'CUSTOM_FIELDS',
      busy: false,
      rowCount: dataRows,
      failure: null,
    });
    expect(read.data.importSession.columns).toEqual([
      { header: 'Email', columnIndex: 0, status: 'MATCHED', field: { key: 'email' } },
      { header: 'userName', columnIndex: 1, status: 'MATCHED', field: { key: 'userName' } },
      { header: 'reference', columnIndex: 2, status: 'MATCHED', field: { key: 'reference' } },
      { header: 'Department', columnIndex: 3, status: 'NEW', field: null },
    ]);

    const logsB = serverB.logs();
    expect(await serverB.kill('SIGTERM'), logsB).toEqual({ code: 0, signal: null });
    expect(logsB).not.toMatch(/"level":"(warn|error)"/);

    // With B stopped, the database can be opened here on PGlite too.
    const handle = await database.open();
    try {
      const [claim] = await queryRows<{
        attempt: number;
        busy: boolean;
        lease_owner: string | null;
      }>(
        handle.db,
        sql`select attempt, busy, lease_owner from import_sessions where id = ${sessionId}`,
      );
      expect(claim?.attempt).toBeGreaterThanOrEqual(2);
      expect(claim).toMatchObject({ busy: false, lease_owner: null });

      // Row numbers 2..N+1, each once (the primary key forbids doubles; this finds gaps).
      const [rows] = await queryRows<{ count: number; first: number; last: number }>(
        handle.db,
        sql`select count(*)::int as count, min(row_number) as first, max(row_number) as last
            from import_rows where session_id = ${sessionId}`,
      );
      expect(rows).toEqual({ count: dataRows, first: 2, last: dataRows + 1 });
      // A few rows in full (batch edges, around where A died, the last)...
      const sampled = [0, 1, 1_999, 2_000, killAfterRows, dataRows / 2, dataRows - 1];
      const sampledRows = await handle.db
        .select({ rowNumber: importRows.rowNumber, cells: importRows.cells })
        .from(importRows)
        .where(
          and(
            eq(importRows.sessionId, sessionId),
            inArray(
              importRows.rowNumber,
              sampled.map((index) => index + 2),
            ),
          ),
        )
        .orderBy(asc(importRows.rowNumber));
      expect(sampledRows).toEqual(
        sampled.map((index) => ({ rowNumber: index + 2, cells: rowCells(index) })),
      );
      // ...and every cell of every row, compared in SQL (rowCells written out again).
      const wrong = await queryRows<{ row_number: number; cells: unknown }>(
        handle.db,
        sql`select row_number, cells from import_rows
            where session_id = ${sessionId}
              and cells <> jsonb_build_array(
                'user' || (row_number - 2) || '@example.com',
                'User ' || (row_number - 2),
                'R' || lpad((row_number - 2)::text, 6, '0'),
                'Department ' || ((row_number - 2) % 37))
            order by row_number limit 5`,
      );
      expect(wrong).toEqual([]);
      if (afterKill) {
        // No row is one A staged: B replaced them all (a row left over from A, or written by
        // A twice, would be older than the mark).
        const [older] = await queryRows<{ count: number }>(
          handle.db,
          sql`select count(*)::int as count from import_rows
              where session_id = ${sessionId} and age(xmin) >= age(${afterKill}::xid)`,
        );
        expect(older?.count).toBe(0);
      }
    } finally {
      await handle.close();
    }
  }, 90_000);
});
