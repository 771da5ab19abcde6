import type { Entry, ZipFile } from 'yauzl';
import { type CellProblem, type CellValue, MAX_CELL_CHARACTERS } from './cell-values.js';
import {
  corruptFileError,
  formatCount,
  SAVE_AS_XLSX,
  tooManyRows,
  WorkbookReadError,
} from './errors.js';
import type { CellFormat } from './number-formats.js';
import {
  type PartParser,
  relationshipsParser,
  relationshipsPartOf,
  sharedStringsParser,
  stylesParser,
  type WorkbookInfo,
  workbookParser,
} from './package-parts.js';
import { ReadClock, TICK } from './read-clock.js';
import type { RowProblem, StagedRow } from './rows-batch.js';
import {
  checkHeaders,
  chooseSheet,
  HeaderFinder,
  type HeaderSearch,
  headerTexts,
  type SheetSummary,
} from './sheet-choice.js';
import { WorksheetParser } from './worksheet.js';
import { parseXml, type XmlHandler } from './xml.js';
import {
  checkFileType,
  InflateBudget,
  listEntries,
  openZip,
  partKey,
  readPart,
} from './zip-access.js';

export type { WorkbookReadErrorCode } from './errors.js';
export { corruptFileError, timeLimitError, WorkbookReadError } from './errors.js';
export type { SheetSummary } from './sheet-choice.js';

/**
 * Reads the users sheet of an uploaded .xlsx as a stream of events. Runs on any thread; the
 * server runs it in a worker (reader-thread.ts) so a hostile file can only exhaust that
 * worker's memory and time.
 *
 * Order of work:
 * 1. The first bytes tell a zip from an OLE2 file (old .xls, or a password-protected .xlsx).
 * 2. yauzl reads the central directory: the number of entries, their names and their
 *    declared sizes are checked against the limits before anything is inflated
 *    (zip-access.ts).
 * 3. The parts are found through the package's relationships and parsed as they inflate
 *    (package-parts.ts): the workbook (sheets, their states, the active tab, the date
 *    system), styles (each cell style's number format) and the shared strings.
 * 4. The first rows of each visible sheet tell which have the required headers and where;
 *    one is chosen (sheet-choice.ts) and read from its start, its cells converted to the
 *    text the admin's spreadsheet shows (worksheet.ts, cell-values.ts).
 *
 * exceljs, the project's workbook library, writes Muster's workbooks; its streaming reader
 * is not used here: it knew no namespace prefixes, found parts by name, kept phonetic runs
 * and the last run of rich text, and dropped the type of formula results.
 */

export interface ReadLimits {
  /** Labels of the required built-in fields, e.g. ['Email', 'userName', 'reference']. */
  requiredHeaders: string[];
  /**
   * headerKeys (column-aliases.ts) of every header that stands for a required field: labels,
   * aliases, remembered mappings. With it, a row that lacks some required headers is still the
   * header row when it holds one of these (stage 2 maps the rest), and MISSING_COLUMNS means
   * that no header could be recognised.
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
  /** The sheet to read, by name; by default the one chosen as sheet-choice.ts says. */
  sheetName?: string | null;
  /**
   * Bytes of the rows' JSON (as staged) a read may hand over; past it the read fails with
   * TOO_LARGE_STAGED. Checked by the reader thread, which writes that JSON.
   */
  maxStagedBytes?: number;
}

export type ReadEvent =
  /**
   * At least every 250 ms while reading. INFLATING, until the first data row: `done` is the
   * bytes of the parts inflated so far and `total` the sum of their declared sizes. READING:
   * `done` is data rows so far and `total` is null (the row count is not known in advance).
   */
  | { type: 'progress'; phase: 'INFLATING' | 'READING'; done: number; total: number | null }
  /**
   * The data sheet's header row. `headers[i]` is the trimmed header of column i (0-based,
   * column A is 0). A column whose header cell is blank has '' and is ignored: its cells
   * are always null, because a value without a header cannot be mapped to a field. `sheets`
   * lists the visible worksheets, whether each has the headers and which one is read.
   */
  | {
      type: 'header';
      sheetName: string;
      headerRowNumber: number;
      headers: string[];
      sheets: SheetSummary[];
    }
  /**
   * Non-blank data rows in sheet order. `rowNumber` is the spreadsheet's own row number;
   * `cells[i]` belongs to `headers[i]`, null when blank or unreadable; `problems` says why a
   * cell was unreadable (an error value, a formula without a value, text too long). Cells
   * right of the last header are ignored.
   */
  | { type: 'rows'; rows: StagedRow[] };

