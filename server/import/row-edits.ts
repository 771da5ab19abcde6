import { eq, sql } from 'drizzle-orm';
import { type Database, queryRows } from '../../drizzle/client.js';
import { importSessionEdits, importSessions } from '../../drizzle/tables.js';
import {
  EditTooLargeError,
  RowNotFoundError,
  SessionBusyError,
  UnknownHeaderError,
} from '../errors.js';
import { groupSql } from './assign-groups.js';
import { cellSql, columnOf } from './columns.js';
import { writePreview } from './preview.js';
import { deleteLoadedRows } from './rows.js';
import { intArraySql } from './sql-lists.js';
import { deleteUpload, storeUpload, type UploadToStore } from './upload.js';
import { countRows, emailKeySql, findDuplicateRowsAmong } from './validation.js';
import { assertStage, type ImportSession, lockSession, queueStep } from './workflow.js';

/** Stages at which staged rows can be fixed: errors shown, or the review. */
export const EDITABLE_STAGES: ImportSession['stage'][] = ['VALIDATION', 'REVIEW'];

/** Cells one updateImportRows call may change, and rows one revertImportRows may restore. */
export const MAX_EDITED_CELLS = 1000;
/** Longest value a cell may be given (a custom field's limit is 1,000 characters). */
export const MAX_CELL_LENGTH = 10_000;
/**
 * Past this many changed rows, a replace has the whole file validated again in the background,
 * as validation does it (ranges, two lanes, progress), rather than the touched rows and the
 * rows sharing their keys within the request: at a million rows one statement over them all
 * would pass the API's statement timeout.
 */
export const LARGE_REPLACE_ROWS = 5000;
/** A replace changes the cells this many rows a statement, each well within the timeout. */
const REPLACE_RANGE_ROWS = 100_000;

export interface Editor {
  companyId: string;
  tokenId: string;
}

export interface RowEdit {
  rowNumber: number;
  values: { header: string; value: string | null }[];
}

/** What an edit did, to answer with: the session after it and the rows it changed. */
export interface EditResult {
  session: ImportSession;
  rowCount: number;
  cellCount: number;
}

const sameHeader = (a: string, b: string) => a.trim().toLowerCase() === b.trim().toLowerCase();

/** A blank cell is null, as the reader stages it. */
const cellValue = (value: string | null) => (value === null || value.trim() === '' ? null : value);

async function lockEditable(tx: Database, editor: Editor, sessionId: string) {
  const session = await lockSession(tx, editor.companyId, sessionId);
  assertStage(session, EDITABLE_STAGES);
  if (session.busy) throw new SessionBusyError(session.stage);
  return session;
}

function columnIndexOf(session: ImportSession, headers: string[]): Map<string, number> {
  const indexes = new Map<string, number>();
  const unknown: string[] = [];
  for (const header of headers) {
    const column = session.columns.find((candidate) => sameHeader(candidate.header, header));
    if (column) indexes.set(header, column.columnIndex);
    else unknown.push(header);
  }
  if (unknown.length > 0) {
    throw new UnknownHeaderError(
      [...new Set(unknown)],
      'columns of this file',
      "Use the headers listed in the session's columns.",
    );
  }
  return indexes;
}

interface RowKeys {
  emails: string[];
  references: string[];
}

/** The email keys and references of some staged rows, to recheck the rows sharing them. */
async function keysOf(
  tx: Database,
  session: ImportSession,
  rowNumbers: number[],
): Promise<RowKeys> {
  const email = columnOf(session.columns, 'email');
  const reference = columnOf(session.columns, 'reference');
  const rows = await queryRows<{ email_key: string | null; reference: string | null }>(
    tx,
    sql`select ${emailKeySql(cellSql(email))} as email_key, ${cellSql(reference)} as reference
        from import_rows r
        where r.session_id = ${session.id} and r.row_number = any(${intArraySql(rowNumbers)})`,
  );
  return {
    emails: rows.flatMap((row) => (row.email_key === null ? [] : [row.email_key])),
    references: rows.flatMap((row) => (row.reference === null ? [] : [row.reference])),
  };
}

