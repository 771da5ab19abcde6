import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import ExcelJS from 'exceljs';
import yauzl, { type Entry, type ZipFile } from 'yauzl';
import { headerKey } from '../column-aliases.js';

/**
 * Reads the users sheet of an uploaded .xlsx as a stream of events. Runs on any thread; the
 * server runs it in a worker (reader-thread.ts) so a hostile file can only exhaust that
 * worker's memory and time.
 *
 * Order of work:
 * 1. The first bytes tell a zip from an OLE2 file (old .xls, or a password-protected .xlsx).
 * 2. yauzl reads the central directory: the number of entries, their names and their
 *    declared sizes are checked against the limits before anything is inflated.
 * 3. exceljs's streaming reader reads a zip rebuilt on the fly from the parts it needs, each
 *    inflated by yauzl as it streams and stored uncompressed: yauzl checks each part against
 *    its declared size as it inflates, and the bytes are counted against `maxInflatedBytes`,
 *    so a zip bomb is stopped while inflating (exceljs 4.4.0 inflates without any cap; here
 *    it inflates nothing). exceljs parses zip headers sequentially while yauzl uses the
 *    central directory; an attacker could make the two disagree, so exceljs never sees the
 *    original file. The rebuilt zip also puts the workbook, styles and shared strings before
 *    the sheets and leaves out hidden sheets and every other part: exceljs then never buffers
 *    a sheet to a temporary file, it hands over the visible sheets in tab order, and nothing
 *    is inflated that is not read. (Before, every part was inflated once to count it and
 *    again by exceljs: 1.7-2 s of a million-row file's read went to that first pass.)
 */

export interface ReadLimits {
  /** Labels of the required built-in fields, e.g. ['Email', 'userName', 'reference']. */
  requiredHeaders: string[];
  /**
   * headerKeys (column-aliases.ts) of every header that stands for a required field: labels,
   * aliases, remembered mappings. With it, a first row that lacks some required headers is
   * still the header row when it holds one of these (stage 2 maps the rest), and
   * MISSING_COLUMNS means that no header could be recognised.
   */
  knownHeaderKeys?: string[];
  /** Data rows (blank rows do not count). */
  maxRows: number;
  /** Columns of the header row, up to its last non-blank header. */
  maxColumns: number;
  /**
   * Total bytes of the zip's entries once inflated: their declared sizes, checked first, and
   * the parts read, counted while inflating. Below 4 GiB.
   */
  maxInflatedBytes: number;
  /** Zip entries. */
  maxEntries: number;
  /** The whole read. */
  timeBudgetMs: number;
  /** Rows per 'rows' event, default 2000. */
  batchSize?: number;
}

export type ReadEvent =
  /**
   * At least every 250 ms while reading. INFLATING, until the first data row: `done` is the
   * bytes of the parts read unpacked so far (the workbook, styles, shared strings and sheets)
   * and `total` the sum of their declared sizes (yauzl checks each part against its declared
   * size, so it is exact for a sound file). READING: `done` is data rows so far and `total`
   * is null (the streaming reader does not know the row count in advance).
   */
  | { type: 'progress'; phase: 'INFLATING' | 'READING'; done: number; total: number | null }
  /**
   * The data sheet's header row. `headers[i]` is the trimmed header of column i (0-based,
   * column A is 0). A column whose header cell is blank has '' and is ignored: its cells
   * are always null, because a value without a header cannot be mapped to a field.
   */
  | { type: 'header'; sheetName: string; headerRowNumber: number; headers: string[] }
  /**
   * Non-blank data rows in sheet order. `rowNumber` is the spreadsheet's own row number;
   * `cells[i]` belongs to `headers[i]`, null when blank. Cells right of the last header are
   * ignored.
   */
  | { type: 'rows'; rows: { rowNumber: number; cells: (string | null)[] }[] };

export type WorkbookReadErrorCode =
  | 'NOT_A_WORKBOOK'
  | 'CORRUPT_FILE'
  | 'NO_DATA_SHEET'
  | 'MISSING_COLUMNS'
  | 'DUPLICATE_HEADERS'
  | 'TOO_MANY_ROWS'
  | 'TOO_MANY_COLUMNS'
  | 'TOO_LARGE_INFLATED'
  | 'TIME_LIMIT'
  | 'RESOURCE_LIMIT'
  | 'ENCRYPTED';

/** A reason the file cannot be imported, in words the admin who uploaded it can act on. */
export class WorkbookReadError extends Error {
  override readonly name = 'WorkbookReadError';

