import { and, asc, eq, gt, inArray, sql } from 'drizzle-orm';
import { type Database, queryRows } from '../../drizzle/client.js';
import {
  type ImportColumn,
  type ImportRowError,
  importRowDuplicates,
  importRowPreviews,
  importRows,
  users,
} from '../../drizzle/tables.js';
import type { UserField } from '../settings/fields.js';
import { importedColumns } from './columns.js';

export type ImportRowAction = 'CREATE' | 'UPDATE' | 'UNCHANGED' | 'RESTORE' | 'SKIP';

/**
 * Fresh planner statistics on the staged rows or their previews, from a small sample
 * (statistics target 10: 3,000 rows), once the read has staged them or validation has
 * previewed them. Without statistics on rows just written the planner took them for a handful:
 * it joined staged rows by nested loop (a range of 10,000 rows: 4 s instead of 0.1 s), and read
 * every preview of the session for each range of the commit (100k rows: 3.1 s became 3.7 s).
 * The statements that follow find rows by ranges of the primary key: they need the row count
 * and the spread of row numbers, not fine histograms of the cells. At a million rows
 * this takes 27 ms; at the default target (30,000 rows) 210 ms, which was the longest silence
 * of an import (the bench: 314 ms after the read's last progress).
 * The users too, once a commit or a revert changed many: with the 100,000 users a first import
 * had just created still counted as a handful, a SYNC's commit right after joined the file's
 * rows to the users by nested loop to find whom to archive, and did not end.
 */
export async function analyzeLoaded(
  db: Database,
  table: 'import_rows' | 'import_row_previews' | 'users',
): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.execute(sql`set local default_statistics_target = 10`);
    await tx.execute(sql`analyze ${sql.identifier(table)}`);
  });
}

/** Past this many users changed by a commit or a revert, the users' statistics are refreshed. */
const ANALYZE_AFTER_USERS = 1_000;

/** After a commit or a revert: fresh statistics on the users when it changed many (see above). */
export async function analyzeUsersAfter(db: Database, changedUsers: number): Promise<void> {
  if (changedUsers > ANALYZE_AFTER_USERS) await analyzeLoaded(db, 'users');
}

/**
 * Deletes the sessions' staged rows and what was computed from them (previews, duplicates):
 * a preview must never outlive its row, or a restaged file would show the old file's.
 */
export async function deleteLoadedRows(db: Database, sessionIds: string[]): Promise<void> {
  if (sessionIds.length === 0) return;
  await db.delete(importRowPreviews).where(inArray(importRowPreviews.sessionId, sessionIds));
  await db.delete(importRowDuplicates).where(inArray(importRowDuplicates.sessionId, sessionIds));
  await db.delete(importRows).where(inArray(importRows.sessionId, sessionIds));
}

export interface RowErrorEntry extends ImportRowError {
  rowNumber: number;
  /** 1-based position of the error within its row: with rowNumber, the keyset cursor. */
  position: number;
}

/** One page of a session's row errors in row order, by keyset on (row, position). */
export async function listRowErrorsPage(
  db: Database,
  sessionId: string,
  options: { limit: number; after?: { rowNumber: number; position: number } | null },
): Promise<{ errors: RowErrorEntry[]; hasNextPage: boolean }> {
  const after = options.after;
  const rows = await queryRows<{ row_number: number; position: number; error: ImportRowError }>(
    db,
    sql`select r.row_number, e.position::int as position, e.error
        from import_row_previews r
        cross join lateral jsonb_array_elements(r.errors) with ordinality as e(error, position)
        where r.session_id = ${sessionId} and r.errors is not null
          ${after ? sql`and r.row_number >= ${after.rowNumber} and (r.row_number, e.position) > (${after.rowNumber}::int, ${after.position}::int)` : sql``}
        order by r.row_number, e.position
        limit ${options.limit + 1}`,
  );
  return {
    errors: rows.slice(0, options.limit).map((row) => ({
      ...row.error,
      rowNumber: row.row_number,
      position: row.position,
    })),
    hasNextPage: rows.length > options.limit,
  };
}

export interface ImportRowView {
  rowNumber: number;
  cells: (string | null)[];
  /** The file's values of a row the admin edited; null while unedited. */
  originalCells: (string | null)[] | null;
  errors: ImportRowError[];
  action: ImportRowAction | null;
  trainingGroupId: string | null;
  matchedRuleId: string | null;
  /** The existing user's stored values, for showing what an UPDATE changes. */
  existing: { userName: string; reference: string; customValues: Record<string, string> } | null;
}

