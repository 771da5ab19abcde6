import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { getPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import ExcelJS from 'exceljs';
import JSZip from 'jszip';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cellValue, formatGeneral } from '../../server/import/reader/cell-values.js';
import { classify } from '../../server/import/reader/number-formats.js';
import {
  type ReadEvent,
  type ReadLimits,
  readWorkbook,
  WorkbookReadError,
  type WorkbookReadErrorCode,
} from '../../server/import/reader/read-workbook.js';
import {
  keepReaderWarm,
  READER_NICENESS,
  type ReaderEvent,
  readWorkbookInWorker,
} from '../../server/import/reader/reader-thread.js';
import { fromRowsBatch } from '../../server/import/reader/rows-batch.js';
import { editZip, type SheetSpec, writeWorkbook } from '../support/workbooks.js';

const limits: ReadLimits = {
  requiredHeaders: ['Email', 'userName', 'reference'],
  maxRows: 1000,
  maxColumns: 50,
  maxInflatedBytes: 50 * 1024 * 1024,
  maxEntries: 1000,
  timeBudgetMs: 20_000,
};
const header = ['Email', 'userName', 'reference'];

let directory: string;
let fileCount = 0;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'muster-read-workbook-'));
});

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

function newPath(extension = 'xlsx'): string {
  fileCount += 1;
  return join(directory, `file-${fileCount}.${extension}`);
}

async function workbook(sheets: SheetSpec[]): Promise<string> {
  const path = newPath();
  await writeWorkbook(path, sheets);
  return path;
}

async function fileWith(content: Buffer | string): Promise<string> {
  const path = newPath();
  await writeFile(path, content);
  return path;
}

/** A workbook with one "Users" sheet of `rowCount` generated users, written by streaming. */
async function usersWorkbook(
  rowCount: number,
  extraColumns: (index: number) => string[] = () => [],
) {
  const path = newPath();
  const writer = new ExcelJS.stream.xlsx.WorkbookWriter({ filename: path, useSharedStrings: true });
  const sheet = writer.addWorksheet('Users');
  sheet.addRow([...header, ...extraColumns(-1).map((_, index) => `Extra ${index}`)]).commit();
  for (let index = 0; index < rowCount; index++) {
    sheet
      .addRow([`user${index}@example.com`, `User ${index}`, `R${index}`, ...extraColumns(index)])
      .commit();
  }
  sheet.commit();
  await writer.commit();
  return path;
}

async function readAll(path: string, readLimits: Partial<ReadLimits> = {}) {
  const events: ReadEvent[] = [];
  for await (const event of readWorkbook(path, { ...limits, ...readLimits })) events.push(event);
  return summarize(events);
}

function summarize(events: ReadEvent[]) {
  return {
    events,
    header: events.find((event) => event.type === 'header'),
    rows: events.flatMap((event) => (event.type === 'rows' ? event.rows : [])),
    progress: events.flatMap((event) => (event.type === 'progress' ? [event] : [])),
  };
}

async function readFailure(
  path: string,
  code: WorkbookReadErrorCode,
  readLimits: Partial<ReadLimits> = {},
): Promise<WorkbookReadError> {
  const error = await readAll(path, readLimits).then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(WorkbookReadError);
  expect(error).toMatchObject({ code });
  return error as WorkbookReadError;
}