  constructor(
    readonly code: WorkbookReadErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

const SAVE_AS_XLSX = 'Save it from Excel as "Excel Workbook (*.xlsx)" and upload that file.';

const ZIP_SIGNATURE = Buffer.from([0x50, 0x4b, 0x03, 0x04]);
const OLE2_SIGNATURE = Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]);
/** Excel stores an encrypted .xlsx as an OLE2 file with a stream of this (UTF-16) name. */
const ENCRYPTED_PACKAGE_NAME = Buffer.from('EncryptedPackage', 'utf16le');

const WORKBOOK_PART = 'xl/workbook.xml';
const WORKBOOK_RELS_PART = 'xl/_rels/workbook.xml.rels';
const STYLES_PART = 'xl/styles.xml';
const SHARED_STRINGS_PART = 'xl/sharedStrings.xml';
/** The only worksheet part names exceljs's streaming reader reads. */
const WORKSHEET_PART = /^xl\/worksheets\/sheet\d+\.xml$/;

/** Stands in when a workbook has no shared strings (all numbers or inline strings). */
const EMPTY_SHARED_STRINGS = Buffer.from(
  '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"/>',
);
/** Empty "end of central directory" record: tells exceljs's unzipper the zip is over. */
const END_OF_CENTRAL_DIRECTORY = Buffer.concat([
  Buffer.from([0x50, 0x4b, 0x05, 0x06]),
  Buffer.alloc(18),
]);

/** `styles: 'cache'` makes exceljs apply number formats, which is how it recognises dates. */
const READER_OPTIONS = {
  sharedStrings: 'cache',
  hyperlinks: 'ignore',
  styles: 'cache',
  worksheets: 'emit',
  entries: 'emit',
} as const;

const DEFAULT_BATCH_SIZE = 2000;
/**
 * How often the read reports progress. Followers are promised an event at least every 250 ms;
 * an event can wait behind the batches still being staged, so the reader reports well within.
 */
const PROGRESS_INTERVAL_MS = 150;
/** How often a wait on exceljs or yauzl wakes up to check the clock and report progress. */
const TICK_INTERVAL_MS = 50;
const TICK = Symbol('tick');

/** Fields of exceljs's streaming WorkbookReader that its type declarations leave out. */
interface WorkbookReaderInternals {
  model?: { sheets?: { name: string; state?: string; rId: string }[] };
  workbookRels?: { Id: string; Target: string }[];
  properties?: { model?: { date1904?: boolean } };
}

/**
 * exceljs's streaming WorksheetReader: `parse()` yields the events of each chunk of the sheet's
 * XML as an array (its row iterator is built on it); the declarations only type the iterator.
 */
interface WorksheetReaderInternals {
  parse(): AsyncIterable<{ eventType: string; value: ExcelJS.Row }[]>;
}

interface WorksheetPart {
  sheetName: string;
  entry: Entry;
}

interface SheetList {
  /** Visible worksheets in tab order. */
  visible: WorksheetPart[];
  hiddenCount: number;
}

/** What the first non-empty row of a sheet that is not the data sheet lacked. */
interface SkippedSheet {
  sheetName: string;
  headerRowNumber: number;
  missingHeaders: string[];
  /** Non-blank cells of the first row: one is a title or a note, more look like headers. */
  headerCount?: number;
}

type ZipPart = Entry | { fileName: string; content: Buffer };

export async function* readWorkbook(
  filePath: string,
  limits: ReadLimits,
  signal?: AbortSignal,
): AsyncGenerator<ReadEvent> {
  const clock = new ReadClock(limits.timeBudgetMs, signal);
  let zip: ZipFile | undefined;
  try {
    await checkFileType(filePath);
    zip = await yauzl.openPromise(filePath, {
      lazyEntries: true,
      autoClose: false,
      validateEntrySizes: true,
    });
    const entries = await listEntries(zip, limits, clock);
    const budget = new InflateBudget(limits.maxInflatedBytes);
    const sheets = await listSheets(zip, entries, budget, clock);
    yield* readDataSheet(zip, entries, sheets, limits, budget, clock);
  } catch (error) {
    if (error instanceof WorkbookReadError) throw error;
    if (signal?.aborted && error === signal.reason) throw error;
    // exceljs, saxes, unzipper and yauzl throw plain errors ("undefined entity" for a
    // DOCTYPE, TypeErrors for parts that are not what exceljs expects): all mean a bad file.
    throw corruptFileError(error instanceof Error ? error.message : String(error));
  } finally {
    clock.stop();
    zip?.close();
  }
}

