/** Why a file cannot be imported, and the words the admin who uploaded it reads. */

export type WorkbookReadErrorCode =
  | 'NOT_A_WORKBOOK'
  | 'CORRUPT_FILE'
  | 'NO_DATA_SHEET'
  | 'SHEET_NOT_FOUND'
  | 'MISSING_COLUMNS'
  | 'DUPLICATE_HEADERS'
  | 'TOO_MANY_ROWS'
  | 'TOO_MANY_COLUMNS'
  | 'TOO_LARGE_INFLATED'
  | 'TOO_LARGE_STAGED'
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

export const SAVE_AS_XLSX = 'Save it from Excel as "Excel Workbook (*.xlsx)" and upload that file.';

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

export function tooManyRows(maxRows: number): WorkbookReadError {
  return new WorkbookReadError(
    'TOO_MANY_ROWS',
    `The file has more than ${formatCount(maxRows)} rows. Split the users over several files of at most ${formatCount(maxRows)} rows.`,
    { maxRows },
  );
}

export function tooLargeInflated(maxInflatedBytes: number): WorkbookReadError {
  return new WorkbookReadError(
    'TOO_LARGE_INFLATED',
    `The file unpacks to more than ${formatBytes(maxInflatedBytes)}, more than an import can read. Remove unused sheets, images or formatting, or split the users over several files.`,
    { maxInflatedBytes },
  );
}

export function tooManyEntries(maxEntries: number): WorkbookReadError {
  return new WorkbookReadError(
    'TOO_LARGE_INFLATED',
    `The file is made of more than ${formatCount(maxEntries)} packed parts, more than an import can read. Remove unused sheets, images or formatting, or split the users over several files.`,
    { maxEntries },
  );
}

export function tooLargeStaged(maxStagedBytes: number): WorkbookReadError {
  return new WorkbookReadError(
    'TOO_LARGE_STAGED',
    `The rows of this file hold more than ${formatBytes(maxStagedBytes)} of data, more than one import may store. Remove long texts the users do not need, or split the users over several files.`,
    { maxStagedBytes },
  );
}

/** Spreadsheet column letters: 0 → A, 25 → Z, 26 → AA. */
export function columnLetter(index: number): string {
  let letters = '';
  for (let rest = index + 1; rest > 0; rest = Math.floor((rest - 1) / 26)) {
    letters = String.fromCharCode(65 + ((rest - 1) % 26)) + letters;
  }
  return letters;
}

export function joinWords(words: string[]): string {
  return words.length < 2 ? words.join('') : `${words.slice(0, -1).join(', ')} and ${words.at(-1)}`;
}

export function formatCount(count: number): string {
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
