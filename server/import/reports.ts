import { once } from 'node:events';
import type { Stream } from 'node:stream';
import { finished } from 'node:stream/promises';
import ExcelJS from 'exceljs';

export interface ReportRowError {
  /** The column it concerns (0-based, as in the uploaded sheet), or null for the whole row. */
  columnIndex: number | null;
  code: string;
  message: string;
}

export interface ErrorReportRow {
  rowNumber: number;
  cells: (string | null)[];
  errors: ReportRowError[];
}

export interface ImportedUsersReportRow {
  /** Null for a user a SYNC archives: it is in no row of the file. */
  rowNumber: number | null;
  cells: (string | null)[];
  /** The file's values when the admin edited the row during the import; else null. */
  originalCells?: (string | null)[] | null;
  action: 'CREATE' | 'UPDATE' | 'UNCHANGED' | 'RESTORE' | 'ARCHIVE';
  trainingGroup: string | null;
}

interface ReportColumn {
  header: string;
  width: number;
}

interface ReportInput<Row> {
  /** The uploaded sheet's headers, in column order. */
  headers: string[];
  /** Rows in sheet order; read one at a time, so they can come straight from a query cursor. */
  rows: AsyncIterable<Row>;
}

const ROW_NUMBER_HEADER = 'Row';
const ERRORS_HEADER = 'Errors';
const ACTION_HEADER = 'Action';
const TRAINING_GROUP_HEADER = 'Training group';

const BAD_CELL_FILL: ExcelJS.Fill = {
  type: 'pattern',
  pattern: 'solid',
  fgColor: { argb: 'FFFFC7CE' },
};

/** Cells the admin edited during the import: yellow, with the file's value as a note. */
const EDITED_CELL_FILL: ExcelJS.Fill = {
  type: 'pattern',
  pattern: 'solid',
  fgColor: { argb: 'FFFFEB9C' },
};

/**
 * The streaming writer keeps every note in memory until the sheet is committed (the zip
 * holds notes in a separate entry after the sheet), about 1 KB each, and Excel itself slows to
 * a crawl with hundreds of thousands of them. Past this many, bad cells keep their red fill
 * and the Errors column still has every message.
 */
export const MAX_CELL_NOTES = 10_000;

const ROW_NUMBER_WIDTH = 8;
const MIN_COLUMN_WIDTH = 12;
// Past this a column would push the others off screen.
const MAX_COLUMN_WIDTH = 50;
const ERRORS_WIDTH = 80;

/** Excel refuses to open a file with a longer cell. */
const MAX_CELL_LENGTH = 32_767;

/**
 * Every this many rows, writing yields to the event loop so the zip can compress while rows
 * are produced (a generator of ready rows never yields by itself).
 */
const ROWS_BETWEEN_YIELDS = 100;

/** Sheet XML allowed to wait for the zip before writing pauses until the zip has caught up. */
const MAX_QUEUED_SHEET_BYTES = 1024 * 1024;

// A spreadsheet (or a CSV export of it) may evaluate text starting with these as a formula.
const FORMULA_TRIGGERS = ['=', '+', '-', '@', '\t', '\r'];

/**
 * Makes text that a spreadsheet could take for a formula plain text by prefixing a single
 * quote (OWASP's advice against CSV/formula injection); other text is returned unchanged.
 */
export function neutralizeFormula(text: string): string {
  return FORMULA_TRIGGERS.some((trigger) => text.startsWith(trigger)) ? `'${text}` : text;
}

/** Every string written to a report goes through here: a cell value is never a formula. */
function cellText(text: string): string {
  return neutralizeFormula(text).slice(0, MAX_CELL_LENGTH);
}

/** The cells of one uploaded row, one per header, so the columns after them never shift. */
function uploadedCells(headers: string[], cells: (string | null)[]): (string | null)[] {
  return headers.map((_, index) => {
    const cell = cells[index];
    return cell === null || cell === undefined ? null : cellText(cell);
  });
}