/**
 * Validates the changed rows again, with every row that shares an email or reference with
 * them before or after the change (their DUPLICATE_IN_FILE may come or go), and updates the
 * session's counts. One pass over the file's keys finds those rows; only they are previewed
 * again. (Past LARGE_REPLACE_ROWS a replace has the whole file validated again instead.)
 */
async function revalidate(
  tx: Database,
  session: ImportSession,
  rowNumbers: number[],
  before: RowKeys,
): Promise<ImportSession> {
  const groups = await groupSql(tx, session);
  if (rowNumbers.length > 0) {
    const after = await keysOf(tx, session, rowNumbers);
    const affectedRows = await findDuplicateRowsAmong(tx, session, {
      rowNumbers,
      emails: [...new Set([...before.emails, ...after.emails])],
      references: [...new Set([...before.references, ...after.references])],
    });
    await writePreview(tx, session, { validate: true, groups, rowNumbers: affectedRows });
  }
  const counts = await countRows(tx, session.id);
  const [updated] = await tx
    .update(importSessions)
    .set({ validRowCount: counts.valid, invalidRowCount: counts.invalid, updatedAt: sql`now()` })
    .where(eq(importSessions.id, session.id))
    .returning();
  return updated as ImportSession;
}

async function audit(
  tx: Database,
  editor: Editor,
  sessionId: string,
  kind: (typeof importSessionEdits.$inferInsert)['kind'],
  rowCount: number,
  cellCount: number,
) {
  await tx.insert(importSessionEdits).values({
    sessionId,
    tokenId: editor.tokenId,
    kind,
    rowCount,
    cellCount,
  });
}

/**
 * Sets cells of staged rows (by row number and header) at VALIDATION or REVIEW, and validates
 * them again at once (see revalidate). The file's own values are kept to revert to. All or
 * nothing: an unknown row or header changes no cell.
 */
export async function updateImportRows(
  db: Database,
  editor: Editor,
  sessionId: string,
  edits: RowEdit[],
): Promise<EditResult> {
  const cellCount = edits.reduce((sum, edit) => sum + edit.values.length, 0);
  if (cellCount > MAX_EDITED_CELLS) throw new EditTooLargeError(MAX_EDITED_CELLS);
  return db.transaction(async (tx) => {
    const session = await lockEditable(tx, editor, sessionId);
    const indexes = columnIndexOf(
      session,
      edits.flatMap((edit) => edit.values.map((value) => value.header)),
    );
    // Several edits of one row apply in order.
    const changes = new Map<number, Map<number, string | null>>();
    for (const edit of edits) {
      const row = changes.get(edit.rowNumber) ?? new Map<number, string | null>();
      for (const { header, value } of edit.values) {
        row.set(indexes.get(header) as number, cellValue(value));
      }
      changes.set(edit.rowNumber, row);
    }
    const rowNumbers = [...changes.keys()];
    const current = await queryRows<{ row_number: number; cells: (string | null)[] }>(
      tx,
      sql`select row_number, cells from import_rows
          where session_id = ${session.id} and row_number = any(${intArraySql(rowNumbers)})
          for update`,
    );
    const missing = rowNumbers.filter(
      (number) => !current.some((row) => row.row_number === number),
    );
    if (missing.length > 0) throw new RowNotFoundError(missing.sort((a, b) => a - b));
    const before = await keysOf(tx, session, rowNumbers);
    const updated = current.map((row) => {
      const cells = [...row.cells];
      for (const [index, value] of changes.get(row.row_number) ?? []) {
        while (cells.length <= index) cells.push(null);
        cells[index] = value;
      }
      return { row_number: row.row_number, cells };
    });
    // The file's values stay in original_cells; a row edited back to them is unedited again.
    await tx.execute(sql`
      update import_rows r
      set original_cells = case when x.cells = coalesce(r.original_cells, r.cells) then null
                                else coalesce(r.original_cells, r.cells) end,
          cells = x.cells
      from jsonb_to_recordset(${JSON.stringify(updated)}::text::jsonb) as x(row_number int, cells jsonb)
      where r.session_id = ${session.id} and r.row_number = x.row_number`);
    const revalidated = await revalidate(tx, session, rowNumbers, before);
    await audit(tx, editor, session.id, 'UPDATE_ROWS', rowNumbers.length, cellCount);
    return { session: revalidated, rowCount: rowNumbers.length, cellCount };
  });
}