async function checkFileType(filePath: string): Promise<void> {
  const file = await open(filePath);
  const start = Buffer.alloc(OLE2_SIGNATURE.length);
  try {
    await file.read(start, 0, start.length, 0);
  } finally {
    await file.close();
  }
  if (start.subarray(0, ZIP_SIGNATURE.length).equals(ZIP_SIGNATURE)) return;
  if (start.equals(OLE2_SIGNATURE)) {
    if (await fileContains(filePath, ENCRYPTED_PACKAGE_NAME)) {
      throw new WorkbookReadError(
        'ENCRYPTED',
        'The workbook is protected with a password. Remove the password in Excel (File > Info > Protect Workbook > Encrypt with Password), save, and upload the file again.',
      );
    }
    throw new WorkbookReadError(
      'NOT_A_WORKBOOK',
      `The file is in the old Excel 97-2003 format (.xls) or another Office format, not .xlsx. ${SAVE_AS_XLSX}`,
    );
  }
  throw new WorkbookReadError(
    'NOT_A_WORKBOOK',
    `The file is not an Excel workbook (.xlsx). ${SAVE_AS_XLSX}`,
  );
}

async function fileContains(filePath: string, needle: Buffer): Promise<boolean> {
  // Keep the end of the previous chunk so a match split across two chunks is found.
  let carry = Buffer.alloc(0);
  for await (const chunk of createReadStream(filePath)) {
    const window = Buffer.concat([carry, chunk as Buffer]);
    if (window.includes(needle)) return true;
    carry = window.subarray(window.length - needle.length + 1);
  }
  return false;
}

/**
 * Checks the zip's central directory before anything is inflated: the number of entries,
 * unique names, no encryption, declared sizes within the cap, a workbook part. Returns the
 * entries by name.
 */
async function listEntries(
  zip: ZipFile,
  limits: ReadLimits,
  clock: ReadClock,
): Promise<Map<string, Entry>> {
  if (zip.entryCount > limits.maxEntries) throw tooManyEntries(limits.maxEntries);
  const entries = new Map<string, Entry>();
  let declaredBytes = 0;
  for await (const entry of zip.eachEntry()) {
    clock.check();
    if (entries.has(entry.fileName)) {
      throw corruptFileError(`the zip holds "${entry.fileName}" twice`);
    }
    if (entry.isEncrypted()) {
      throw new WorkbookReadError(
        'ENCRYPTED',
        'The file is encrypted. Save the workbook without encryption and upload it again.',
      );
    }
    entries.set(entry.fileName, entry);
    declaredBytes += entry.uncompressedSize;
    if (declaredBytes > limits.maxInflatedBytes) throw tooLargeInflated(limits.maxInflatedBytes);
  }
  if (!entries.has(WORKBOOK_PART)) {
    throw new WorkbookReadError(
      'NOT_A_WORKBOOK',
      `The file is a zip archive but not an Excel workbook (.xlsx). ${SAVE_AS_XLSX}`,
    );
  }
  return entries;
}

/** The bytes a read may inflate, counted as they come out of yauzl for every rebuilt zip. */
class InflateBudget {
  private inflatedBytes = 0;

  constructor(private readonly maxInflatedBytes: number) {}

  /** Counts bytes just inflated; TOO_LARGE_INFLATED past the cap. */
  count(bytes: number): void {
    this.inflatedBytes += bytes;
    if (this.inflatedBytes > this.maxInflatedBytes) throw tooLargeInflated(this.maxInflatedBytes);
  }
}

/**
 * Lets exceljs read the workbook part and its relationships (so sheet names and states are
 * read exactly as exceljs reads them) and maps each sheet to its worksheet part. Hidden and
 * "very hidden" sheets (`<sheet state="hidden">`, which the streaming reader exposes as
 * `worksheetReader.state` and in `model.sheets`) are left out: users never see them.
 */
async function listSheets(
  zip: ZipFile,
  entries: Map<string, Entry>,
  budget: InflateBudget,
  clock: ReadClock,
): Promise<SheetList> {
  const workbook = entries.get(WORKBOOK_PART);
  const relationships = entries.get(WORKBOOK_RELS_PART);
  if (!workbook || !relationships) {
    throw corruptFileError(`the zip has no ${WORKBOOK_RELS_PART}`);
  }
  const { input, checkInput } = rebuiltInput(zip, [workbook, relationships], budget);
  const reader = new ExcelJS.stream.xlsx.WorkbookReader(input, READER_OPTIONS);
  try {
    // The rebuilt zip holds no worksheets: iterating only makes exceljs parse the two parts.
    for await (const _tick of clock.withTicks(reader)) {
      checkInput();
      clock.check();
    }
    checkInput();
  } finally {
    input.destroy();
  }
  const { model, workbookRels = [] } = reader as unknown as WorkbookReaderInternals;
  const visible: WorksheetPart[] = [];
  const seenParts = new Set<string>();
  let hiddenCount = 0;
  for (const sheet of model?.sheets ?? []) {
    if (sheet.state === 'hidden' || sheet.state === 'veryHidden') {
      hiddenCount += 1;
      continue;
    }
    const target = workbookRels.find((relationship) => relationship.Id === sheet.rId)?.Target;
    const partName = target && resolveWorkbookTarget(target);
    const entry = partName ? entries.get(partName) : undefined;
    // Chart sheets and dangling references have no worksheet part: nothing to read there.
    if (!partName || !entry || !WORKSHEET_PART.test(partName) || seenParts.has(partName)) continue;
    seenParts.add(partName);
    visible.push({ sheetName: sheet.name, entry });
  }
  return { visible, hiddenCount };
}

