import { PGlite } from '@electric-sql/pglite';
import type { Sql } from 'postgres';
import type { Database } from '../../drizzle/client.js';
import { type Claim, StaleClaimError } from './claims.js';

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
 * Stages a batch of rows for a claimed session (StaleClaimError, and nothing staged, once the
 * claim is no longer current) in one statement per batch, never one per row (row-by-row inserts are
 * ~26× slower and hit the bind-parameter limit): COPY on PGlite, an INSERT from arrays on
 * postgres.js (see below why not COPY there). Same result on both drivers.
 */
export async function copyImportRows(db: Database, claim: Claim, rows: StagedRow[]): Promise<void> {
  if (rows.length === 0) return;
  const client = (db as unknown as { $client: PGlite | Sql }).$client;
  if (client instanceof PGlite) {
    // One process owns an embedded database, and it runs one statement at a time: the check
    // only has to catch a cancellation that came between two batches.
    const current = await client.query(
      'select 1 from import_sessions where id = $1 and attempt = $2',
      [claim.id, claim.attempt],
    );
    if (current.rows.length === 0) throw new StaleClaimError(claim.id);
    await client.query(`copy ${COPY_COLUMNS} from '/dev/blob' with (format csv)`, [], {
      blob: new Blob([toCsv(claim.id, rows)]),
    });
    return;
  }
  // postgres.js 3.4 does not report a failed COPY FROM STDIN (porsager/postgres#1173: it
  // resolves once the next query runs), which would lose a batch silently. One INSERT from
  // arrays per batch reports every error and is still a single round trip. It inserts only
  // while the claim is current, holding the session row FOR SHARE until it commits, so
  // another process cannot take the session over (and restage it) in the middle.
  const inserted = await client`
    with claim as (
      select 1 from import_sessions
      where id = ${claim.id}::uuid and attempt = ${claim.attempt}
      for share
    )
    insert into import_rows (session_id, row_number, cells)
    select ${claim.id}::uuid, staged.row_number, staged.cells::jsonb
    from unnest(
      ${rows.map((row) => row.rowNumber)}::int[],
      ${rows.map((row) => JSON.stringify(row.cells))}::text[]
    ) as staged(row_number, cells)
    where exists (select 1 from claim)`;
  if (inserted.count === 0) throw new StaleClaimError(claim.id);
}