describe('readWorkbook', () => {
  it('emits the header and the rows with their spreadsheet row numbers', async () => {
    const path = await workbook([
      {
        name: 'Users',
        rows: [
          ['Email', 'userName', 'reference', 'Department'],
          ['ann@example.com', 'Ann', 'R1', 'Sales'],
          null,
          ['', '   ', null, ''],
          ['bob@example.com', 'Bob', 'R2', null, 'beyond the last header'],
        ],
      },
    ]);
    const { header, rows } = await readAll(path);
    expect(header).toEqual({
      type: 'header',
      sheetName: 'Users',
      headerRowNumber: 1,
      headers: ['Email', 'userName', 'reference', 'Department'],
      sheets: [{ name: 'Users', hasRequiredHeaders: true, read: true }],
    });
    expect(rows).toEqual([
      { rowNumber: 2, cells: ['ann@example.com', 'Ann', 'R1', 'Sales'] },
      { rowNumber: 5, cells: ['bob@example.com', 'Bob', 'R2', null] },
    ]);
  });

  it('emits rows in batches of batchSize', async () => {
    const path = await usersWorkbook(5);
    const { events } = await readAll(path, { batchSize: 2 });
    const batches = events.flatMap((event) => (event.type === 'rows' ? [event.rows] : []));
    expect(batches.map((batch) => batch.map((row) => row.rowNumber))).toEqual([
      [2, 3],
      [4, 5],
      [6],
    ]);
  });

  it('matches headers in any case and spacing, and reports them trimmed', async () => {
    const path = await workbook([
      {
        name: 'Users',
        rows: [
          ['  EMAIL ', 'USERNAME', ' Reference'],
          ['a@x.io', 'A', '1'],
        ],
      },
    ]);
    const { header, rows } = await readAll(path);
    expect(header?.headers).toEqual(['EMAIL', 'USERNAME', 'Reference']);
    expect(rows).toEqual([{ rowNumber: 2, cells: ['a@x.io', 'A', '1'] }]);
  });

  it('finds the header below blank rows and keeps the spreadsheet row numbers', async () => {
    const path = await workbook([
      {
        name: 'Users',
        rows: [null, null, header, ['a@x.io', 'A', '1'], null, ['b@x.io', 'B', '2']],
      },
    ]);
    const { header: headerEvent, rows } = await readAll(path);
    expect(headerEvent?.headerRowNumber).toBe(3);
    expect(rows.map((row) => row.rowNumber)).toEqual([4, 6]);
  });

  it('ignores a column whose header is blank', async () => {
    const path = await workbook([
      {
        name: 'Users',
        rows: [
          ['Email', null, 'userName', 'reference'],
          ['a@x.io', 'note', 'A', '1'],
        ],
      },
    ]);
    const { header: headerEvent, rows } = await readAll(path);
    expect(headerEvent?.headers).toEqual(['Email', '', 'userName', 'reference']);
    expect(rows).toEqual([{ rowNumber: 2, cells: ['a@x.io', null, 'A', '1'] }]);
  });

  it('skips sheets without the headers, such as instructions, and reads the next one', async () => {
    const path = await workbook([
      { name: 'Instructions', rows: [['Fill in the Users sheet.'], ['One user per row.']] },
      { name: 'Users', rows: [header, ['a@x.io', 'A', '1']] },
    ]);
    const { header: headerEvent, rows } = await readAll(path);
    expect(headerEvent?.sheetName).toBe('Users');
    expect(rows).toEqual([{ rowNumber: 2, cells: ['a@x.io', 'A', '1'] }]);
  });

  it('skips hidden sheets even when they hold the headers', async () => {
    const path = await workbook([
      { name: 'Old', state: 'hidden', rows: [header, ['old@x.io', 'Old', '0']] },
      { name: 'Older', state: 'veryHidden', rows: [header, ['older@x.io', 'Older', '0']] },
      { name: 'Users', rows: [header, ['a@x.io', 'A', '1']] },
    ]);
    const { header: headerEvent, rows } = await readAll(path);
    expect(headerEvent?.sheetName).toBe('Users');
    expect(rows).toEqual([{ rowNumber: 2, cells: ['a@x.io', 'A', '1'] }]);
  });

  it('takes the first sheet in tab order, not in file order', async () => {
    const path = await workbook([
      { name: 'Second tab', rows: [header, ['second@x.io', 'B', '2']] },
      { name: 'First tab', rows: [header, ['first@x.io', 'A', '1']] },
    ]);
    // Move "First tab" (stored in sheet2.xml) before "Second tab" in the workbook's tab list.
    await editZip(path, async (zip) => {
      const xml = await zip.file('xl/workbook.xml')?.async('string');
      const sheets = xml?.match(/<sheet [^>]*\/>/g);
      if (!xml || sheets?.length !== 2) throw new Error('unexpected workbook.xml');
      zip.file('xl/workbook.xml', xml.replace(sheets.join(''), `${sheets[1]}${sheets[0]}`));
    });
    const { header: headerEvent, rows } = await readAll(path);
    expect(headerEvent?.sheetName).toBe('First tab');
    expect(rows[0]?.cells[0]).toBe('first@x.io');
  });

  it('turns every kind of cell into text', async () => {
    const date = new Date(Date.UTC(2024, 0, 15));
    const path = await workbook([
      {
        name: 'Users',
        rows: [
          [...header, 'value'],
          ['date', '', '', date],
          ['date and time', '', '', new Date(Date.UTC(2024, 0, 15, 10, 30, 5))],
          ['integer', '', '', 42],
          ['big', '', '', 1e21],
          ['small', '', '', 1.5e-7],
          ['float', '', '', 0.1 + 0.2],
          ['negative', '', '', -3.25],
          ['long integer', '', '', 4915112345678],
          [
            'rich text',
            '',
            '',
            { richText: [{ text: 'Hel' }, { text: 'lo', font: { bold: true } }] },
          ],
          ['hyperlink', '', '', { text: 'our site', hyperlink: 'https://example.com' }],
          ['formula number', '', '', { formula: '40+2', result: 42 }],
          ['formula text', '', '', { formula: 'CONCAT("a","b")', result: 'ab' }],
          ['formula date', '', '', { formula: 'DATE(2024,1,15)', result: date }],
          ['formula without result', '', '', { formula: 'A1', result: undefined }],
          // exceljs dropped a falsy cached result (patches/exceljs+4.4.0.patch).
          ['formula zero', '', '', { formula: '1-1', result: 0 }],
          ['formula false', '', '', { formula: '1=2', result: false }],
          ['true', '', '', true],
          ['false', '', '', false],
          ['error', '', '', { error: '#N/A' }],
          ['padded', '', '', '  padded text  '],
          // How Muster's reports write formula-like text; read as the text after the quote.
          ['quoted formula', '', '', "'=SUM(1,2)"],
          ['quoted phone', '', '', "'+49 30 1234"],
          ['apostrophe', '', '', "'til then"],
        ],
        numFmts: { D3: 'yyyy-mm-dd hh:mm:ss', D14: 'yyyy-mm-dd' },
      },
    ]);
    const { rows } = await readAll(path);
    expect(Object.fromEntries(rows.map((row) => [row.cells[0], row.cells[3]]))).toEqual({
      date: '2024-01-15',
      'date and time': '2024-01-15T10:30:05',
      integer: '42',
      big: '1000000000000000000000',
      small: '0.00000015',
      float: '0.3',
      negative: '-3.25',
      'long integer': '4915112345678',
      'rich text': 'Hello',
      hyperlink: 'our site',
      'formula number': '42',
      'formula text': 'ab',
      'formula date': '2024-01-15',
      'formula without result': null,
      'formula zero': '0',
      'formula false': 'false',
      true: 'true',
      false: 'false',
      error: null,
      padded: 'padded text',
      'quoted formula': '=SUM(1,2)',
      'quoted phone': '+49 30 1234',
      apostrophe: "'til then",
    });
    const problems = rows.flatMap((row) =>
      (row.problems ?? []).map((problem) => [row.cells[0], problem.code, problem.value]),
    );
    expect(problems).toEqual([
      ['formula without result', 'FORMULA_WITHOUT_VALUE', '=A1'],
      ['error', 'CELL_ERROR_VALUE', '#N/A'],
    ]);
  });

  it('keeps multi-byte characters that straddle the 16 KiB chunks of the XML parser', async () => {
    // exceljs decoded each chunk of XML on its own, so a character cut by a chunk boundary
    // became U+FFFD (patches/exceljs+4.4.0.patch). Written as Excel writes: shared strings.
    const path = newPath();
    const writer = new ExcelJS.stream.xlsx.WorkbookWriter({
      filename: path,
      useSharedStrings: true,
    });
    const sheet = writer.addWorksheet('Users');
    sheet.addRow([...header, 'Note']).commit();
    const names = Array.from({ length: 1000 }, (_, i) => `Jürgen Müller € ${i}`);
    const notes = Array.from({ length: 1000 }, (_, i) => `${'😀日本'.repeat(i % 7)}${i}`);
    for (const [i, name] of names.entries()) {
      sheet.addRow([`u${i}@example.com`, name, `R${i}`, notes[i]]).commit();
    }
    sheet.commit();
    await writer.commit();
    const { rows } = await readAll(path);
    expect(rows.map((row) => row.cells[1])).toEqual(names);
    expect(rows.map((row) => row.cells[3])).toEqual(notes);
  });

  it('keeps header names such as __proto__ as plain text', async () => {
    const path = await workbook([
      {
        name: 'Users',
        rows: [
          [...header, '__proto__', 'constructor'],
          ['a@x.io', 'A', '1', 'p', 'c'],
        ],
      },
    ]);
    const { header: headerEvent, rows } = await readAll(path);
    expect(headerEvent?.headers.slice(3)).toEqual(['__proto__', 'constructor']);
    expect(rows[0]?.cells).toEqual(['a@x.io', 'A', '1', 'p', 'c']);
  });

  it('reports progress while unpacking (bytes) until the first row, then while reading (rows)', async () => {
    const path = await usersWorkbook(1000);
    const progress: ReadEvent[] = [];
    let rowsSoFar = 0;
    for await (const event of readWorkbook(path, { ...limits, batchSize: 100 })) {
      if (event.type === 'progress') progress.push(event);
      if (event.type !== 'rows') continue;
      rowsSoFar += event.rows.length;
      // A slow consumer: the next event after a pause longer than the interval is progress.
      if (rowsSoFar === 100) await sleep(250);
    }
    const inflating = progress.filter(
      (event) => event.type === 'progress' && event.phase === 'INFLATING',
    );
    const reading = progress.filter(
      (event) => event.type === 'progress' && event.phase === 'READING',
    );
    const declaredBytes = (inflating[0] as { total: number }).total;
    expect(declaredBytes).toBeGreaterThan(0);
    expect(inflating[0]).toMatchObject({ done: 0 });
    // Bytes grow up to the declared total; every INFLATING event comes before any READING one.
    const bytes = inflating.map((event) => (event as { done: number }).done);
    expect(bytes).toEqual([...bytes].sort((a, b) => a - b));
    expect(bytes.at(-1)).toBeLessThanOrEqual(declaredBytes);
    expect(progress.slice(0, inflating.length)).toEqual(inflating);
    expect(reading[0]).toMatchObject({ total: null });
    expect(reading.some((event) => event.type === 'progress' && event.done === 100)).toBe(true);
    expect(reading.at(-1)).toMatchObject({ done: 1000, total: null });
  });

  it('reads a sheet with a merge over the whole grid quickly (merges are not visited)', async () => {
    const path = await workbook([{ name: 'Users', rows: [header, ['a@x.io', 'A', '1']] }]);
    await editZip(path, async (zip) => {
      const xml = await zip.file('xl/worksheets/sheet1.xml')?.async('string');
      const merges = `<mergeCells count="2000">${'<mergeCell ref="A1:XFD1048576"/>'.repeat(2000)}</mergeCells>`;
      zip.file(
        'xl/worksheets/sheet1.xml',
        xml?.replace('</sheetData>', `</sheetData>${merges}`) ?? '',
      );
    });
    const startedAt = Date.now();
    const { rows } = await readAll(path);
    expect(rows).toEqual([{ rowNumber: 2, cells: ['a@x.io', 'A', '1'] }]);
    expect(Date.now() - startedAt).toBeLessThan(5000);
  });

  it('stops with the abort reason when aborted', async () => {
    const path = await usersWorkbook(10);
    const controller = new AbortController();
    controller.abort();
    const events = readWorkbook(path, limits, controller.signal);
    await expect(events.next()).rejects.toMatchObject({ name: 'AbortError' });
  });
});