/** "A", "B", …, "Z", "AA": the column's letter in the uploaded sheet. */
function columnLetter(columnIndex: number): string {
  let letters = '';
  for (let rest = columnIndex + 1; rest > 0; rest = Math.floor((rest - 1) / 26)) {
    letters = String.fromCharCode(65 + ((rest - 1) % 26)) + letters;
  }
  return letters;
}

function fittedColumn(header: string): ReportColumn {
  return {
    header,
    width: Math.min(MAX_COLUMN_WIDTH, Math.max(MIN_COLUMN_WIDTH, header.length + 4)),
  };
}

function columnName(headers: string[], columnIndex: number): string {
  return headers[columnIndex]?.trim() || `Column ${columnLetter(columnIndex)}`;
}

/** The part of a (readable-stream) Writable that tells how much it has queued. */
interface QueueingWritable extends NodeJS.EventEmitter {
  _writableState: { length: number };
}

function isQueueingWritable(value: unknown): value is QueueingWritable {
  if (typeof value !== 'object' || value === null || !('_writableState' in value)) return false;
  const state = value._writableState;
  return typeof state === 'object' && state !== null && 'length' in state;
}

/**
 * exceljs 4.4 pipes each sheet into its zip ignoring backpressure, so rows written faster than
 * the zip compresses them, or than `output` takes them, pile up in memory: in the stream that
 * the zip reads the sheet from (the first pipe of the sheet's internal stream). Writing waits
 * for that stream to drain. It is internal, so a move in another exceljs version fails every
 * report at once here, rather than letting a big one fill memory.
 */
function sheetZipInput(sheet: ExcelJS.Worksheet): QueueingWritable {
  const sheetStream = (sheet as unknown as { stream?: { pipes?: unknown[] } }).stream;
  const zipInput = sheetStream?.pipes?.[0];
  if (!isQueueingWritable(zipInput)) {
    throw new Error('exceljs streaming writer: cannot find the stream feeding the zip');
  }
  return zipInput;
}

/**
 * Streams a one-sheet workbook to `output`: a bold, frozen header row, then one row per item
 * of `rows`, added by `addRow`. Resolves once `output` has finished; rejects if it fails or
 * closes early (e.g. the client went away), or if `rows` throws; the caller owns `output`
 * and destroys it then.
 */
async function writeReport<Row>(
  output: NodeJS.WritableStream,
  sheetName: string,
  columns: ReportColumn[],
  rows: AsyncIterable<Row>,
  addRow: (sheet: ExcelJS.Worksheet, row: Row) => ExcelJS.Row,
): Promise<void> {
  const workbook = new ExcelJS.stream.xlsx.WorkbookWriter({
    // exceljs types this as a Stream class but only pipes its zip into it.
    stream: output as unknown as Stream,
    useStyles: true,
    // Shared strings would keep every distinct string in memory until the end.
    useSharedStrings: false,
  });
  // The streaming writer emits a sheet's views when the sheet is created, so pass them here.
  const sheet = workbook.addWorksheet(sheetName, { views: [{ state: 'frozen', ySplit: 1 }] });
  const zipInput = sheetZipInput(sheet);
  // Column definitions are emitted before the first row, so set them before adding it.
  sheet.columns = columns.map((column) => ({ width: column.width }));
  const outputFinished = finished(output);
  // Once `output` has failed, stop reading rows: nobody will get what is written from then on.
  const outputFailure = new AbortController();
  outputFinished.catch((error: unknown) => outputFailure.abort(error));
  const writing = (async () => {
    const headerRow = sheet.addRow(columns.map((column) => cellText(column.header)));
    headerRow.font = { bold: true };
    headerRow.commit();
    let rowsWritten = 0;
    for await (const row of rows) {
      outputFailure.signal.throwIfAborted();
      addRow(sheet, row).commit();
      rowsWritten += 1;
      if (rowsWritten % ROWS_BETWEEN_YIELDS === 0) {
        await new Promise((resolve) => setImmediate(resolve));
        if (zipInput._writableState.length > MAX_QUEUED_SHEET_BYTES) {
          await once(zipInput, 'drain', { signal: outputFailure.signal });
        }
      }
    }
    sheet.commit();
    await workbook.commit();
  })();
  await Promise.all([writing, outputFinished]);
}