/** Relationship targets are relative to xl/, or absolute within the package. */
function resolveWorkbookTarget(target: string): string {
  return target.startsWith('/')
    ? posix.normalize(target.slice(1))
    : posix.normalize(posix.join('xl', target));
}

/**
 * Streams the visible sheets through exceljs in tab order. The first one whose first
 * non-empty row holds all required headers is the data sheet; its rows are emitted and
 * reading stops there.
 */
async function* readDataSheet(
  zip: ZipFile,
  entries: Map<string, Entry>,
  sheets: SheetList,
  limits: ReadLimits,
  budget: InflateBudget,
  clock: ReadClock,
): AsyncGenerator<ReadEvent> {
  const parts: ZipPart[] = [
    ...[WORKBOOK_PART, WORKBOOK_RELS_PART, STYLES_PART].flatMap((name) => entries.get(name) ?? []),
    // exceljs buffers every sheet to a temporary file until it has seen shared strings.
    entries.get(SHARED_STRINGS_PART) ?? {
      fileName: SHARED_STRINGS_PART,
      content: EMPTY_SHARED_STRINGS,
    },
    ...sheets.visible.map((sheet) => sheet.entry),
  ];
  const unpacking = new Unpacking();
  const declaredBytes = parts.reduce(
    (sum, part) => sum + ('content' in part ? part.content.length : part.uncompressedSize),
    0,
  );
  // Until the first data row, the read is unpacking parts (and exceljs parsing them).
  const progress = (rows: number): ReadEvent =>
    rows === 0
      ? { type: 'progress', phase: 'INFLATING', done: unpacking.bytes, total: declaredBytes }
      : { type: 'progress', phase: 'READING', done: rows, total: null };
  const { input, checkInput } = rebuiltInput(zip, parts, budget, unpacking);
  const reader = new ExcelJS.stream.xlsx.WorkbookReader(input, READER_OPTIONS);
  const skippedSheets: SkippedSheet[] = [];
  let sheetIndex = 0;
  try {
    yield progress(0);
    for await (const worksheet of clock.withTicks(reader)) {
      checkInput();
      clock.check();
      if (clock.progressDue()) yield progress(0);
      if (worksheet === TICK) continue;
      // exceljs emits the worksheets in the order of the rebuilt zip, which is tab order.
      const sheet = sheets.visible[sheetIndex++];
      if (!sheet) throw new Error('exceljs emitted more worksheets than the zip holds');
      const date1904 = (reader as unknown as WorkbookReaderInternals).properties?.model?.date1904;
      const skipped = yield* readSheet(
        worksheet as unknown as WorksheetReaderInternals,
        sheet.sheetName,
        { ...limits, date1904: date1904 === true },
        progress,
        checkInput,
        clock,
      );
      if (!skipped) {
        // exceljs reads a part as long as its header says: the rows are only sound once
        // yauzl has inflated the whole part to exactly that size (not more, as a zip bomb).
        await clock.whileWaiting(unpacking.whole(sheet.entry.fileName));
        return;
      }
      skippedSheets.push(skipped);
    }
    checkInput();
  } finally {
    input.destroy();
  }
  throw noDataSheet(limits, skippedSheets, sheets.hiddenCount);
}

/**
 * Reads one sheet. If its first non-empty row holds the required headers, emits the header
 * and the rows and returns nothing; otherwise reads the sheet to its end (leaving a sheet
 * half-read would make exceljs buffer the rest of it in memory) and says what was missing.
 */