describe('readWorkbook rejects', () => {
  it('a workbook without some required columns, naming them', async () => {
    const path = await workbook([
      { name: 'Instructions', rows: [['Read me']] },
      {
        name: 'Users',
        rows: [
          ['Email', 'Name'],
          ['a@x.io', 'A'],
        ],
      },
    ]);
    const error = await readFailure(path, 'MISSING_COLUMNS');
    expect(error.message).toBe(
      'Missing required columns: userName, reference (sheet "Users", row 1).',
    );
    expect(error.details).toMatchObject({ missingHeaders: ['userName', 'reference'] });
  });

  it('a workbook without any sheet holding the headers', async () => {
    const path = await workbook([
      {
        name: 'Notes',
        rows: [
          ['Name', 'Phone'],
          ['A', '1'],
        ],
      },
      { name: 'Empty', rows: [] },
    ]);
    const error = await readFailure(path, 'NO_DATA_SHEET');
    expect(error.message).toBe(
      'The file has no sheet whose first rows hold the columns Email, userName and reference.',
    );
  });

  it('a workbook whose only sheet with the headers is hidden, saying so', async () => {
    const path = await workbook([
      { name: 'Notes', rows: [['Read me']] },
      { name: 'Users', state: 'hidden', rows: [header, ['a@x.io', 'A', '1']] },
    ]);
    const error = await readFailure(path, 'NO_DATA_SHEET');
    expect(error.message).toContain('Hidden sheets are not read.');
  });

  it('a header that appears twice, ignoring case and spaces', async () => {
    const path = await workbook([
      {
        name: 'Users',
        rows: [
          ['Email', 'userName', 'reference', ' email '],
          ['a@x.io', 'A', '1', 'b@x.io'],
        ],
      },
    ]);
    const error = await readFailure(path, 'DUPLICATE_HEADERS');
    expect(error.message).toContain('The header "Email" appears twice (columns A and D)');
    expect(error.details).toMatchObject({ header: 'Email', columns: ['A', 'D'] });
  });

  it('more data rows than maxRows, but not exactly maxRows', async () => {
    const path = await usersWorkbook(5);
    await expect(readAll(path, { maxRows: 5 })).resolves.toMatchObject({ rows: { length: 5 } });
    const error = await readFailure(path, 'TOO_MANY_ROWS', { maxRows: 4 });
    expect(error.message).toBe(
      'The file has more than 4 rows. Split the users over several files of at most 4 rows.',
    );
    const thousands = await readFailure(await usersWorkbook(1001), 'TOO_MANY_ROWS', {
      maxRows: 1000,
    });
    expect(thousands.message).toContain('The file has more than 1,000 rows.');
  });

  it('more columns than maxColumns', async () => {
    const path = await workbook([
      {
        name: 'Users',
        rows: [
          [...header, 'Department'],
          ['a@x.io', 'A', '1', 'Sales'],
        ],
      },
    ]);
    const error = await readFailure(path, 'TOO_MANY_COLUMNS', { maxColumns: 3 });
    expect(error.message).toBe('The sheet "Users" has 4 columns; an import can read at most 3.');
  });

  it('a zip that inflates past maxInflatedBytes', async () => {
    const path = await workbook([{ name: 'Users', rows: [header, ['a@x.io', 'A', '1']] }]);
    await editZip(path, (zip) => {
      zip.file('xl/media/padding.bin', Buffer.alloc(5 * 1024 * 1024));
    });
    expect((await readFile(path)).length).toBeLessThan(100 * 1024);
    const error = await readFailure(path, 'TOO_LARGE_INFLATED', { maxInflatedBytes: 1024 * 1024 });
    expect(error.message).toContain('The file unpacks to more than 1 MiB');
  });

  it('a zip whose headers understate how much the sheet inflates to, cut after a whole row', async () => {
    const rows = [header, ['a@x.io', 'A', '1'], ['b@x.io', 'B', '2'], ['c@x.io', 'C', '3']];
    const path = await workbook([{ name: 'Users', rows }]);
    const sheetXml = await (await JSZip.loadAsync(await readFile(path)))
      .file('xl/worksheets/sheet1.xml')
      ?.async('string');
    // Declared to end right after the first data row: exceljs, reading the part as long as
    // its header says, would see one sound row and nothing wrong.
    const cut = (sheetXml ?? '').indexOf('</row>', (sheetXml ?? '').indexOf('</row>') + 1) + 6;
    expect(cut).toBeGreaterThan(6);
    await writeFile(path, understateSize(await readFile(path), 'xl/worksheets/sheet1.xml', cut));
    // yauzl stops the part as soon as it inflates past its declared size, and the read waits
    // for the whole part before it ends.
    const error = await readFailure(path, 'CORRUPT_FILE');
    expect(error.details.reason).toMatch(/too many bytes/);
  });

  it('a zip whose workbook part has a damaged local header, without crashing or stalling', async () => {
    const path = await workbook([{ name: 'Users', rows: [header, ['a@x.io', 'A', '1']] }]);
    const bytes = await readFile(path);
    const name = Buffer.from('xl/workbook.xml');
    let damaged = 0;
    for (let offset = 0; offset < bytes.length - 30; offset++) {
      if (bytes.readUInt32LE(offset) !== 0x04034b50) continue;
      const start = offset + 30;
      if (!bytes.subarray(start, start + bytes.readUInt16LE(offset + 26)).equals(name)) continue;
      bytes.write('offi', offset, 'latin1');
      damaged += 1;
    }
    expect(damaged).toBe(1);
    await writeFile(path, bytes);
    // yauzl fails to open the part; the error reaches the read instead of the stream exceljs
    // pipes (which would throw it uncaught and leave exceljs waiting).
    const error = await readFailure(path, 'CORRUPT_FILE');
    expect(error.details.reason).toMatch(/invalid local file header signature/);
  });

  it('never unpacks a part it does not read, whatever size that part declares', async () => {
    const path = await workbook([{ name: 'Users', rows: [header, ['a@x.io', 'A', '1']] }]);
    await editZip(path, (zip) => {
      zip.file('xl/media/padding.bin', Buffer.alloc(5 * 1024 * 1024));
    });
    await writeFile(path, understateSize(await readFile(path), 'xl/media/padding.bin', 1000));
    const { rows } = await readAll(path, { maxInflatedBytes: 1024 * 1024 });
    expect(rows.map((row) => row.cells)).toEqual([['a@x.io', 'A', '1']]);
  });

  it('a zip of more entries than maxEntries', async () => {
    const path = await workbook([{ name: 'Users', rows: [header, ['a@x.io', 'A', '1']] }]);
    await readFailure(path, 'TOO_LARGE_INFLATED', { maxEntries: 5 });
  });

  it('a read that overruns its time budget', async () => {
    const path = await usersWorkbook(5000);
    const error = await readFailure(path, 'TIME_LIMIT', { timeBudgetMs: 20, maxRows: 10_000 });
    expect(error.message).toContain('took longer than 1 second,');
  });

  it('a CSV file renamed to .xlsx', async () => {
    const path = await fileWith('Email,userName,reference\na@x.io,A,1\n');
    const error = await readFailure(path, 'NOT_A_WORKBOOK');
    expect(error.message).toContain('not an Excel workbook (.xlsx)');
  });

  it('random bytes and an empty file', async () => {
    await readFailure(
      await fileWith(Buffer.concat([Buffer.from([0]), randomBytes(4096)])),
      'NOT_A_WORKBOOK',
    );
    await readFailure(await fileWith(Buffer.alloc(0)), 'NOT_A_WORKBOOK');
  });

  it('an old .xls (OLE2) file, and a password-protected .xlsx (OLE2 with EncryptedPackage)', async () => {
    const ole2 = Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]);
    const xls = await readFailure(
      await fileWith(Buffer.concat([ole2, Buffer.alloc(4096)])),
      'NOT_A_WORKBOOK',
    );
    expect(xls.message).toContain('97-2003');
    const encrypted = Buffer.concat([
      ole2,
      Buffer.alloc(70_000),
      Buffer.from('EncryptedPackage', 'utf16le'),
      Buffer.alloc(512),
    ]);
    await readFailure(await fileWith(encrypted), 'ENCRYPTED');
  });

  it('a zip that is not a workbook', async () => {
    const zip = new JSZip();
    zip.file('readme.txt', 'hello');
    const path = await fileWith(await zip.generateAsync({ type: 'nodebuffer' }));
    const error = await readFailure(path, 'NOT_A_WORKBOOK');
    expect(error.message).toContain('zip archive but not an Excel workbook');
  });

  it('a truncated workbook', async () => {
    const complete = await readFile(await usersWorkbook(100));
    await readFailure(await fileWith(complete.subarray(0, complete.length / 2)), 'CORRUPT_FILE');
  });

  it('a DOCTYPE entity attack in the shared strings', async () => {
    const path = await workbook([{ name: 'Users', rows: [header, ['a@x.io', 'A', '1']] }]);
    await editZip(path, async (zip) => {
      const xml = (await zip.file('xl/sharedStrings.xml')?.async('string')) ?? '';
      const entities = '<!DOCTYPE sst [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>';
      zip.file(
        'xl/sharedStrings.xml',
        xml.replace(/<\?xml[^>]*\?>/, `$&${entities}`).replace('<t>a@x.io</t>', '<t>&b;</t>'),
      );
    });
    const error = await readFailure(path, 'CORRUPT_FILE');
    expect(error.details.reason).toMatch(/undefined entity/);
  });

  it('a cell pointing past the end of the shared strings', async () => {
    const path = await workbook([{ name: 'Users', rows: [header, ['a@x.io', 'A', '1']] }]);
    await editZip(path, async (zip) => {
      const xml = (await zip.file('xl/worksheets/sheet1.xml')?.async('string')) ?? '';
      zip.file('xl/worksheets/sheet1.xml', xml.replace(/(<c r="B2"[^>]*><v>)\d+/, '$1999'));
    });
    const error = await readFailure(path, 'CORRUPT_FILE');
    expect(error.details.reason).toMatch(/shared string 999/);
  });
  it('rows that repeat a row number', async () => {
    const path = await workbook([
      { name: 'Users', rows: [header, ['a@x.io', 'A', '1'], ['b@x.io', 'B', '2']] },
    ]);
    await editZip(path, async (zip) => {
      const xml = (await zip.file('xl/worksheets/sheet1.xml')?.async('string')) ?? '';
      zip.file('xl/worksheets/sheet1.xml', xml.replace('<row r="3"', '<row r="2"'));
    });
    const error = await readFailure(path, 'CORRUPT_FILE');
    expect(error.details.reason).toMatch(/row numbered 2 after row 2/);
  });
});

