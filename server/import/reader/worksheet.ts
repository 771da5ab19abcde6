import { type CellContext, type CellValue, cellValue, type RawCell } from './cell-values.js';
import { type CellFormat, GENERAL } from './number-formats.js';
import type { XmlHandler } from './xml.js';

/** A row of a worksheet as read: its spreadsheet row number and its values by column (0 = A). */
export interface SheetRow {
  rowNumber: number;
  /** Sparse: a blank cell has no entry. */
  values: CellValue[];
}

/** Excel's last column, XFD. Cells past it are not a spreadsheet's. */
const MAX_COLUMN_INDEX = 16_383;

/**
 * Reads `<sheetData>`: rows and cells may lack their `r` attribute (it is optional: the
 * position then follows the one before). Collects finished rows; `takeRows` hands them over.
 * Cells right of `columnLimit` are skipped without being converted.
 */
export class WorksheetParser implements XmlHandler {
  /** Columns read (0-based, exclusive). */
  columnLimit = MAX_COLUMN_INDEX + 1;
  private rows: SheetRow[] = [];
  private previousRowNumber = 0;
  private row: SheetRow | null = null;
  private column = -1;
  private cell: (RawCell & { style: number; column: number }) | null = null;
  /** What the next text belongs to. */
  private collecting: 'value' | 'inline' | 'formula' | null = null;
  private phoneticDepth = 0;

  constructor(
    private readonly sheetName: string,
    private readonly formats: CellFormat[],
    private readonly context: CellContext,
  ) {}

  takeRows(): SheetRow[] {
    const rows = this.rows;
    this.rows = [];
    return rows;
  }

  open(name: string, attributes: Record<string, string>): void {
    switch (name) {
      case 'row': {
        const rowNumber = attributes.r ? Number(attributes.r) : this.previousRowNumber + 1;
        // Row numbers identify staged rows downstream, so they must be unique: a sound file
        // lists its rows in ascending order.
        if (!Number.isSafeInteger(rowNumber) || rowNumber <= this.previousRowNumber) {
          throw new Error(
            `sheet "${this.sheetName}" has a row numbered ${attributes.r} after row ${this.previousRowNumber}`,
          );
        }
        this.previousRowNumber = rowNumber;
        this.row = { rowNumber, values: [] };
        this.column = -1;
        return;
      }
      case 'c': {
        const column = attributes.r ? columnIndex(attributes.r) : this.column + 1;
        this.column = column;
        this.cell = {
          type: attributes.t ?? 'n',
          value: null,
          inline: null,
          formula: null,
          style: attributes.s ? Number(attributes.s) : 0,
          column,
        };
        return;
      }
      case 'v':
        if (this.cell) {
          this.cell.value = '';
          this.collecting = 'value';
        }
        return;
      case 'f':
        if (this.cell) {
          this.cell.formula = '';
          this.collecting = 'formula';
        }
        return;
      case 'is':
        if (this.cell) this.cell.inline = '';
        return;
      case 'rPh':
        this.phoneticDepth += 1;
        return;
      case 't':
        if (this.cell?.inline !== null && this.cell && this.phoneticDepth === 0) {
          this.collecting = 'inline';
        }
        return;
    }
  }

  text(text: string): void {
    const cell = this.cell;
    if (!cell || this.collecting === null) return;
    if (this.collecting === 'value') cell.value += text;
    else if (this.collecting === 'inline') cell.inline += text;
    else cell.formula += text;
  }

  close(name: string): void {
    switch (name) {
      case 'v':
      case 'f':
      case 't':
        this.collecting = null;
        return;
      case 'rPh':
        this.phoneticDepth -= 1;
        return;
      case 'c': {
        const cell = this.cell;
        this.cell = null;
        if (!cell || !this.row || cell.column >= this.columnLimit) return;
        const value = cellValue(cell, this.formats[cell.style] ?? GENERAL, this.context);
        if (value !== null) this.row.values[cell.column] = value;
        return;
      }
      case 'row':
        if (this.row) this.rows.push(this.row);
        this.row = null;
        return;
    }
  }
}

/** `AB12` → 27. A reference without letters is not a cell's: the file is damaged. */
function columnIndex(reference: string): number {
  let index = 0;
  let at = 0;
  for (; at < reference.length; at += 1) {
    const code = reference.charCodeAt(at) & ~0x20;
    if (code < 65 || code > 90) break;
    index = index * 26 + (code - 64);
  }
  if (at === 0 || index - 1 > MAX_COLUMN_INDEX) {
    throw new Error(`a cell has the reference "${reference}"`);
  }
  return index - 1;
}