export interface ImportRowFilter {
  action?: ImportRowAction | null;
  withErrors?: boolean | null;
}

/** One page of a session's staged rows in row order, by keyset on the row number. */
export async function listImportRowsPage(
  db: Database,
  sessionId: string,
  options: { limit: number; after?: number | null; filter?: ImportRowFilter | null },
): Promise<{ rows: ImportRowView[]; hasNextPage: boolean }> {
  const filter = options.filter ?? {};
  const conditions = [eq(importRows.sessionId, sessionId)];
  if (options.after != null) conditions.push(gt(importRows.rowNumber, options.after));
  if (filter.action) conditions.push(eq(importRowPreviews.action, filter.action));
  if (filter.withErrors === true) conditions.push(sql`${importRowPreviews.errors} is not null`);
  if (filter.withErrors === false) conditions.push(sql`${importRowPreviews.errors} is null`);
  const rows = await db
    .select({
      rowNumber: importRows.rowNumber,
      cells: importRows.cells,
      originalCells: importRows.originalCells,
      errors: importRowPreviews.errors,
      action: importRowPreviews.action,
      trainingGroupId: importRowPreviews.trainingGroupId,
      matchedRuleId: importRowPreviews.matchedRuleId,
      userName: users.userName,
      reference: users.reference,
      customValues: users.customValues,
    })
    .from(importRows)
    // Before validation reaches a row, it has no preview: no action, no errors.
    .leftJoin(
      importRowPreviews,
      and(
        eq(importRowPreviews.sessionId, importRows.sessionId),
        eq(importRowPreviews.rowNumber, importRows.rowNumber),
        // Stated on both sides (see previewsJoinSql).
        options.after != null ? gt(importRowPreviews.rowNumber, options.after) : undefined,
      ),
    )
    .leftJoin(users, eq(users.id, importRowPreviews.userId))
    .where(and(...conditions))
    .orderBy(asc(importRows.rowNumber))
    .limit(options.limit + 1);
  return {
    rows: rows.slice(0, options.limit).map((row) => ({
      rowNumber: row.rowNumber,
      cells: row.cells,
      originalCells: row.originalCells,
      errors: row.errors ?? [],
      action: row.action as ImportRowAction | null,
      trainingGroupId: row.trainingGroupId,
      matchedRuleId: row.matchedRuleId,
      existing:
        row.userName === null || row.reference === null
          ? null
          : {
              userName: row.userName,
              reference: row.reference,
              customValues: row.customValues ?? {},
            },
    })),
    hasNextPage: rows.length > options.limit,
  };
}

export interface FieldChange {
  field: UserField;
  from: string | null;
  to: string;
}

/** What an UPDATE changes, field by field: blank cells change nothing; the email is the key. */
export function rowChanges(
  session: { columns: ImportColumn[] },
  row: ImportRowView,
  fields: UserField[],
): FieldChange[] {
  if ((row.action !== 'UPDATE' && row.action !== 'RESTORE') || !row.existing) return [];
  const existing = row.existing;
  const stored = (key: string): string | null =>
    key === 'userName'
      ? existing.userName
      : key === 'reference'
        ? existing.reference
        : (existing.customValues[key] ?? null);
  return importedColumns(session.columns).flatMap((column) => {
    const to = row.cells[column.columnIndex] ?? null;
    const field = fields.find((candidate) => candidate.key === column.fieldKey);
    if (column.fieldKey === 'email' || to === null || !field) return [];
    const from = stored(column.fieldKey);
    return from === to ? [] : [{ field, from, to }];
  });
}

/** Rows per training group (null: no rule matched), for the stage 5 preview. */
export async function countRowsByGroup(
  db: Database,
  sessionId: string,
): Promise<{ trainingGroupId: string | null; userCount: number }[]> {
  return db
    .select({
      trainingGroupId: importRowPreviews.trainingGroupId,
      userCount: sql<number>`count(*)::int`,
    })
    .from(importRowPreviews)
    .where(
      and(eq(importRowPreviews.sessionId, sessionId), sql`${importRowPreviews.errors} is null`),
    )
    .groupBy(importRowPreviews.trainingGroupId)
    .orderBy(sql`count(*) desc`);
}