describe('cell values', () => {
  const context = { sharedStrings: [], date1904: false };
  const formula = (value: string, code: string, date1904 = false) =>
    cellValue({ type: 'n', value, inline: null, formula: 'TODAY()' }, classify(code), {
      ...context,
      date1904,
    });

  it('writes numbers in plain decimal, at most 15 significant digits', () => {
    expect(formatGeneral(1e21)).toBe('1000000000000000000000');
    expect(formatGeneral(1.2345e25)).toBe('12345000000000000000000000');
    expect(formatGeneral(-1e-7)).toBe('-0.0000001');
    expect(formatGeneral(5e-324)).toBe(`0.${'0'.repeat(323)}494065645841247`);
    expect(formatGeneral(0.049999999999999975)).toBe('0.05');
    expect(formatGeneral(123456789012345680)).toBe('123456789012346000');
    expect(formatGeneral(123.456)).toBe('123.456');
    expect(formatGeneral(-0)).toBe('0');
    expect(formatGeneral(Number.NaN)).toBeNull();
  });

  it('applies a date format to a formula result, in the 1904 date system too', () => {
    expect(formula('45306', 'dd/mm/yyyy')).toBe('2024-01-15');
    expect(formula('45306.5', 'd mmm yy h:mm')).toBe('2024-01-15T12:00');
    expect(formula('43844', 'yyyy-mm-dd', true)).toBe('2024-01-15');
    expect(formula('45306', '"Total" 0.00')).toBe('45306');
  });

  it('shows a date too large for Excel as the number', () => {
    expect(formula('1e300', 'yyyy-mm-dd')).toBe(formatGeneral(1e300));
  });
});