const DEFAULT_BATCH_SIZE = 2000;
const DEFAULT_WORKBOOK_PART = 'xl/workbook.xml';

interface VisibleSheet {
  name: string;
  entry: Entry;
  active: boolean;
}

export async function* readWorkbook(
  filePath: string,
  limits: ReadLimits,
  signal?: AbortSignal,
): AsyncGenerator<ReadEvent> {
  const clock = new ReadClock(limits.timeBudgetMs, signal);
  let zip: ZipFile | undefined;
  try {
    await checkFileType(filePath);
    zip = await openZip(filePath);
    const entries = await listEntries(zip, limits, clock);
    yield* new WorkbookRead(zip, entries, limits, clock).read();
  } catch (error) {
    if (error instanceof WorkbookReadError) throw error;
    if (signal?.aborted && error === signal.reason) throw error;
    // saxes and yauzl throw plain errors ("undefined entity" for a DOCTYPE, a part that
    // inflates to another size than declared): all mean a bad file.
    throw corruptFileError(error instanceof Error ? error.message : String(error));
  } finally {
    clock.stop();
    zip?.close();
  }
}

class WorkbookRead {
  private readonly budget: InflateBudget;
  private declaredBytes = 0;
  /** Bytes inflated before the parts that progress counts (relationships, the workbook). */
  private bytesBefore = 0;

  constructor(
    private readonly zip: ZipFile,
    private readonly entries: Map<string, Entry>,
    private readonly limits: ReadLimits,
    private readonly clock: ReadClock,
  ) {
    this.budget = new InflateBudget(limits.maxInflatedBytes);
  }

  async *read(): AsyncGenerator<ReadEvent> {
    const workbookPart = yield* this.findWorkbookPart();
    const workbookEntry = this.entry(workbookPart);
    if (!workbookEntry) {
      throw new WorkbookReadError(
        'NOT_A_WORKBOOK',
        `The file is a zip archive but not an Excel workbook (.xlsx). ${SAVE_AS_XLSX}`,
      );
    }
    const relationshipsPart = relationshipsPartOf(workbookPart);
    const relationshipsEntry = this.entry(relationshipsPart);
    if (!relationshipsEntry) throw corruptFileError(`the zip has no ${relationshipsPart}`);
    const relationships = yield* this.parse(relationshipsEntry, relationshipsParser(workbookPart));
    const workbook = yield* this.parse(workbookEntry, workbookParser());
    const partOf = (type: string) =>
      this.entry(relationships.find((relationship) => relationship.type === type)?.target);
    const { visible, hiddenCount } = this.visibleSheets(workbook, (id) => {
      const relationship = relationships.find((candidate) => candidate.id === id);
      return relationship?.type === 'worksheet' ? relationship.target : undefined;
    });
    const stylesEntry = partOf('styles');
    const sharedStringsEntry = partOf('sharedStrings');
    this.declaredBytes = [stylesEntry, sharedStringsEntry, ...visible.map((sheet) => sheet.entry)]
      .map((entry) => entry?.uncompressedSize ?? 0)
      .reduce((sum, size) => sum + size, 0);
    this.bytesBefore = this.budget.inflatedBytes;
    yield this.progress(0);
    const formats = stylesEntry ? yield* this.parse(stylesEntry, stylesParser()) : [];
    const sharedStrings = sharedStringsEntry
      ? yield* this.parse(sharedStringsEntry, sharedStringsParser())
      : [];
    const context = { formats, sharedStrings, date1904: workbook.date1904 };
    const searches: (HeaderSearch & { active: boolean; sheet: VisibleSheet })[] = [];
    for (const sheet of visible) {
      const search = yield* this.findHeader(sheet, context);
      searches.push({ ...search, active: sheet.active, sheet });
    }
    const chosen = chooseSheet(searches, {
      requestedSheet: this.limits.sheetName,
      requiredHeaders: this.limits.requiredHeaders,
      hiddenCount,
      mapsColumns: this.limits.knownHeaderKeys !== undefined,
    });
    const sheets = searches.map((search) => ({
      name: search.sheetName,
      hasRequiredHeaders: search.missingHeaders.length === 0,
      read: search === chosen,
    }));
    const sheet = searches.find((search) => search === chosen)?.sheet;
    if (!sheet) throw new Error('the chosen sheet is not one of the searched ones');
    yield* this.readRows(sheet, chosen.headerRowNumber, sheets, context);
  }