/**
 * Gives edited rows back the file's values and validates them again. Rows never edited are
 * left as they are; a row number the file does not have is an error.
 */
export async function revertImportRows(
  db: Database,
  editor: Editor,
  sessionId: string,
  rowNumbers: number[],
): Promise<EditResult> {
  if (rowNumbers.length > MAX_EDITED_CELLS) throw new EditTooLargeError(MAX_EDITED_CELLS);
  const wanted = [...new Set(rowNumbers)];
  return db.transaction(async (tx) => {
    const session = await lockEditable(tx, editor, sessionId);
    const found = await queryRows<{ row_number: number; edited: boolean }>(
      tx,
      sql`select row_number, original_cells is not null as edited from import_rows
          where session_id = ${session.id} and row_number = any(${intArraySql(wanted)})
          for update`,
    );
    const missing = wanted.filter((number) => !found.some((row) => row.row_number === number));
    if (missing.length > 0) throw new RowNotFoundError(missing.sort((a, b) => a - b));
    const edited = found.filter((row) => row.edited).map((row) => row.row_number);
    const before = await keysOf(tx, session, edited);
    const restored = await queryRows<{ cells: number }>(
      tx,
      sql`with reverted as (
            select row_number, cells as edited_cells from import_rows
            where session_id = ${session.id} and row_number = any(${intArraySql(edited)})
          )
          update import_rows r
          set cells = r.original_cells, original_cells = null
          from reverted v
          where r.session_id = ${session.id} and r.row_number = v.row_number
          returning (
            select count(*)::int from jsonb_array_elements(r.cells) with ordinality o(cell, i)
            where o.cell is distinct from v.edited_cells -> (o.i::int - 1)
          ) as cells`,
    );
    const cellCount = restored.reduce((sum, row) => sum + row.cells, 0);
    const revalidated = await revalidate(tx, session, edited, before);
    await audit(tx, editor, session.id, 'REVERT_ROWS', edited.length, cellCount);
    return { session: revalidated, rowCount: edited.length, cellCount };
  });
}

/**
 * Replaces `find` with `replace` in every cell of one column (literal text, case-sensitive),
 * set-based, range by range over the staged rows. A few changed rows are validated again at
 * once (see revalidate); past LARGE_REPLACE_ROWS the whole file is, by the background
 * validation step, and the session answers busy until it ends. A cell left blank becomes
 * empty.
 */