describe('readWorkbookInWorker', () => {
  /** The worker hands rows over as JSON text a batch; as readWorkbook yields them. */
  const asReadEvent = (event: ReaderEvent): ReadEvent =>
    event.type === 'rows' ? { type: 'rows', rows: fromRowsBatch(event.batch) } : event;

  it('relays the same events as readWorkbook, waiting for onEvent', async () => {
    const path = await usersWorkbook(50);
    const inWorker: ReadEvent[] = [];
    await readWorkbookInWorker(path, { ...limits, batchSize: 10 }, async (event) => {
      await sleep(1);
      inWorker.push(asReadEvent(event));
    });
    const direct = await readAll(path, { batchSize: 10 });
    const relayed = summarize(inWorker);
    expect(relayed.header).toEqual(direct.header);
    expect(relayed.rows).toEqual(direct.rows);
    expect(relayed.rows).toHaveLength(50);
    expect(relayed.progress.map((event) => event.phase)).toContain('INFLATING');
  });

  it('reads in a thread niced below the server, so requests go first (Linux)', async () => {
    const path = await usersWorkbook(20);
    let nicedThreads: string[] = [];
    await readWorkbookInWorker(path, limits, async () => {
      if (nicedThreads.length > 0) return;
      nicedThreads = (await readdir('/proc/self/task')).filter((threadId) => {
        const stat = readFileSync(`/proc/self/task/${threadId}/stat`, 'utf8');
        // Fields after "(comm) ": state is the 1st, nice the 17th.
        const nice = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16];
        return Number(nice) === READER_NICENESS;
      });
    });
    expect(nicedThreads.length).toBeGreaterThanOrEqual(1);
    // The process itself keeps its priority.
    expect(getPriority()).toBe(0);
  });

  it('reads with workers started ahead when the reader is kept warm', async () => {
    const stopWarm = keepReaderWarm();
    try {
      const path = await usersWorkbook(20);
      const direct = await readAll(path, { batchSize: 10 });
      // The first read takes the spare started above (before it has loaded, or after), the
      // second the one started when the first ended.
      for (const pause of [0, 1500]) {
        await sleep(pause);
        const inWorker: ReadEvent[] = [];
        await readWorkbookInWorker(path, { ...limits, batchSize: 10 }, (event) => {
          inWorker.push(asReadEvent(event));
        });
        expect(summarize(inWorker).rows).toEqual(direct.rows);
      }
    } finally {
      await stopWarm();
    }
  });

  it('hands progress over while earlier row batches are still being handled', async () => {
    const path = await usersWorkbook(30);
    let progressWhileStaging: ReadEvent | undefined;
    let releaseFirstBatch: () => void = () => {};
    const firstBatchReleased = new Promise<void>((resolve) => {
      releaseFirstBatch = resolve;
    });
    let batches = 0;
    await readWorkbookInWorker(path, { ...limits, batchSize: 10 }, async (event) => {
      if (event.type === 'progress' && event.phase === 'READING' && event.done === 30) {
        // The read's last progress, posted after all three batches: the first is still held.
        if (batches === 1) progressWhileStaging = event;
        releaseFirstBatch();
      }
      if (event.type !== 'rows') return;
      batches += 1;
      // Held until the last progress arrives (or 5 s pass: then the test fails below).
      if (batches === 1) await Promise.race([firstBatchReleased, sleep(5000)]);
    });
    expect(batches).toBe(3);
    expect(progressWhileStaging).toMatchObject({ phase: 'READING', done: 30 });
  });

  it('rejects with the typed error the worker reports', async () => {
    const path = await workbook([{ name: 'Users', rows: [['Email'], ['a@x.io']] }]);
    const error = await readWorkbookInWorker(path, limits, () => {}).catch((thrown) => thrown);
    expect(error).toBeInstanceOf(WorkbookReadError);
    expect(error).toMatchObject({
      code: 'MISSING_COLUMNS',
      message: 'Missing required columns: userName, reference (sheet "Users", row 1).',
      details: { sheetName: 'Users', missingHeaders: ['userName', 'reference'] },
    });
  });

  it('turns running out of memory into RESOURCE_LIMIT', async () => {
    // About 64 MB of distinct shared strings, against a 32 MB heap (the worker starts in 16).
    const rows = Array.from({ length: 2000 }, (_, index) => [
      `user${index}@x.io`,
      `${index}`.padEnd(32_000, 'x'),
      `R${index}`,
    ]);
    const path = await workbook([{ name: 'Users', rows: [header, ...rows] }]);
    // Time enough that the heap, not the clock, ends the read on a loaded machine.
    const generous = { ...limits, maxInflatedBytes: 200 * 1024 * 1024, timeBudgetMs: 120_000 };
    const error = await readWorkbookInWorker(path, generous, () => {}, undefined, {
      maxOldGenerationSizeMb: 32,
    }).catch((thrown) => thrown);
    expect(error).toBeInstanceOf(WorkbookReadError);
    expect(error).toMatchObject({ code: 'RESOURCE_LIMIT' });
  });

  it('terminates the worker on abort and delivers no later events', async () => {
    const path = await usersWorkbook(2000);
    const controller = new AbortController();
    let eventsAfterAbort = 0;
    const reading = readWorkbookInWorker(
      path,
      { ...limits, maxRows: 10_000, batchSize: 100 },
      (event) => {
        if (controller.signal.aborted) eventsAfterAbort += 1;
        if (event.type === 'rows') controller.abort();
      },
      controller.signal,
    );
    await expect(reading).rejects.toMatchObject({ name: 'AbortError' });
    await sleep(300);
    expect(eventsAfterAbort).toBe(0);
  });

  it('starts its worker under tsx as a loader, as npm start runs the server', async () => {
    const path = await usersWorkbook(3);
    const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
    const script = `import('./server/import/reader/reader-thread.ts').then(({ readWorkbookInWorker }) =>
      readWorkbookInWorker(${JSON.stringify(path)}, ${JSON.stringify(limits)}, (event) => {
        if (event.type === 'rows') console.log(JSON.stringify(JSON.parse(event.batch.json).map(([, cells]) => cells[0])));
      }));`;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', '-e', script],
      { cwd: repoRoot },
    );
    expect(JSON.parse(stdout)).toEqual([
      'user0@example.com',
      'user1@example.com',
      'user2@example.com',
    ]);
  });
});

/**
 * Rewrites the declared uncompressed size of one entry in both its local header and its
 * central directory record, as a zip bomb would.
 */
function understateSize(zip: Buffer, fileName: string, size: number): Buffer {
  const patched = Buffer.from(zip);
  const name = Buffer.from(fileName);
  const records = [
    { signature: 0x04034b50, sizeOffset: 22, nameLengthOffset: 26, nameOffset: 30 },
    { signature: 0x02014b50, sizeOffset: 24, nameLengthOffset: 28, nameOffset: 46 },
  ];
  for (const record of records) {
    for (let offset = 0; offset < patched.length - record.nameOffset; offset++) {
      if (patched.readUInt32LE(offset) !== record.signature) continue;
      const nameLength = patched.readUInt16LE(offset + record.nameLengthOffset);
      const start = offset + record.nameOffset;
      if (!patched.subarray(start, start + nameLength).equals(name)) continue;
      patched.writeUInt32LE(size, offset + record.sizeOffset);
    }
  }
  return patched;
}