async function* readSheet(
  worksheet: WorksheetReaderInternals,
  sheetName: string,
  options: ReadLimits & { date1904: boolean },
  progress: (rows: number) => ReadEvent,
  /** Throws what stopped the input, a part that inflated past its size say. */
  checkInput: () => void,
  clock: ReadClock,
): AsyncGenerator<ReadEvent, SkippedSheet | undefined> {
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  let headers: string[] | undefined;
  let skipped: SkippedSheet | undefined;
  let previousRowNumber = 0;
  let rowCount = 0;
  let batch: { rowNumber: number; cells: (string | null)[] }[] = [];
  // parse() hands over the rows of each chunk of XML at once (exceljs's row iterator awaits
  // every row): a row then costs no promise, and the clock races one wait per chunk.
  for await (const events of clock.withTicks(worksheet.parse())) {
    checkInput();
    clock.check();
    if (clock.progressDue()) {
      yield progress(rowCount);
    }
    if (events === TICK || skipped) continue;
    for (const { eventType, value: row } of events) {
      if (eventType !== 'row') continue;
      if (clock.progressDue()) yield progress(rowCount);
      // Row numbers identify staged rows downstream, so they must be unique: a sound file
      // lists its rows in ascending order.
      if (!Number.isSafeInteger(row.number) || row.number <= previousRowNumber) {
        throw new Error(
          `sheet "${sheetName}" has a row numbered ${row.number} after row ${previousRowNumber}`,
        );
      }
      previousRowNumber = row.number;
      if (!headers) {
        const texts = readCells(row, row.cellCount, options.date1904);
        if (texts.every((text) => text === null)) continue;
        const missingHeaders = findMissingHeaders(texts, options.requiredHeaders);
        if (missingHeaders.length > 0 && !holdsKnownHeader(texts, options.knownHeaderKeys)) {
          const headerCount = texts.filter((text) => text !== null).length;
          skipped = { sheetName, headerRowNumber: row.number, missingHeaders, headerCount };
          break;
        }
        headers = checkHeaders(texts, sheetName, options.maxColumns);
        yield { type: 'header', sheetName, headerRowNumber: row.number, headers };
        continue;
      }
      const cells = readCells(row, headers.length, options.date1904);
      // Cells under a blank header are ignored (see ReadEvent).
      for (const [index, header] of headers.entries()) if (header === '') cells[index] = null;
      if (cells.every((cell) => cell === null)) continue;
      rowCount += 1;
      if (rowCount > options.maxRows) throw tooManyRows(options.maxRows);
      batch.push({ rowNumber: row.number, cells });
      if (batch.length >= batchSize) {
        yield { type: 'rows', rows: batch };
        batch = [];
      }
    }
  }
  if (!headers) {
    return skipped ?? { sheetName, headerRowNumber: 0, missingHeaders: options.requiredHeaders };
  }
  if (batch.length > 0) yield { type: 'rows', rows: batch };
  yield { type: 'progress', phase: 'READING', done: rowCount, total: null };
  return undefined;
}

function readCells(row: ExcelJS.Row, width: number, date1904: boolean): (string | null)[] {
  const cells: (string | null)[] = [];
  for (let column = 1; column <= width; column++) {
    const cell = row.findCell(column);
    cells.push(cell ? convertCellValue(cell.value, cell.numFmt, date1904) : null);
  }
  return cells;
}

/** Header cells compare case-insensitively after trimming (DESIGN §6). */
function normalizeHeader(header: string): string {
  return header.trim().toLowerCase();
}

function holdsKnownHeader(texts: (string | null)[], knownHeaderKeys: string[] | undefined) {
  if (!knownHeaderKeys) return false;
  const known = new Set(knownHeaderKeys);
  return texts.some((text) => text !== null && known.has(headerKey(text)));
}

function findMissingHeaders(texts: (string | null)[], requiredHeaders: string[]): string[] {
  const present = new Set(texts.flatMap((text) => (text === null ? [] : [normalizeHeader(text)])));
  return requiredHeaders.filter((header) => !present.has(normalizeHeader(header)));
}

/** Turns the data sheet's header cells into `headers`, rejecting too many or repeated ones. */
function checkHeaders(texts: (string | null)[], sheetName: string, maxColumns: number): string[] {
  let width = texts.length;
  while (width > 0 && texts[width - 1] === null) width -= 1;
  if (width > maxColumns) {
    throw new WorkbookReadError(
      'TOO_MANY_COLUMNS',
      `The sheet "${sheetName}" has ${formatCount(width)} columns; an import can read at most ${formatCount(maxColumns)}.`,
      { sheetName, columnCount: width, maxColumns },
    );
  }
  const headers = texts.slice(0, width).map((text) => text ?? '');
  const columnsByHeader = new Map<string, number[]>();
  for (const [index, header] of headers.entries()) {
    if (header === '') continue;
    const key = normalizeHeader(header);
    columnsByHeader.set(key, [...(columnsByHeader.get(key) ?? []), index]);
  }
  for (const indexes of columnsByHeader.values()) {
    if (indexes.length < 2) continue;
    const header = headers[indexes[0] ?? 0];
    const columns = indexes.map(columnLetter);
    const times = indexes.length === 2 ? 'twice' : `${indexes.length} times`;
    throw new WorkbookReadError(
      'DUPLICATE_HEADERS',
      `The header "${header}" appears ${times} (columns ${joinWords(columns)}) in the sheet "${sheetName}". Rename or remove the extra columns.`,
      { sheetName, header, columns },
    );
  }
  return headers;
}

