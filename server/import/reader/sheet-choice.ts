import { headerKey } from '../column-aliases.js';
import type { CellValue } from './cell-values.js';
import { isProblem } from './cell-values.js';
import { columnLetter, formatCount, joinWords, WorkbookReadError } from './errors.js';

/**
 * Which sheet holds the users and which row their headers. The header row is the first of a
 * sheet's first HEADER_SEARCH_ROWS non-blank rows that holds every required header (title
 * lines may stand above it). The sheet is the one the admin named; otherwise, of the sheets
 * that have the headers, the active one (the tab the file opens on), else the first.
 */

export const HEADER_SEARCH_ROWS = 10;

/** A visible worksheet of the workbook, as the session lists it. */
export interface SheetSummary {
  name: string;
  /** Its first rows hold every required header. */
  hasRequiredHeaders: boolean;
  /** The sheet the import read. */
  read: boolean;
}

/** What the first rows of a sheet say about its headers. */
export interface HeaderSearch {
  sheetName: string;
  /** The header row, or the row that came closest when headers are missing (0: no rows). */
  headerRowNumber: number;
  missingHeaders: string[];
  /**
   * The row lacks required headers but holds one the company's fields are known by (an alias,
   * a remembered mapping): it is the header row all the same, and stage 2 maps the rest.
   */
  recognized?: boolean;
  /** Non-blank cells of the row: one is a title or a note, more look like headers. */
  headerCount?: number;
}

/** The row can be the header row: it has every required header, or a recognised one. */
function qualifies(search: HeaderSearch): boolean {
  return search.missingHeaders.length === 0 || search.recognized === true;
}

/** Follows a sheet's first rows, one `offer` a row, until the header row is found. */
export class HeaderFinder {
  private seenRows = 0;
  private best: HeaderSearch;

  private readonly knownHeaderKeys: Set<string> | null;

  constructor(
    private readonly sheetName: string,
    private readonly requiredHeaders: string[],
    knownHeaderKeys?: string[],
  ) {
    this.knownHeaderKeys = knownHeaderKeys ? new Set(knownHeaderKeys) : null;
    this.best = { sheetName, headerRowNumber: 0, missingHeaders: requiredHeaders };
  }

  /** Looks at a row; true once the search is over (found, or too far down). */
  offer(rowNumber: number, values: CellValue[]): boolean {
    const texts = headerTexts(values);
    if (texts.every((text) => text === null)) return false;
    this.seenRows += 1;
    const missingHeaders = findMissingHeaders(texts, this.requiredHeaders);
    const known = this.knownHeaderKeys;
    const recognized =
      missingHeaders.length > 0 &&
      known !== null &&
      texts.some((text) => text !== null && known.has(headerKey(text)));
    const search: HeaderSearch = {
      sheetName: this.sheetName,
      headerRowNumber: rowNumber,
      missingHeaders,
      recognized,
      headerCount: texts.filter((text) => text !== null).length,
    };
    if (
      this.best.headerRowNumber === 0 ||
      qualifies(search) ||
      missingHeaders.length < this.best.missingHeaders.length
    ) {
      this.best = search;
    }
    return qualifies(search) || this.seenRows >= HEADER_SEARCH_ROWS;
  }

  get result(): HeaderSearch {
    return this.best;
  }
}

/** A header row's cells as text: a cell that cannot be read is a blank header. */
export function headerTexts(values: CellValue[]): (string | null)[] {
  return Array.from(values, (value) =>
    value === undefined || isProblem(value) ? null : (value as string | null),
  );
}

/** Header cells compare case-insensitively after trimming (DESIGN §6). */
function normalizeHeader(header: string): string {
  return header.trim().toLowerCase();
}

function findMissingHeaders(texts: (string | null)[], requiredHeaders: string[]): string[] {
  const present = new Set(texts.flatMap((text) => (text === null ? [] : [normalizeHeader(text)])));
  return requiredHeaders.filter((header) => !present.has(normalizeHeader(header)));
}

/**
 * The sheet to read, of the searched ones (tab order): the named one, or the active one if it
 * qualifies, or the first that qualifies. Throws what the admin must change otherwise.
 */
export function chooseSheet(
  searches: (HeaderSearch & { active: boolean })[],
  options: {
    requestedSheet?: string | null;
    requiredHeaders: string[];
    hiddenCount: number;
    /** Set when stage 2 can map missing required headers (see HeaderSearch.recognized). */
    mapsColumns?: boolean;
  },
): HeaderSearch {
  if (options.requestedSheet) {
    const wanted = options.requestedSheet;
    const named =
      searches.find((search) => search.sheetName === wanted) ??
      searches.find((search) => normalizeHeader(search.sheetName) === normalizeHeader(wanted));
    if (!named) {
      throw new WorkbookReadError(
        'SHEET_NOT_FOUND',
        `The file has no visible sheet named "${wanted}". Its sheets are ${joinWords(searches.map((search) => `"${search.sheetName}"`))}.`,
        { requestedSheet: wanted, sheetNames: searches.map((search) => search.sheetName) },
      );
    }
    if (!qualifies(named)) throw missingColumns(named, options.requiredHeaders);
    return named;
  }
  const complete = searches.filter((search) => search.missingHeaders.length === 0);
  const recognized = searches.filter(qualifies);
  const chosen =
    complete.find((search) => search.active) ??
    complete[0] ??
    recognized.find((search) => search.active) ??
    recognized[0];
  if (chosen) return chosen;
  // The sheet that came closest (fewest missing, earliest on ties) is the one the admin meant.
  const closest = searches.reduce<HeaderSearch | undefined>(
    (best, search) =>
      !best || search.missingHeaders.length < best.missingHeaders.length ? search : best,
    undefined,
  );
  if (options.mapsColumns && closest && (closest.headerCount ?? 0) > 1) {
    throw new WorkbookReadError(
      'MISSING_COLUMNS',
      `No column of the sheet "${closest.sheetName}" (row ${closest.headerRowNumber}) could be recognised as ${joinWords(options.requiredHeaders)}: name at least one of them as a column.`,
      { sheetName: closest.sheetName, headerRowNumber: closest.headerRowNumber },
    );
  }
  if (closest && closest.missingHeaders.length < options.requiredHeaders.length) {
    throw missingColumns(closest, options.requiredHeaders);
  }
  const hiddenNote = options.hiddenCount > 0 ? ' Hidden sheets are not read.' : '';
  throw new WorkbookReadError(
    'NO_DATA_SHEET',
    `The file has no sheet whose first rows hold the columns ${joinWords(options.requiredHeaders)}.${hiddenNote}`,
    { requiredHeaders: options.requiredHeaders, hiddenSheetCount: options.hiddenCount },
  );
}

function missingColumns(search: HeaderSearch, requiredHeaders: string[]): WorkbookReadError {
  if (search.headerRowNumber === 0) {
    return new WorkbookReadError(
      'MISSING_COLUMNS',
      `The sheet "${search.sheetName}" is empty: it needs the columns ${joinWords(requiredHeaders)}.`,
      { sheetName: search.sheetName, headerRowNumber: 0, missingHeaders: requiredHeaders },
    );
  }
  return new WorkbookReadError(
    'MISSING_COLUMNS',
    `Missing required columns: ${search.missingHeaders.join(', ')} (sheet "${search.sheetName}", row ${search.headerRowNumber}).`,
    { ...search },
  );
}

/** Turns the data sheet's header cells into `headers`, rejecting too many or repeated ones. */
export function checkHeaders(
  texts: (string | null)[],
  sheetName: string,
  maxColumns: number,
): string[] {
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
