import { corruptFileError } from './errors.js';
import { type CellFormat, formatPadded } from './number-formats.js';
import { decodeEscapes } from './xml.js';

/**
 * The text of a cell as the admin's spreadsheet shows it (DESIGN §6), read from the cell's
 * XML: text without phonetic runs, numbers as General shows them, dates and times as ISO text
 * without a zone (Excel stores wall-clock time), booleans as true/false. Error values, formulas
 * that were never calculated and text longer than a cell can hold are CellProblems: the row
 * then has an error of that code.
 */

/** Excel's own limit on a cell's text. */
export const MAX_CELL_CHARACTERS = 32_767;

export type CellProblemCode = 'CELL_TOO_LONG' | 'CELL_ERROR_VALUE' | 'FORMULA_WITHOUT_VALUE';

export interface CellProblem {
  code: CellProblemCode;
  /** What the cell holds, for people: the error value, the formula, the start of the text. */
  value: string | null;
}

export type CellValue = string | null | CellProblem;

/** A `<c>` element as read: `type` is its `t` attribute, `value` its `<v>`'s text. */
export interface RawCell {
  type: string;
  value: string | null;
  /** The text of `<is>` (an inline string), without phonetic runs. */
  inline: string | null;
  /** The formula's text when the cell has a `<f>` ('' for a shared formula's followers). */
  formula: string | null;
}

export interface CellContext {
  sharedStrings: string[];
  date1904: boolean;
}

export function cellValue(cell: RawCell, format: CellFormat, context: CellContext): CellValue {
  const { type, value } = cell;
  if (cell.formula !== null && value === null && type !== 'inlineStr') {
    return { code: 'FORMULA_WITHOUT_VALUE', value: cell.formula ? `=${cell.formula}` : null };
  }
  switch (type) {
    case 's': {
      // `<v/>` in a shared-string cell: Excel writes these for blank cells.
      if (value === null || value.trim() === '') return null;
      const text = context.sharedStrings[Number(value)];
      if (text === undefined) {
        throw corruptFileError(`a cell refers to shared string ${value}, which does not exist`);
      }
      return textValue(text);
    }
    case 'inlineStr':
      return textValue(decodeEscapes(cell.inline ?? value ?? ''));
    case 'str':
      return textValue(decodeEscapes(value ?? ''));
    case 'b':
      // Excel writes 1 and 0; some writers write true and false.
      if (value === null || value.trim() === '') return null;
      return /^\s*(0|false)\s*$/i.test(value) ? 'false' : 'true';
    case 'e':
      return { code: 'CELL_ERROR_VALUE', value: value?.trim() || null };
    case 'd':
      return value ? isoDateValue(value.trim(), format) : null;
    default: {
      if (value === null || value.trim() === '') return null;
      const number = Number(value);
      if (!Number.isFinite(number)) return null;
      return numberValue(number, format, context.date1904);
    }
  }
}

export function textValue(text: string): CellValue {
  if (text.length > MAX_CELL_CHARACTERS) {
    return { code: 'CELL_TOO_LONG', value: `${text.slice(0, 100)}…` };
  }
  return withoutFormulaQuote(text).trim() || null;
}