  /** The package's main part, through its relationships; xl/workbook.xml where it has none. */
  private async *findWorkbookPart(): AsyncGenerator<ReadEvent, string> {
    const packageRelationships = this.entry('_rels/.rels');
    if (!packageRelationships) return DEFAULT_WORKBOOK_PART;
    const relationships = yield* this.parse(packageRelationships, relationshipsParser(''));
    const main = relationships.find((relationship) => relationship.type === 'officeDocument');
    return main?.target ?? DEFAULT_WORKBOOK_PART;
  }

  /**
   * Visible worksheets in tab order. Hidden and "very hidden" sheets are left out: users never
   * see them. Chart sheets and dangling references have no worksheet part: nothing to read.
   */
  private visibleSheets(
    workbook: WorkbookInfo,
    targetOf: (relationshipId: string | undefined) => string | undefined,
  ): { visible: VisibleSheet[]; hiddenCount: number } {
    const visible: VisibleSheet[] = [];
    const seenParts = new Set<string>();
    let hiddenCount = 0;
    for (const sheet of workbook.sheets) {
      if (sheet.state === 'hidden' || sheet.state === 'veryHidden') {
        hiddenCount += 1;
        continue;
      }
      const target = targetOf(sheet.relationshipId);
      const entry = this.entry(target);
      if (!target || !entry || seenParts.has(partKey(target))) continue;
      seenParts.add(partKey(target));
      visible.push({ name: sheet.name, entry, active: sheet.tabIndex === workbook.activeTab });
    }
    return { visible, hiddenCount };
  }

  private entry(partName: string | undefined): Entry | undefined {
    return partName === undefined ? undefined : this.entries.get(partKey(partName));
  }

  private progress(rows: number): ReadEvent {
    return rows === 0
      ? {
          type: 'progress',
          phase: 'INFLATING',
          done: Math.min(this.budget.inflatedBytes - this.bytesBefore, this.declaredBytes),
          total: this.declaredBytes,
        }
      : { type: 'progress', phase: 'READING', done: rows, total: null };
  }

  /** Parses a part whole, reporting progress and checking the clock as it inflates. */
  private async *parse<T>(entry: Entry, parser: PartParser<T>): AsyncGenerator<ReadEvent, T> {
    yield* this.chunks(entry, parser.handler, () => false);
    return parser.result();
  }

  /** Feeds a part to a handler; `afterChunk` returning true stops the parse there. */
  private async *chunks(
    entry: Entry,
    handler: XmlHandler,
    afterChunk: () => boolean,
  ): AsyncGenerator<ReadEvent> {
    const parsing = parseXml(readPart(this.zip, entry, this.budget), handler);
    for await (const tick of this.clock.withTicks(parsing)) {
      this.clock.check();
      if (this.clock.progressDue()) yield this.progress(0);
      if (tick !== TICK && afterChunk()) return;
    }
  }