/**
 * The text of a cell as DESIGN §6 defines it, or null when blank. Strings lose leading and
 * trailing whitespace (a stray space in an email or a header is never meant), inner
 * whitespace is kept. exceljs's streaming reader turns date-formatted numbers into Dates
 * but keeps a formula's cached result as it is in the file, so a date format on a formula
 * cell is applied here. A formula's boolean result reads as "1"/"0" and an error result as
 * blank: the streaming reader drops the result's type before we see it.
 */
export function convertCellValue(
  value: ExcelJS.CellValue,
  numFmt?: string,
  date1904 = false,
): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return withoutFormulaQuote(value).trim() || null;
  if (typeof value === 'number') return formatNumber(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (value instanceof Date) return formatDate(value);
  if ('richText' in value) {
    return convertCellValue(value.richText.map((run) => run.text ?? '').join(''));
  }
  if ('error' in value) return value.error;
  if ('formula' in value || 'sharedFormula' in value) {
    const { result } = value;
    if (typeof result === 'number' && isDateFormat(numFmt)) {
      return formatDate(excelSerialToDate(result, date1904));
    }
    return convertCellValue(result ?? null);
  }
  return convertCellValue(value.text);
}

/**
 * Muster's reports write text that a spreadsheet could take for a formula ("+49 30…",
 * "=SUM(…)") with a leading quote (reports.ts neutralizeFormula). An admin fixes rows in the
 * error report and uploads it again, so that quote is dropped here: the value is the text
 * after it, as when someone types '+49 in Excel.
 */
function withoutFormulaQuote(text: string): string {
  // A carriage return written to XML reads back as a line feed.
  return /^'[=+\-@\t\r\n]/.test(text) ? text.slice(1) : text;
}

/** The shortest text that reads back as the same number, without an exponent. */
function formatNumber(value: number): string | null {
  if (!Number.isFinite(value)) return null;
  const text = String(value);
  const match = /^(-?)(\d+)(?:\.(\d+))?e([+-]\d+)$/.exec(text);
  if (!match) return text;
  const [, sign = '', whole = '', fraction = '', exponent = '0'] = match;
  const digits = whole + fraction;
  const point = whole.length + Number(exponent);
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

/** Date-only when the time is midnight UTC (how Excel stores a plain date), else full ISO. */
function formatDate(date: Date): string | null {
  // A date-formatted number too large for a JavaScript Date has no date to show.
  if (Number.isNaN(date.getTime())) return null;
  const iso = date.toISOString();
  return iso.endsWith('T00:00:00.000Z') ? iso.slice(0, iso.indexOf('T')) : iso;
}

/** exceljs's own rule (lib/utils/utils.js isDateFmt) for plain cells, used for formulas. */
function isDateFormat(numFmt: string | undefined): boolean {
  if (!numFmt) return false;
  const withoutLiterals = numFmt.replace(/\[[^\]]*]/g, '').replace(/"[^"]*"/g, '');
  return /[ymdhMsb]+/.test(withoutLiterals);
}

/** exceljs's excelToDate: serial days since 1899-12-30 (or 1904-01-01), in UTC. */
function excelSerialToDate(serial: number, date1904: boolean): Date {
  const days = serial - 25569 + (date1904 ? 1462 : 0);
  return new Date(Math.round(days * 24 * 3600 * 1000));
}

/**
 * The rebuilt zip as the stream exceljs reads, and `checkInput`, which throws what stopped it
 * (a part that cannot be opened or inflates past its size). exceljs pipes the input without
 * listening for its errors: it then waits for more input forever, and the error would be
 * thrown by the stream itself, crashing the thread. The tick loops call `checkInput`.
 */
function rebuiltInput(
  zip: ZipFile,
  parts: ZipPart[],
  budget: InflateBudget,
  unpacking?: Unpacking,
): { input: Readable; checkInput: () => void } {
  const input = Readable.from(rebuildZip(zip, parts, budget, unpacking));
  let inputError: { error: unknown } | undefined;
  input.on('error', (error) => {
    inputError = { error };
  });
  return {
    input,
    checkInput: () => {
      if (inputError) throw inputError.error;
    },
  };
}

/** How far yauzl has inflated the parts of a rebuilt zip. */
class Unpacking {
  /** Bytes inflated so far (progress). */
  bytes = 0;
  private readonly wholeParts = new Set<string>();
  private failure: { error: unknown } | undefined;
  private waiters: (() => void)[] = [];

  partInflated(fileName: string): void {
    this.wholeParts.add(fileName);
    this.wake();
  }

  failed(error: unknown): void {
    this.failure = { error };
    this.wake();
  }

