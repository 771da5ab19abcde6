import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import ExcelJS from 'exceljs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeImportTemplate } from '../../server/import/template.js';

let directory: string;
beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'muster-template-'));
});
afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

const FORMULA_LIKE_LABEL = '=HYPERLINK("x")';
const HEADERS = ['Email', 'userName', 'reference', 'Department', FORMULA_LIKE_LABEL, 'Hire date'];

/** Writes the template to a real file and reads it back the way a user's Excel would. */
async function writeAndRead(headers: string[], fileName: string): Promise<ExcelJS.Worksheet> {
  const path = join(directory, fileName);
  await writeImportTemplate(createWriteStream(path), headers);
  const workbook = new ExcelJS.Workbook();
  await workbook.xlsx.readFile(path);
  expect(workbook.worksheets).toHaveLength(1);
  const sheet = workbook.worksheets[0];
  if (!sheet) throw new Error('the template has no sheet');
  return sheet;
}

function headerCells(sheet: ExcelJS.Worksheet, count: number): ExcelJS.Cell[] {
  return Array.from({ length: count }, (_, index) => sheet.getRow(1).getCell(index + 1));
}

describe('writeImportTemplate', () => {
  let sheet: ExcelJS.Worksheet;
  beforeAll(async () => {
    sheet = await writeAndRead(HEADERS, 'template.xlsx');
  });

  it('has one sheet named Users whose only row is the headers, in order', () => {
    expect(sheet.name).toBe('Users');
    expect(headerCells(sheet, HEADERS.length).map((cell) => cell.value)).toEqual(HEADERS);
    expect(sheet.getRow(1).cellCount).toBe(HEADERS.length);
    expect(sheet.rowCount).toBe(1);
  });

  it('writes a formula-like label as plain text, not a formula', () => {
    const cell = sheet.getRow(1).getCell(HEADERS.indexOf(FORMULA_LIKE_LABEL) + 1);
    expect(cell.type).toBe(ExcelJS.ValueType.String);
    expect(cell.value).toBe(FORMULA_LIKE_LABEL);
    expect(cell.formula).toBeUndefined();
  });

  it('makes the header bold and freezes it', () => {
    for (const cell of headerCells(sheet, HEADERS.length)) expect(cell.font?.bold).toBe(true);
    expect(sheet.views).toHaveLength(1);
    expect(sheet.views[0]).toMatchObject({ state: 'frozen', ySplit: 1 });
  });

  it('sizes every column, Email wider than the minimum', () => {
    const widths = HEADERS.map((_, index) => sheet.getColumn(index + 1).width ?? 0);
    for (const width of widths) expect(width).toBeGreaterThanOrEqual(12);
    expect(widths[0]).toBe(32);
  });

  it('formats the whole reference column as text, and only that column', () => {
    const numFmts = HEADERS.map((_, index) => sheet.getColumn(index + 1).numFmt);
    expect(numFmts[HEADERS.indexOf('reference')]).toBe('@');
    expect(numFmts.filter((numFmt) => numFmt === '@')).toHaveLength(1);
  });

  it('finds the reference column whatever its case and spacing, and caps long labels', async () => {
    const longLabel = 'x'.repeat(100);
    const headers = [' EMAIL ', 'userName', longLabel, ' Reference '];
    const other = await writeAndRead(headers, 'other-case.xlsx');
    expect(other.getColumn(4).numFmt).toBe('@');
    expect(other.getColumn(3).numFmt).toBeUndefined();
    expect(other.getColumn(1).width).toBe(32);
    expect(other.getColumn(3).width).toBe(50);
    expect(headerCells(other, headers.length).map((cell) => cell.value)).toEqual(headers);
  });

  it('rejects when the output fails', async () => {
    const failing = new Writable({
      write(_chunk, _encoding, callback) {
        callback(new Error('disk full'));
      },
    });
    await expect(writeImportTemplate(failing, HEADERS)).rejects.toThrow('disk full');
  });

  it('rejects instead of hanging when the output closes early, as when a client goes away', async () => {
    const closing = new Writable({
      write(_chunk, _encoding, callback) {
        this.destroy();
        callback();
      },
    });
    await expect(writeImportTemplate(closing, HEADERS)).rejects.toMatchObject({
      code: 'ERR_STREAM_PREMATURE_CLOSE',
    });
  });
});