  /** Reads a sheet's first rows, as far as it takes to find its header row. */
  private async *findHeader(
    sheet: VisibleSheet,
    context: SheetContext,
  ): AsyncGenerator<ReadEvent, HeaderSearch> {
    const parser = new WorksheetParser(sheet.name, context.formats, context);
    const finder = new HeaderFinder(
      sheet.name,
      this.limits.requiredHeaders,
      this.limits.knownHeaderKeys,
    );
    yield* this.chunks(sheet.entry, parser, () =>
      parser.takeRows().some((row) => finder.offer(row.rowNumber, row.values)),
    );
    return finder.result;
  }

  /** Reads the data sheet from its start: the header row, then the data rows after it. */
  private async *readRows(
    sheet: VisibleSheet,
    headerRowNumber: number,
    sheets: SheetSummary[],
    context: SheetContext,
  ): AsyncGenerator<ReadEvent> {
    const batchSize = this.limits.batchSize ?? DEFAULT_BATCH_SIZE;
    const parser = new WorksheetParser(sheet.name, context.formats, context);
    let headers: string[] | undefined;
    let rowCount = 0;
    let batch: StagedRow[] = [];
    const parsing = parseXml(readPart(this.zip, sheet.entry, this.budget), parser);
    for await (const tick of this.clock.withTicks(parsing)) {
      this.clock.check();
      if (this.clock.progressDue()) yield this.progress(rowCount);
      if (tick === TICK) continue;
      for (const row of parser.takeRows()) {
        if (this.clock.progressDue()) yield this.progress(rowCount);
        if (!headers) {
          if (row.rowNumber < headerRowNumber) continue;
          headers = checkHeaders(headerTexts(row.values), sheet.name, this.limits.maxColumns);
          parser.columnLimit = headers.length;
          yield { type: 'header', sheetName: sheet.name, headerRowNumber, headers, sheets };
          continue;
        }
        const staged = stagedRow(row.rowNumber, row.values, headers);
        if (!staged) continue;
        rowCount += 1;
        if (rowCount > this.limits.maxRows) throw tooManyRows(this.limits.maxRows);
        batch.push(staged);
        if (batch.length >= batchSize) {
          yield { type: 'rows', rows: batch };
          batch = [];
        }
      }
    }
    if (batch.length > 0) yield { type: 'rows', rows: batch };
    yield { type: 'progress', phase: 'READING', done: rowCount, total: null };
  }
}

interface SheetContext {
  formats: CellFormat[];
  sharedStrings: string[];
  date1904: boolean;
}

/** A data row as staged, or null when blank. Cells under a blank header are ignored. */
function stagedRow(rowNumber: number, values: CellValue[], headers: string[]): StagedRow | null {
  const cells: (string | null)[] = new Array(headers.length).fill(null);
  let problems: RowProblem[] | undefined;
  let blank = true;
  for (let column = 0; column < headers.length; column += 1) {
    const value = values[column];
    const header = headers[column] ?? '';
    if (value === undefined || value === null || header === '') continue;
    blank = false;
    if (typeof value === 'string') {
      cells[column] = value;
    } else {
      problems ??= [];
      problems.push({ columnIndex: column, ...describeProblem(value, header) });
    }
  }
  if (blank) return null;
  return problems ? { rowNumber, cells, problems } : { rowNumber, cells };
}

function describeProblem(problem: CellProblem, header: string): Omit<RowProblem, 'columnIndex'> {
  const { code, value } = problem;
  switch (code) {
    case 'CELL_ERROR_VALUE':
      return {
        code,
        value,
        message: `${header} holds the error value ${value ?? ''} instead of a value. Correct the formula or type the value in the file.`,
      };
    case 'FORMULA_WITHOUT_VALUE':
      return {
        code,
        value,
        message: `${header} holds a formula that was never calculated, so it has no value. Open the file in Excel or LibreOffice, let it calculate, save it and upload it again.`,
      };
    case 'CELL_TOO_LONG':
      return {
        code,
        value,
        message: `${header} holds more than ${formatCount(MAX_CELL_CHARACTERS)} characters, more than a spreadsheet cell can hold.`,
      };
  }
}
