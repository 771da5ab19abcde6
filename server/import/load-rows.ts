import { sql } from 'drizzle-orm';
import { type Database, queryRows } from '../../drizzle/client.js';
import { type RowsBatch, type StagedRow, toRowsBatch } from './reader/rows-batch.js';
import { type Claim, StaleClaimError } from './workflow.js';

/**
 * Loads a batch of rows for a claimed session in one statement (StaleClaimError, and nothing
 * staged, once the claim is no longer current): Postgres takes the rows from the batch's JSON
 * text (`jsonb_array_elements`). Never one statement per row: row-by-row inserts are ~26×
 * slower and hit the bind-parameter limit. It inserts only while the claim is current,
 * holding the session row FOR KEY SHARE until it commits: every write that ends a claim (a
 * takeover, a cancel, a failed step, deleting the session) locks the row FOR UPDATE first, so
 * it waits for the batch (and a cancel then deletes it). FOR KEY SHARE, not FOR SHARE: the
 * read's progress writes (a plain UPDATE) must not wait for each batch's insert.
 *
 * Not COPY: postgres.js 3.4 does not report a failed COPY FROM STDIN (porsager/postgres#1173:
 * it resolves once the next query runs), which would lose a batch silently. The same
 * statement runs on PGlite, which used COPY FROM '/dev/blob' before (CSV written row by row
 * on the main thread).
 */
export async function loadRowsBatch(db: Database, claim: Claim, batch: RowsBatch): Promise<void> {
  if (batch.count === 0) return;
  const [staged] = await queryRows<{ rows: number }>(
    db,
    sql`with claim as (
          select 1 from import_sessions
          where id = ${claim.id}::uuid and attempt = ${claim.attempt}::int
          for key share
        ),
        inserted as (
          insert into import_rows (session_id, row_number, cells, problems)
          select ${claim.id}::uuid, (pair.value ->> 0)::int, pair.value -> 1, pair.value -> 2
          from jsonb_array_elements(${batch.json}::text::jsonb) as pair
          where exists (select 1 from claim)
          returning 1
        )
        select count(*)::int as rows from inserted`,
  );
  if (!staged || staged.rows === 0) throw new StaleClaimError(claim.id);
}

/** loadRowsBatch for rows at hand (tests, fixtures). */
export async function copyImportRows(db: Database, claim: Claim, rows: StagedRow[]): Promise<void> {
  await loadRowsBatch(db, claim, toRowsBatch(rows));
}
