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
 * Stages a batch of rows with COPY: one statement per batch, never one per row (row-by-row
 * inserts are ~26× slower and hit the bind-parameter limit). Same result on both drivers.
 */
export async function copyImportRows(
  db: Database,
  sessionId: string,
  rows: StagedRow[],
): Promise<void> {
  if (rows.length === 0) return;
  const csv = toCsv(sessionId, rows);
  const client = (db as unknown as { $client: PGlite | Sql }).$client;
  if (client instanceof PGlite) {
    await client.query(`copy ${COPY_COLUMNS} from '/dev/blob' with (format csv)`, [], {
      blob: new Blob([csv]),
    });
    return;
  }
  const writable = await client
    .unsafe(`copy ${COPY_COLUMNS} from stdin with (format csv)`)
    .writable();
  await new Promise<void>((resolve, reject) => {
    writable.on('error', reject);
    writable.on('finish', resolve);
    writable.end(csv);
  });
}
