import { and, eq, sql } from 'drizzle-orm';
import { type Database, queryRows } from '../../drizzle/client.js';
import { importRowPreviews, importRows, importSessions } from '../../drizzle/tables.js';
import type { ImportRowFilter } from './rows.js';
import type { ImportSession } from './sessions.js';

/** How many import sessions the company has. */
export async function countImportSessions(db: Database, companyId: string): Promise<number> {
  return db.$count(importSessions, eq(importSessions.companyId, companyId));
}

/** Stages at which validation has counted the valid and invalid rows for good. */
const COUNTED_STAGES = new Set(['REVIEW', 'GROUP_ASSIGNMENT', 'COMPLETED']);

/**
 * How many staged rows the filter selects. Once validation has counted them, the session's
 * own counts answer without reading the rows (a million-row session would otherwise count
 * its rows on every page); a filter by action counts the previews.
 */
export async function countImportRows(
  db: Database,
  session: ImportSession,
  filter: ImportRowFilter | null | undefined,
): Promise<number> {
  const withErrors = filter?.withErrors ?? null;
  const counted =
    COUNTED_STAGES.has(session.stage) || (session.stage === 'VALIDATION' && !session.busy);
  if (!filter?.action && counted) {
    if (withErrors === null) return session.rowCount;
    return withErrors ? session.invalidRowCount : session.validRowCount;
  }
  if (!filter?.action && withErrors === null) {
    return db.$count(importRows, eq(importRows.sessionId, session.id));
  }
  const conditions = [eq(importRowPreviews.sessionId, session.id)];
  if (filter?.action) conditions.push(eq(importRowPreviews.action, filter.action));
  if (withErrors === true) conditions.push(sql`${importRowPreviews.errors} is not null`);
  if (withErrors === false) conditions.push(sql`${importRowPreviews.errors} is null`);
  if (withErrors === false && !filter?.action) {
    // Rows validation has not reached yet have no preview, and no errors either.
    const [row] = await queryRows<{ count: number }>(
      db,
      sql`select count(*)::int as count from import_rows r
          where r.session_id = ${session.id} and not exists (
            select 1 from import_row_previews p
            where p.session_id = r.session_id and p.row_number = r.row_number
              and p.errors is not null)`,
    );
    return row?.count ?? 0;
  }
  return db.$count(importRowPreviews, and(...conditions));
}

/** How many row errors the session has (a row can have several). */
export async function countRowErrors(db: Database, sessionId: string): Promise<number> {
  const [row] = await queryRows<{ count: number }>(
    db,
    sql`select coalesce(sum(jsonb_array_length(errors)), 0)::int as count
        from import_row_previews where session_id = ${sessionId} and errors is not null`,
  );
  return row?.count ?? 0;
}
