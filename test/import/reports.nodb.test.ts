import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import ExcelJS from 'exceljs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readWorkbook } from '../../server/import/reader/read-workbook.js';
import {
  type ErrorReportRow,
  type ImportedUsersReportRow,
  MAX_CELL_NOTES,
  neutralizeFormula,
  writeErrorReport,
  writeImportedUsersReport,
} from '../../server/import/reports.js';

let directory: string;
beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'muster-reports-'));
});
afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

async function* fromArray<T>(items: T[]): AsyncGenerator<T> {
  for (const item of items) yield item;
}

/** Reads a written report back the way a user's Excel would, and returns its only sheet. */
async function readReport(path: string): Promise<ExcelJS.Worksheet> {
  const workbook = new ExcelJS.Workbook();
  await workbook.xlsx.readFile(path);
  expect(workbook.worksheets).toHaveLength(1);
  const sheet = workbook.worksheets[0];
  if (!sheet) throw new Error('the report has no sheet');
  return sheet;
}

function rowValues(sheet: ExcelJS.Worksheet, rowNumber: number, columnCount: number): unknown[] {
  const row = sheet.getRow(rowNumber);
  return Array.from({ length: columnCount }, (_, index) => row.getCell(index + 1).value);
}

const RED_FILL = { type: 'pattern', pattern: 'solid', fgColor: { argb: 'FFFFC7CE' } };

const HEADERS = ['Email', 'userName', 'reference', '=Department', 'Note'];
const FORMULA_LIKE_CELLS = ['=SUM(A1)', '+1', '-2', '@x', '\tx'];

describe('neutralizeFormula', () => {
  it('prefixes a quote to text a spreadsheet would take for a formula, and only to that', () => {
    for (const text of ['=SUM(A1)', '+1', '-2', '@x', '\tx', '\rx']) {
      expect(neutralizeFormula(text)).toBe(`'${text}`);
    }
    for (const text of ['ann@example.com', '', ' =1', "'=1", 'a=b', '1-2']) {
      expect(neutralizeFormula(text)).toBe(text);
    }
  });
});