/**
 * Writes the error report: the uploaded sheet's rows that have errors, with the bad cells
 * marked. Sheet "Errors"; columns: "Row" (the row's number in the uploaded file, first so
 * people can find it there), then the uploaded columns under their own headers (so each is
 * one column to the right of where it was uploaded), then "Errors" with every message of the
 * row, prefixed by its column's header. Each bad cell is filled red and carries its
 * message(s) as a note (the first MAX_CELL_NOTES bad cells; see there). `rows` are written as
 * given: pass only rows with errors, in row order.
 */
export async function writeErrorReport(
  output: NodeJS.WritableStream,
  input: ReportInput<ErrorReportRow>,
): Promise<void> {
  const { headers } = input;
  let notesWritten = 0;
  await writeReport(
    output,
    'Errors',
    [
      { header: ROW_NUMBER_HEADER, width: ROW_NUMBER_WIDTH },
      ...headers.map(fittedColumn),
      { header: ERRORS_HEADER, width: ERRORS_WIDTH },
    ],
    input.rows,
    (sheet, row) => {
      const summary = row.errors.map((error) =>
        error.columnIndex === null
          ? error.message
          : `${columnName(headers, error.columnIndex)}: ${error.message}`,
      );
      const added = sheet.addRow([
        row.rowNumber,
        ...uploadedCells(headers, row.cells),
        cellText(summary.join('; ')),
      ]);
      const messagesByColumn = new Map<number, string[]>();
      for (const error of row.errors) {
        // An error about a column past the headers has no cell here; the Errors column names it.
        if (error.columnIndex === null || error.columnIndex >= headers.length) continue;
        const messages = messagesByColumn.get(error.columnIndex) ?? [];
        messages.push(error.message);
        messagesByColumn.set(error.columnIndex, messages);
      }
      for (const [columnIndex, messages] of messagesByColumn) {
        // +1 for exceljs's 1-based columns, +1 for the Row column in front.
        const cell = added.getCell(columnIndex + 2);
        cell.fill = BAD_CELL_FILL;
        if (notesWritten < MAX_CELL_NOTES) {
          cell.note = cellText(messages.join('\n'));
          notesWritten += 1;
        }
      }
      return added;
    },
  );
}

/**
 * Writes the report of users to be imported. Sheet "Users"; columns: "Row" (the row's number in
 * the uploaded file), the uploaded columns under their own headers, "Action" (CREATE, UPDATE or
 * UNCHANGED) and "Training group" (blank when none). Cells edited during the import are
 * filled yellow, with the file's value as their note.
 */
export async function writeImportedUsersReport(
  output: NodeJS.WritableStream,
  input: ReportInput<ImportedUsersReportRow>,
): Promise<void> {
  const { headers } = input;
  let notesWritten = 0;
  await writeReport(
    output,
    'Users',
    [
      { header: ROW_NUMBER_HEADER, width: ROW_NUMBER_WIDTH },
      ...headers.map(fittedColumn),
      { header: ACTION_HEADER, width: MIN_COLUMN_WIDTH },
      fittedColumn(TRAINING_GROUP_HEADER),
    ],
    input.rows,
    (sheet, row) => {
      const added = sheet.addRow([
        row.rowNumber,
        ...uploadedCells(headers, row.cells),
        row.action,
        row.trainingGroup === null ? null : cellText(row.trainingGroup),
      ]);
      const original = row.originalCells;
      if (!original) return added;
      for (const columnIndex of headers.keys()) {
        const was = original[columnIndex] ?? null;
        if (was === (row.cells[columnIndex] ?? null)) continue;
        // +1 for exceljs's 1-based columns, +1 for the Row column in front.
        const cell = added.getCell(columnIndex + 2);
        cell.fill = EDITED_CELL_FILL;
        if (notesWritten < MAX_CELL_NOTES) {
          cell.note = cellText(`Edited during the import. The file had: ${was ?? '(blank)'}`);
          notesWritten += 1;
        }
      }
      return added;
    },
  );
}
