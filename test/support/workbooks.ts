import { readFile, writeFile } from 'node:fs/promises';
import ExcelJS from 'exceljs';
import JSZip from 'jszip';

/** Workbooks for reader tests, written at test time so no binary fixture is committed. */

export interface SheetSpec {
  name: string;
  /** Row i is spreadsheet row i + 1; null leaves the row out (a blank row). */
  rows: (ExcelJS.CellValue[] | null)[];
  state?: 'visible' | 'hidden' | 'veryHidden';
  /** Number formats by cell address, e.g. { C2: 'yyyy-mm-dd' }. */
  numFmts?: Record<string, string>;
}

export async function writeWorkbook(path: string, sheets: SheetSpec[]): Promise<void> {
  const workbook = new ExcelJS.Workbook();
  for (const spec of sheets) {
    const sheet = workbook.addWorksheet(spec.name, { state: spec.state ?? 'visible' });
    for (const [index, values] of spec.rows.entries()) {
      if (values) sheet.getRow(index + 1).values = values;
    }
    for (const [address, numFmt] of Object.entries(spec.numFmts ?? {})) {
      sheet.getCell(address).numFmt = numFmt;
    }
  }
  await workbook.xlsx.writeFile(path);
}

/** Rewrites a zip in place, e.g. to plant hostile XML in a real workbook. */
export async function editZip(path: string, edit: (zip: JSZip) => void | Promise<void>) {
  const zip = await JSZip.loadAsync(await readFile(path));
  await edit(zip);
  await writeFile(path, await zip.generateAsync({ type: 'nodebuffer', compression: 'DEFLATE' }));
}

/** An .xlsx of one sheet (default "Users") whose rows are `rows`, as bytes to upload. */
export async function workbookBytes(
  rows: ExcelJS.CellValue[][],
  sheetName = 'Users',
): Promise<Uint8Array<ArrayBuffer>> {
  const workbook = new ExcelJS.Workbook();
  const sheet = workbook.addWorksheet(sheetName);
  for (const row of rows) sheet.addRow(row);
  return new Uint8Array(await workbook.xlsx.writeBuffer());
}