describe('writeErrorReport', () => {
  const rows: ErrorReportRow[] = [
    {
      rowNumber: 3,
      cells: ['not-an-email', 'Ann', 'R1', 'Sales', null],
      errors: [{ columnIndex: 0, code: 'INVALID_EMAIL', message: 'not a valid address' }],
    },
    {
      rowNumber: 7,
      cells: ['bob@example.com', null, 'R1', '=SUM(A1)', 'ok'],
      errors: [
        { columnIndex: 1, code: 'REQUIRED', message: 'is required' },
        { columnIndex: 2, code: 'DUPLICATE_IN_FILE', message: 'R1 is already in row 3' },
        { columnIndex: 2, code: 'TOO_LONG', message: 'is too long' },
        { columnIndex: null, code: 'ROW', message: '=the row as a whole' },
      ],
    },
    {
      rowNumber: 12,
      cells: FORMULA_LIKE_CELLS,
      errors: [{ columnIndex: 3, code: 'INVALID', message: '-1 is not allowed' }],
    },
    {
      rowNumber: 13,
      cells: ['\rx', 'carl', 'R3', null, null],
      errors: [{ columnIndex: 0, code: 'INVALID_EMAIL', message: 'not a valid address' }],
    },
  ];
  // Which uploaded cells (by 0-based column) of each row above have an error.
  const badColumns = [[0], [1, 2], [3], [0]];
  let sheet: ExcelJS.Worksheet;
  beforeAll(async () => {
    const path = join(directory, 'errors.xlsx');
    await writeErrorReport(createWriteStream(path), { headers: HEADERS, rows: fromArray(rows) });
    sheet = await readReport(path);
  });

  it('has a sheet "Errors" whose header is Row, the uploaded headers, then Errors', () => {
    expect(sheet.name).toBe('Errors');
    expect(rowValues(sheet, 1, HEADERS.length + 2)).toEqual([
      'Row',
      'Email',
      'userName',
      'reference',
      "'=Department",
      'Note',
      'Errors',
    ]);
    expect(sheet.getRow(1).cellCount).toBe(HEADERS.length + 2);
  });

  it('reads back, uploaded again, as the values that were uploaded (quotes dropped)', async () => {
    const events = [];
    for await (const event of readWorkbook(join(directory, 'errors.xlsx'), {
      requiredHeaders: ['Email', 'userName', 'reference'],
      maxRows: 100,
      maxColumns: 50,
      maxInflatedBytes: 10_000_000,
      maxEntries: 100,
      timeBudgetMs: 10_000,
    })) {
      events.push(event);
    }
    const header = events.find((event) => event.type === 'header');
    expect(header?.type === 'header' && header.headers.slice(1, 6)).toEqual(HEADERS);
    const read = events.flatMap((event) => (event.type === 'rows' ? event.rows : []));
    expect(read.map((row) => row.cells.slice(1, 6))).toEqual(
      rows.map((row) => row.cells.map((cell) => cell?.trim() || null)),
    );
  });

  it('makes the header bold and freezes it', () => {
    for (let column = 1; column <= HEADERS.length + 2; column += 1) {
      expect(sheet.getRow(1).getCell(column).font?.bold).toBe(true);
    }
    expect(sheet.views[0]).toMatchObject({ state: 'frozen', ySplit: 1 });
  });

  it('writes only the rows passed, each with its row number and uploaded values', () => {
    expect(sheet.rowCount).toBe(1 + rows.length);
    expect(rowValues(sheet, 2, 6)).toEqual([3, 'not-an-email', 'Ann', 'R1', 'Sales', null]);
    expect(rowValues(sheet, 3, 6)).toEqual([7, 'bob@example.com', null, 'R1', "'=SUM(A1)", 'ok']);
    expect(sheet.getRow(3).getCell(1).type).toBe(ExcelJS.ValueType.Number);
  });

  it('lists every message of the row in the Errors column, prefixed by its column header', () => {
    const errorsColumn = HEADERS.length + 2;
    expect(sheet.getRow(2).getCell(errorsColumn).value).toBe('Email: not a valid address');
    expect(sheet.getRow(3).getCell(errorsColumn).value).toBe(
      'userName: is required; reference: R1 is already in row 3; reference: is too long; ' +
        '=the row as a whole',
    );
    expect(sheet.getRow(4).getCell(errorsColumn).value).toBe("'=Department: -1 is not allowed");
  });

  it('fills exactly the bad cells red and gives each a note with its messages', () => {
    for (const [index, bad] of badColumns.entries()) {
      const row = sheet.getRow(index + 2);
      for (let columnIndex = 0; columnIndex < HEADERS.length; columnIndex += 1) {
        const cell = row.getCell(columnIndex + 2);
        if (bad.includes(columnIndex)) {
          expect(cell.fill, cell.address).toEqual(RED_FILL);
        } else {
          expect(cell.fill, cell.address).toBeUndefined();
          expect(cell.note, cell.address).toBeUndefined();
        }
      }
      expect(row.getCell(1).fill).toBeUndefined();
      expect(row.getCell(HEADERS.length + 2).fill).toBeUndefined();
    }
    expect(sheet.getCell('B2').note).toBe('not a valid address');
    expect(sheet.getCell('C3').note).toBe('is required');
    expect(sheet.getCell('D3').note).toBe('R1 is already in row 3\nis too long');
    expect(sheet.getCell('E4').note).toBe("'-1 is not allowed");
  });

  it('writes formula-like text as plain strings starting with a quote, never as formulas', () => {
    const cells = [
      ...FORMULA_LIKE_CELLS.map((_, index) => sheet.getRow(4).getCell(index + 2)),
      sheet.getCell('E3'),
      sheet.getCell('E1'),
    ];
    for (const cell of cells) {
      expect(cell.type, cell.address).toBe(ExcelJS.ValueType.String);
      expect(cell.formula, cell.address).toBeUndefined();
      expect(String(cell.value).startsWith("'"), cell.address).toBe(true);
    }
    expect(rowValues(sheet, 4, 6)).toEqual([12, ...FORMULA_LIKE_CELLS.map((text) => `'${text}`)]);
    expect(sheet.getRow(3).getCell(HEADERS.length + 2).formula).toBeUndefined();
  });

  it('writes text starting with a carriage return as a quoted plain string', () => {
    const cell = sheet.getCell('B5');
    expect(cell.type).toBe(ExcelJS.ValueType.String);
    expect(cell.formula).toBeUndefined();
    // XML turns a carriage return in text into a line feed when the file is read.
    expect(cell.value).toMatch(/^'[\r\n]x$/);
  });

  it('names a column without a header by its letter, and ignores cells past the headers', async () => {
    const path = join(directory, 'blank-header.xlsx');
    const blankHeaderRows = fromArray<ErrorReportRow>([
      {
        rowNumber: 2,
        cells: ['ann@example.com', 'x', 'beyond'],
        errors: [{ columnIndex: 1, code: 'INVALID', message: 'is wrong' }],
      },
    ]);
    await writeErrorReport(createWriteStream(path), {
      headers: ['Email', ' '],
      rows: blankHeaderRows,
    });
    const other = await readReport(path);
    expect(rowValues(other, 2, 4)).toEqual([2, 'ann@example.com', 'x', 'Column B: is wrong']);
    expect(other.getCell('C2').fill).toEqual(RED_FILL);
  });
});

describe('writeImportedUsersReport', () => {
  const rows: ImportedUsersReportRow[] = [
    {
      rowNumber: 2,
      cells: ['ann@example.com', 'Ann', 'R1'],
      action: 'CREATE',
      trainingGroup: 'Sales',
    },
    {
      rowNumber: 4,
      cells: ['bob@example.com', 'Bob', null],
      action: 'UPDATE',
      trainingGroup: null,
    },
    { rowNumber: 5, cells: ['+1', '@x', '-2'], action: 'UNCHANGED', trainingGroup: '=evil()' },
  ];
  let sheet: ExcelJS.Worksheet;
  beforeAll(async () => {
    const path = join(directory, 'users.xlsx');
    await writeImportedUsersReport(createWriteStream(path), {
      headers: ['Email', 'userName', '@reference'],
      rows: fromArray(rows),
    });
    sheet = await readReport(path);
  });

  it('has a sheet "Users": Row, the uploaded headers, Action, Training group', () => {
    expect(sheet.name).toBe('Users');
    expect(rowValues(sheet, 1, 6)).toEqual([
      'Row',
      'Email',
      'userName',
      "'@reference",
      'Action',
      'Training group',
    ]);
    expect(sheet.getRow(1).getCell(1).font?.bold).toBe(true);
    expect(sheet.views[0]).toMatchObject({ state: 'frozen', ySplit: 1 });
  });

  it('writes each row with its number, values, action and training group', () => {
    expect(sheet.rowCount).toBe(4);
    expect(rowValues(sheet, 2, 6)).toEqual([2, 'ann@example.com', 'Ann', 'R1', 'CREATE', 'Sales']);
    expect(rowValues(sheet, 3, 6)).toEqual([4, 'bob@example.com', 'Bob', null, 'UPDATE', null]);
    expect(rowValues(sheet, 4, 6)).toEqual([5, "'+1", "'@x", "'-2", 'UNCHANGED', "'=evil()"]);
    for (let column = 2; column <= 6; column += 1) {
      const cell = sheet.getRow(4).getCell(column);
      expect(cell.type, cell.address).toBe(ExcelJS.ValueType.String);
      expect(cell.formula, cell.address).toBeUndefined();
    }
  });
});

describe('a large report', () => {
  const ROW_COUNT = 20_000;

  async function* manyBadRows(): AsyncGenerator<ErrorReportRow> {
    for (let index = 0; index < ROW_COUNT; index += 1) {
      yield {
        rowNumber: index + 2,
        cells: [`user${index}`, `User ${index}`, `R${index}`],
        errors: [{ columnIndex: 0, code: 'INVALID_EMAIL', message: 'not a valid address' }],
      };
    }
  }

  it('is written from a generator in full; notes stop at the cap, red fills do not', async () => {
    const path = join(directory, 'large.xlsx');
    await writeErrorReport(createWriteStream(path), {
      headers: ['Email', 'userName', 'reference'],
      rows: manyBadRows(),
    });
    const sheet = await readReport(path);
    expect(sheet.rowCount).toBe(ROW_COUNT + 1);
    const last = ROW_COUNT + 1;
    expect(rowValues(sheet, last, 5)).toEqual([
      ROW_COUNT + 1,
      `user${ROW_COUNT - 1}`,
      `User ${ROW_COUNT - 1}`,
      `R${ROW_COUNT - 1}`,
      'Email: not a valid address',
    ]);
    const lastNoted = sheet.getRow(MAX_CELL_NOTES + 1).getCell(2);
    const firstUnnoted = sheet.getRow(MAX_CELL_NOTES + 2).getCell(2);
    expect(lastNoted.note).toBe('not a valid address');
    expect(firstUnnoted.note).toBeUndefined();
    expect(firstUnnoted.fill).toEqual(RED_FILL);
    expect(sheet.getRow(last).getCell(2).fill).toEqual(RED_FILL);
  });

  it('stops reading rows while the output takes nothing, and goes on when it does', async () => {
    // Rows of random text, so that little of them fits in the zip's buffers once compressed.
    const STALL_ROW_COUNT = 10_000;
    let rowsRead = 0;
    async function* incompressibleRows(): AsyncGenerator<ImportedUsersReportRow> {
      for (let index = 0; index < STALL_ROW_COUNT; index += 1) {
        rowsRead += 1;
        const noise = randomBytes(600).toString('base64');
        yield { rowNumber: index + 2, cells: [noise], action: 'CREATE', trainingGroup: null };
      }
    }
    // An output that holds every write until released, like a client that stopped reading.
    const chunks: Buffer[] = [];
    const heldWrites: (() => void)[] = [];
    let released = false;
    const stalledOutput = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk);
        if (released) callback();
        else heldWrites.push(() => callback());
      },
    });
    const writing = writeImportedUsersReport(stalledOutput, {
      headers: ['Noise'],
      rows: incompressibleRows(),
    });
    let previous = -1;
    while (rowsRead !== previous) {
      previous = rowsRead;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(rowsRead).toBeGreaterThan(0);
    expect(rowsRead).toBeLessThan(STALL_ROW_COUNT);
    released = true;
    for (const release of heldWrites.splice(0)) release();
    await writing;
    expect(rowsRead).toBe(STALL_ROW_COUNT);
    const workbook = new ExcelJS.Workbook();
    const written = Buffer.concat(chunks);
    // exceljs types its argument as an ArrayBuffer.
    await workbook.xlsx.load(
      written.buffer.slice(written.byteOffset, written.byteOffset + written.byteLength),
    );
    expect(workbook.worksheets[0]?.rowCount).toBe(STALL_ROW_COUNT + 1);
  });

  it('rejects and stops reading rows when the output fails', async () => {
    let rowsRead = 0;
    let rowsClosed: () => void = () => {};
    const closed = new Promise<void>((resolve) => {
      rowsClosed = resolve;
    });
    async function* countedRows(): AsyncGenerator<ErrorReportRow> {
      try {
        for await (const row of manyBadRows()) {
          rowsRead += 1;
          yield row;
        }
      } finally {
        rowsClosed();
      }
    }
    const failingOutput = new Writable({
      write(_chunk, _encoding, callback) {
        callback(new Error('disk full'));
      },
    });
    await expect(
      writeErrorReport(failingOutput, { headers: ['Email'], rows: countedRows() }),
    ).rejects.toThrow('disk full');
    // Had writing gone on into the failed output, every row would have been read by now.
    await closed;
    expect(rowsRead).toBeLessThan(ROW_COUNT);
  });
});
