import { PGlite } from '@electric-sql/pglite';
import type { Sql } from 'postgres';
import type { Database } from '../../drizzle/client.js';

export interface StagedRow {
  rowNumber: number;
  cells: (string | null)[];
}

/** One CSV line per row: session id, row number, the cells as a JSON array (quoted). */
function toCsv(sessionId: string, rows: StagedRow[]): string {
  let csv = '';
  for (const row of rows) {
    csv += `${sessionId},${row.rowNumber},"${JSON.stringify(row.cells).replaceAll('"', '""')}"\n`;
  }
  return csv;
}

const COPY_COLUMNS = 'import_rows (session_id, row_number, cells)';

/**
 * Stages a batch of rows in one statement per batch, never one per row (row-by-row inserts are
 * ~26× slower and hit the bind-parameter limit): COPY on PGlite, an INSERT from arrays on
 * postgres.js (see below why not COPY there). Same result on both drivers.
 */
export async function copyImportRows(
  db: Database,
  sessionId: string,
  rows: StagedRow[],
): Promise<void> {
  if (rows.length === 0) return;
  const client = (db as unknown as { $client: PGlite | Sql }).$client;
  if (client instanceof PGlite) {
    await client.query(`copy ${COPY_COLUMNS} from '/dev/blob' with (format csv)`, [], {
      blob: new Blob([toCsv(sessionId, rows)]),
    });
    return;
  }
  // postgres.js 3.4 does not report a failed COPY FROM STDIN (porsager/postgres#1173: it
  // resolves once the next query runs), which would lose a batch silently. One INSERT from
  // arrays per batch reports every error and is still a single round trip.
  await client`
    insert into import_rows (session_id, row_number, cells)
    select ${sessionId}::uuid, staged.row_number, staged.cells::jsonb
    from unnest(
      ${rows.map((row) => row.rowNumber)}::int[],
      ${rows.map((row) => JSON.stringify(row.cells))}::text[]
    ) as staged(row_number, cells)`;
}