export async function replaceInColumn(
  db: Database,
  editor: Editor,
  sessionId: string,
  input: { header: string; find: string; replace: string },
): Promise<EditResult> {
  return db.transaction(async (tx) => {
    const session = await lockEditable(tx, editor, sessionId);
    const index = columnIndexOf(session, [input.header]).get(input.header) as number;
    const path = `{${index}}`;
    const matching = sql`r.session_id = ${session.id}
      and strpos(r.cells ->> ${index}::int, ${input.find}::text) > 0`;
    // The row's cells with the replace done (in an UPDATE, r.cells is the row as it was).
    const replaced = sql`nullif(btrim(replace(r.cells ->> ${index}::int, ${input.find}::text, ${input.replace}::text)), '')`;
    const replacedCells = sql`jsonb_set(r.cells, ${path}::text[], coalesce(to_jsonb(${replaced}), 'null'::jsonb))`;
    // The keys before the change, for a replace of few rows (a larger one validates all).
    const email = columnOf(session.columns, 'email');
    const reference = columnOf(session.columns, 'reference');
    const keyed = await queryRows<{ email_key: string | null; reference: string | null }>(
      tx,
      sql`select ${emailKeySql(cellSql(email))} as email_key, ${cellSql(reference)} as reference
          from import_rows r where ${matching}
          limit ${LARGE_REPLACE_ROWS + 1}`,
    );
    const before: RowKeys = {
      emails: keyed.flatMap((row) => (row.email_key === null ? [] : [row.email_key])),
      references: keyed.flatMap((row) => (row.reference === null ? [] : [row.reference])),
    };
    // Row numbers are the sheet's (a header below title lines starts them later than 2).
    const [bounds] = await queryRows<{ first: number | null; last: number | null }>(
      tx,
      sql`select min(row_number) as first, max(row_number) as last
          from import_rows where session_id = ${session.id}`,
    );
    const rowNumbers: number[] = [];
    const lastRow = bounds?.last ?? 0;
    for (let first = bounds?.first ?? 1; first <= lastRow; first += REPLACE_RANGE_ROWS) {
      const changed = await queryRows<{ row_number: number }>(
        tx,
        sql`update import_rows r
            set original_cells = case when ${replacedCells} = coalesce(r.original_cells, r.cells)
                                      then null else coalesce(r.original_cells, r.cells) end,
                cells = ${replacedCells}
            where ${matching}
              and r.row_number between ${first}::int and ${first + REPLACE_RANGE_ROWS - 1}::int
            returning r.row_number`,
      );
      for (const row of changed) rowNumbers.push(row.row_number);
    }
    const count = rowNumbers.length;
    await audit(tx, editor, session.id, 'REPLACE_IN_COLUMN', count, count);
    if (count > LARGE_REPLACE_ROWS) {
      const queuedSession = await queueStep(tx, session, {
        stage: session.stage,
        step: 'VALIDATE',
      });
      return { session: queuedSession, rowCount: count, cellCount: count };
    }
    const revalidated = await revalidate(tx, session, rowNumbers, before);
    return { session: revalidated, rowCount: count, cellCount: count };
  });
}

/**
 * A corrected file into the same session: stored like startImport's, then read again from
 * stage 1, matching its columns with the decisions confirmed at stage 2 (no second stage 2
 * unless the new file has columns they do not cover). The old file's rows and edits go.
 */
export async function replaceImportFile(
  db: Database,
  editor: Editor,
  sessionId: string,
  upload: UploadToStore,
): Promise<ImportSession> {
  const stored = await storeUpload(db, upload);
  try {
    return await db.transaction(async (tx) => {
      const session = await lockSession(tx, editor.companyId, sessionId);
      assertStage(session, ['CUSTOM_FIELDS', ...EDITABLE_STAGES]);
      if (session.busy) throw new SessionBusyError(session.stage);
      const decisions =
        session.columnDecisions ??
        session.columns
          .filter((column) => column.status !== 'NEW')
          .map(({ header, status, fieldKey }) => ({ header, status, fieldKey }));
      await deleteLoadedRows(tx, [session.id]);
      const [updated] = await tx
        .update(importSessions)
        .set({
          uploadFileId: stored.id,
          fileName: stored.fileName,
          fileSize: stored.size,
          columnDecisions: decisions,
          columns: [],
          rowCount: 0,
          validRowCount: 0,
          invalidRowCount: 0,
          previewBasis: null,
          stage: 'UPLOAD',
          step: 'READ',
          busy: true,
          progress: { phase: 'QUEUED', done: 0, total: null },
          updatedAt: sql`now()`,
        })
        .where(eq(importSessions.id, session.id))
        .returning();
      await audit(tx, editor, session.id, 'REPLACE_FILE', 0, 0);
      if (session.uploadFileId) await deleteUpload(tx, session.uploadFileId);
      return updated as ImportSession;
    });
  } catch (error) {
    await deleteUpload(db, stored.id);
    throw error;
  }
}

export type ImportSessionEdit = typeof importSessionEdits.$inferSelect;

/** The session's audit of fixes, oldest first. */
export async function listSessionEdits(
  db: Database,
  sessionId: string,
): Promise<ImportSessionEdit[]> {
  return db
    .select()
    .from(importSessionEdits)
    .where(eq(importSessionEdits.sessionId, sessionId))
    .orderBy(importSessionEdits.createdAt, importSessionEdits.id);
}