export function isProblem(value: CellValue): value is CellProblem {
  return value !== null && typeof value === 'object';
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

function numberValue(number: number, format: CellFormat, date1904: boolean): string | null {
  if (format.kind === 'date') return serialText(number, format, date1904) ?? formatGeneral(number);
  if (format.kind === 'padded' && Number.isSafeInteger(number)) return formatPadded(number, format);
  return formatGeneral(number);
}

/**
 * A number as Excel's General shows it in full: at most 15 significant digits (what Excel
 * keeps), without binary noise (0.049999999999999975 is 0.05) and without an exponent.
 */
export function formatGeneral(value: number): string | null {
  if (!Number.isFinite(value)) return null;
  if (value === 0) return '0';
  const [mantissa = '', exponentText = '0'] = value.toExponential(14).split('e');
  const sign = mantissa.startsWith('-') ? '-' : '';
  const digits = mantissa.replace(/^-/, '').replace('.', '').replace(/0+$/, '');
  const point = Number(exponentText) + 1;
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

const SECONDS_A_DAY = 86_400;
/** 9999-12-31, the last day Excel shows; later serials show as ####. */
const LAST_SERIAL = 2_958_465;
const MS_A_DAY = 86_400_000;
const EPOCH_1900 = Date.UTC(1899, 11, 30);
const EPOCH_1904 = Date.UTC(1904, 0, 1);

interface WallClock {
  /** `YYYY-MM-DD`. */
  day: string;
  seconds: number;
}

/** A date-formatted serial as its text, or null where Excel shows #### (negative, too large). */
function serialText(
  serial: number,
  format: CellFormat & { kind: 'date' },
  date1904: boolean,
): string | null {
  if (serial < 0 || serial > LAST_SERIAL + 1) return null;
  const total = Math.round(serial * SECONDS_A_DAY);
  const days = Math.floor(total / SECONDS_A_DAY);
  const seconds = total - days * SECONDS_A_DAY;
  if (format.elapsed) return clockText(Math.floor(total / 3600), total % 3600, format.seconds);
  if (!format.date) return clockText(Math.floor(seconds / 3600), seconds % 3600, format.seconds);
  const day = serialDay(days, date1904);
  return format.time
    ? `${day}T${clockText(Math.floor(seconds / 3600), seconds % 3600, format.seconds)}`
    : day;
}

/**
 * The day of a serial. In the 1900 system Excel counts 1900 as a leap year (as Lotus 1-2-3
 * did): serial 60 is 1900-02-29, a day that never was, and serials before it are a day later
 * than counting back from 1899-12-30 gives; serial 0 shows as 1900-01-00.
 */
function serialDay(days: number, date1904: boolean): string {
  if (date1904) return isoDay(EPOCH_1904 + days * MS_A_DAY);
  if (days === 60) return '1900-02-29';
  if (days === 0) return '1900-01-00';
  return isoDay(EPOCH_1900 + (days < 60 ? days + 1 : days) * MS_A_DAY);
}

function isoDay(time: number): string {
  return new Date(time).toISOString().slice(0, 10);
}

function clockText(hours: number, restSeconds: number, withSeconds: boolean): string {
  const minutes = Math.floor(restSeconds / 60);
  const text = `${pad(hours)}:${pad(minutes)}`;
  return withSeconds ? `${text}:${pad(restSeconds % 60)}` : text;
}

function pad(value: number): string {
  return String(value).padStart(2, '0');
}

/**
 * A `t="d"` cell: an ISO 8601 date, date-time or time as text. Shown through its format if
 * it has a date format; otherwise as a date, with the time when there is one.
 */
function isoDateValue(text: string, format: CellFormat): CellValue {
  const match =
    /^(?:(\d{4})-(\d{2})-(\d{2}))?(?:T?(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$/.exec(
      text,
    );
  if (!match || (match[1] === undefined && match[4] === undefined)) {
    throw corruptFileError(`a date cell holds "${text}", which is not an ISO 8601 date`);
  }
  const [, year, month, day, hours = '00', minutes = '00', seconds = '00'] = match;
  const clock: WallClock = {
    day: year ? `${year}-${month}-${day}` : '1899-12-31',
    seconds: Number(hours) * 3600 + Number(minutes) * 60 + Number(seconds),
  };
  const time = (withSeconds: boolean) =>
    clockText(Math.floor(clock.seconds / 3600), clock.seconds % 3600, withSeconds);
  if (format.kind === 'date' && !format.elapsed) {
    if (!format.date) return time(format.seconds);
    return format.time ? `${clock.day}T${time(format.seconds)}` : clock.day;
  }
  if (!year) return time(clock.seconds % 60 !== 0);
  return clock.seconds === 0 ? clock.day : `${clock.day}T${time(clock.seconds % 60 !== 0)}`;
}