  /**
   * Resolves once the part was inflated whole, to its declared size; rejects with the error
   * that stopped the zip before.
   */
  async whole(fileName: string): Promise<void> {
    while (!this.wholeParts.has(fileName)) {
      if (this.failure) throw this.failure.error;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

/**
 * A zip that exceljs's sequential unzipper reads as exactly these parts, stored: a local
 * header written from the checked central directory (its checksum and declared size), then
 * the part as yauzl inflates it. yauzl fails a part that inflates to more or less than its
 * declared size; the bytes count against the read's budget.
 */
async function* rebuildZip(
  zip: ZipFile,
  parts: ZipPart[],
  budget: InflateBudget,
  unpacking = new Unpacking(),
): AsyncGenerator<Buffer> {
  try {
    yield* rebuildParts(zip, parts, budget, unpacking);
  } catch (error) {
    unpacking.failed(error);
    throw error;
  }
}

async function* rebuildParts(
  zip: ZipFile,
  parts: ZipPart[],
  budget: InflateBudget,
  unpacking: Unpacking,
): AsyncGenerator<Buffer> {
  for (const part of parts) {
    if ('content' in part) {
      yield storedFileHeader(part.fileName, crc32(part.content), part.content.length);
      yield part.content;
      unpacking.partInflated(part.fileName);
      continue;
    }
    yield storedFileHeader(part.fileName, part.crc32, part.uncompressedSize);
    for await (const chunk of await zip.openReadStreamPromise(part)) {
      budget.count(chunk.length);
      unpacking.bytes += chunk.length;
      yield chunk as Buffer;
    }
    unpacking.partInflated(part.fileName);
  }
  yield END_OF_CENTRAL_DIRECTORY;
}

/** The local header of a part stored uncompressed, its size known (no data descriptor). */
function storedFileHeader(fileName: string, checksum: number, size: number): Buffer {
  const name = Buffer.from(fileName, 'utf8');
  const header = Buffer.alloc(30);
  header.writeUInt32LE(0x04034b50, 0);
  header.writeUInt16LE(10, 4); // version needed to extract: 1.0 (stored)
  header.writeUInt16LE(0x0800, 6); // UTF-8 name; sizes are known, so no data descriptor
  header.writeUInt16LE(0, 8); // stored
  header.writeUInt32LE(checksum >>> 0, 14);
  header.writeUInt32LE(size, 18);
  header.writeUInt32LE(size, 22);
  header.writeUInt16LE(name.length, 26);
  return Buffer.concat([header, name]);
}

/**
 * The time budget, the abort signal and the progress throttle of one read. `withTicks`
 * races each wait on exceljs or yauzl against a 50 ms ticker, so even while exceljs is busy
 * (a long shared strings table, a sheet that is not the data sheet) the read checks its
 * budget and reports progress. A wait that never ends is the worker's to end: the parent
 * terminates it when the budget has run out.
 */
class ReadClock {
  private readonly deadline: number;
  private lastProgressAt = Date.now();
  /** The waits the next tick ends (see raceTick). */
  private readonly tickWaiters = new Set<() => void>();
  private readonly ticker: NodeJS.Timeout;

  constructor(
    private readonly timeBudgetMs: number,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.deadline = Date.now() + timeBudgetMs;
    this.ticker = setInterval(() => {
      for (const wake of this.tickWaiters) wake();
      this.tickWaiters.clear();
    }, TICK_INTERVAL_MS);
    this.ticker.unref();
  }

  /**
   * `pending`'s outcome, or TICK if the ticker fires first. Not `Promise.race` with one
   * promise per tick: each race leaves a reaction on that promise until it settles, keeping
   * the race's result (a chunk of parsed rows) alive for up to a tick; at 50 ms that was
   * enough for the rows to outlive young-generation collections, and garbage collection took
   * 10 s of a 30 s read of a million rows.
   */
  private raceTick<T>(pending: Promise<T>): Promise<T | typeof TICK> {
    return new Promise((resolve, reject) => {
      const wake = () => resolve(TICK);
      this.tickWaiters.add(wake);
      pending.then(
        (value) => {
          this.tickWaiters.delete(wake);
          resolve(value);
        },
        (error: unknown) => {
          this.tickWaiters.delete(wake);
          reject(error);
        },
      );
    });
  }

  check(): void {
    this.signal?.throwIfAborted();
    if (Date.now() > this.deadline) {
      throw timeLimitError(this.timeBudgetMs);
    }
  }

  /** Waits for `pending`, checking the budget and the abort signal at every tick. */
  async whileWaiting(pending: Promise<void>): Promise<void> {
    while ((await this.raceTick(pending)) === TICK) this.check();
  }

  progressDue(): boolean {
    const now = Date.now();
    if (now - this.lastProgressAt < PROGRESS_INTERVAL_MS) return false;
    this.lastProgressAt = now;
    return true;
  }

  async *withTicks<T>(source: AsyncIterable<T>): AsyncGenerator<T | typeof TICK> {
    const iterator = source[Symbol.asyncIterator]();
    let pending: Promise<IteratorResult<T>> | undefined;
    try {
      while (true) {
        pending ??= iterator.next();
        const result = await this.raceTick(pending);
        if (result === TICK) {
          yield TICK;
          continue;
        }
        pending = undefined;
        if (result.done) return;
        yield result.value;
      }
    } finally {
      if (pending) {
        // The read is being abandoned mid-wait (time limit, abort): nobody wants this result,
        // and closing the iterator would wait for it.
        pending.catch(() => {});
      } else {
        await iterator.return?.();
      }
    }
  }

  stop(): void {
    clearInterval(this.ticker);
  }
}

function noDataSheet(
  { requiredHeaders, knownHeaderKeys }: ReadLimits,
  skippedSheets: SkippedSheet[],
  hiddenCount: number,
): WorkbookReadError {
  // The sheet that came closest (fewest missing, earliest on ties) is the one the admin meant.
  const closest = skippedSheets.reduce<SkippedSheet | undefined>(
    (best, sheet) =>
      !best || sheet.missingHeaders.length < best.missingHeaders.length ? sheet : best,
    undefined,
  );
  if (knownHeaderKeys && closest && (closest.headerCount ?? 0) > 1) {
    return new WorkbookReadError(
      'MISSING_COLUMNS',
      `No column of the sheet "${closest.sheetName}" (row ${closest.headerRowNumber}) could be recognised as ${joinWords(requiredHeaders)}: name at least one of them as a column.`,
      { sheetName: closest.sheetName, headerRowNumber: closest.headerRowNumber },
    );
  }
  if (closest && closest.missingHeaders.length < requiredHeaders.length) {
    return new WorkbookReadError(
      'MISSING_COLUMNS',
      `Missing required columns: ${closest.missingHeaders.join(', ')} (sheet "${closest.sheetName}", row ${closest.headerRowNumber}).`,
      { ...closest },
    );
  }
  const hiddenNote = hiddenCount > 0 ? ' Hidden sheets are not read.' : '';
  return new WorkbookReadError(
    'NO_DATA_SHEET',
    `The file has no sheet whose first row holds the columns ${joinWords(requiredHeaders)}.${hiddenNote}`,
    { requiredHeaders, hiddenSheetCount: hiddenCount },
  );
}

/** `reason` is for logs: the parser's own words. */
export function corruptFileError(reason: string): WorkbookReadError {
  return new WorkbookReadError(
    'CORRUPT_FILE',
    'The file is damaged and cannot be read. Open it in Excel, save it again as .xlsx, and upload the new file.',
    { reason },
  );
}

export function timeLimitError(timeBudgetMs: number): WorkbookReadError {
  const seconds = Math.max(1, Math.round(timeBudgetMs / 1000));
  return new WorkbookReadError(
    'TIME_LIMIT',
    `Reading the file took longer than ${formatCount(seconds)} ${seconds === 1 ? 'second' : 'seconds'}, so it was stopped. Split the users over several smaller files.`,
    { timeBudgetMs },
  );
}

function tooManyRows(maxRows: number): WorkbookReadError {
  return new WorkbookReadError(
    'TOO_MANY_ROWS',
    `The file has more than ${formatCount(maxRows)} rows. Split the users over several files of at most ${formatCount(maxRows)} rows.`,
    { maxRows },
  );
}

function tooLargeInflated(maxInflatedBytes: number): WorkbookReadError {
  return new WorkbookReadError(
    'TOO_LARGE_INFLATED',
    `The file unpacks to more than ${formatBytes(maxInflatedBytes)}, more than an import can read. Remove unused sheets, images or formatting, or split the users over several files.`,
    { maxInflatedBytes },
  );
}

function tooManyEntries(maxEntries: number): WorkbookReadError {
  return new WorkbookReadError(
    'TOO_LARGE_INFLATED',
    `The file is made of more than ${formatCount(maxEntries)} packed parts, more than an import can read. Remove unused sheets, images or formatting, or split the users over several files.`,
    { maxEntries },
  );
}

/** Spreadsheet column letters: 0 → A, 25 → Z, 26 → AA. */
function columnLetter(index: number): string {
  let letters = '';
  for (let rest = index + 1; rest > 0; rest = Math.floor((rest - 1) / 26)) {
    letters = String.fromCharCode(65 + ((rest - 1) % 26)) + letters;
  }
  return letters;
}

function joinWords(words: string[]): string {
  return words.length < 2 ? words.join('') : `${words.slice(0, -1).join(', ')} and ${words.at(-1)}`;
}

function formatCount(count: number): string {
  return count.toLocaleString('en-US');
}

function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${Number(value.toFixed(1))} ${units[unit]}`;
}
