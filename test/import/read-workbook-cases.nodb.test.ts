import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ReadEvent,
  type ReadLimits,
  readWorkbook,
  WorkbookReadError,
} from '../../server/import/reader/read-workbook.js';
import { readWorkbookInWorker } from '../../server/import/reader/reader-thread.js';
import { handMadeParts, inlineRow, writeParts } from '../support/workbooks.js';

/**
 * The cases of issue 31, each in a workbook written by hand (the XML other programs write and
 * exceljs cannot): every one reads as the admin's spreadsheet shows it, or fails with a code
 * that names the real cause.
 */

const limits: ReadLimits = {
  requiredHeaders: ['Email', 'userName', 'reference'],
  maxRows: 1000,
  maxColumns: 50,
  maxInflatedBytes: 50 * 1024 * 1024,
  maxEntries: 1000,
  timeBudgetMs: 20_000,
};
const HEADER = inlineRow(1, ['Email', 'userName', 'reference', 'Value']);

let directory: string;
let fileCount = 0;
beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'muster-read-cases-'));
});
afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

async function written(parts: Record<string, string>): Promise<string> {
  fileCount += 1;
  const path = join(directory, `case-${fileCount}.xlsx`);
  await writeParts(path, parts);
  return path;
}

async function readAll(path: string, options: Partial<ReadLimits> = {}) {
  const events: ReadEvent[] = [];
  for await (const event of readWorkbook(path, { ...limits, ...options })) events.push(event);
  const header = events.find((event) => event.type === 'header');
  const rows = events.flatMap((event) => (event.type === 'rows' ? event.rows : []));
  return { header, rows };
}

async function readFailure(path: string, options: Partial<ReadLimits> = {}) {
  const error = await readAll(path, options).then(
    () => null,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(WorkbookReadError);
  return error as WorkbookReadError;
}

/** A user row whose fourth cell (Value, column D) is `cell`, written as given. */
const userRow = (rowNumber: number, cell: string) =>
  `<row r="${rowNumber}"><c r="A${rowNumber}" t="inlineStr"><is><t>u${rowNumber}@example.com</t></is></c><c r="B${rowNumber}" t="inlineStr"><is><t>User ${rowNumber}</t></is></c><c r="C${rowNumber}" t="inlineStr"><is><t>R${rowNumber}</t></is></c>${cell.replaceAll('@', `D${rowNumber}`)}</row>`;

/** The Value of each row, read from cells written as given (`@` is the cell's reference). */
async function values(
  cells: string[],
  options: Omit<Parameters<typeof handMadeParts>[0], 'sheets'> = {},
): Promise<(string | null)[]> {
  const sheetData = HEADER + cells.map((cell, index) => userRow(index + 2, cell)).join('');
  const path = await written(handMadeParts({ ...options, sheets: [{ name: 'Users', sheetData }] }));
  const { rows } = await readAll(path);
  return rows.map((row) => row.cells[3] ?? null);
}

describe('the XML other programs write', () => {
  it('reads SpreadsheetML with a namespace prefix on every element', async () => {
    const parts = handMadeParts({
      sheets: [{ name: 'Users', sheetData: `${HEADER}${userRow(2, '<c r="@"><v>7</v></c>')}` }],
      sharedStrings: ['<si><t>unused</t></si>'],
    });
    const prefixed = (xml: string) =>
      xml.replace(/<(\/?)(?!\?)([A-Za-z]+)([ >/])/g, '<$1x:$2$3').replace(/xmlns="/, 'xmlns:x="');
    for (const name of ['xl/workbook.xml', 'xl/worksheets/sheet1.xml', 'xl/sharedStrings.xml']) {
      parts[name] = prefixed(parts[name] ?? '');
    }
    expect(parts['xl/worksheets/sheet1.xml']).toContain('<x:row r="2">');
    const { rows } = await readAll(await written(parts));
    expect(rows).toEqual([{ rowNumber: 2, cells: ['u2@example.com', 'User 2', 'R2', '7'] }]);
  });

  it('reads relationship ids and relationships parts under any prefix', async () => {
    const parts = handMadeParts({
      sheets: [{ name: 'Users', sheetData: HEADER + userRow(2, '') }],
    });
    parts['xl/workbook.xml'] = (parts['xl/workbook.xml'] ?? '')
      .replace('xmlns:r=', 'xmlns:relationships=')
      .replace(' r:id=', ' relationships:id=');
    parts['xl/_rels/workbook.xml.rels'] = (parts['xl/_rels/workbook.xml.rels'] ?? '')
      .replace(/<(\/?)Relationship/g, '<$1ns0:Relationship')
      .replace('xmlns=', 'xmlns:ns0=');
    const { rows } = await readAll(await written(parts));
    expect(rows).toEqual([{ rowNumber: 2, cells: ['u2@example.com', 'User 2', 'R2', null] }]);
  });

  it('finds worksheets and shared strings through relationships, whatever their names and case', async () => {
    const parts = handMadeParts({
      sheets: [
        { name: 'Users', sheetData: `${HEADER}${userRow(2, '<c r="@" t="s"><v>0</v></c>')}` },
      ],
      sharedStrings: ['<si><t>Sales</t></si>'],
    });
    const rename = (from: string, to: string) => {
      parts[to] = parts[from] ?? '';
      delete parts[from];
    };
    rename('xl/worksheets/sheet1.xml', 'xl/worksheets/sheetDave.xml');
    rename('xl/sharedStrings.xml', 'xl/SharedStrings.xml');
    parts['xl/_rels/workbook.xml.rels'] = (parts['xl/_rels/workbook.xml.rels'] ?? '').replace(
      'worksheets/sheet1.xml',
      'worksheets/sheetDave.xml',
    );
    const { rows } = await readAll(await written(parts));
    expect(rows).toEqual([{ rowNumber: 2, cells: ['u2@example.com', 'User 2', 'R2', 'Sales'] }]);
  });

  it('places rows and cells without an r attribute after the ones before them', async () => {
    const row = (texts: string[]) =>
      `<row>${texts.map((text) => `<c t="inlineStr"><is><t>${text}</t></is></c>`).join('')}</row>`;
    const sheetData = `${row(['Email', 'userName', 'reference'])}${row(['a@x.io', 'A', 'R1'])}<row r="5"><c t="inlineStr"><is><t>b@x.io</t></is></c><c r="C5" t="inlineStr"><is><t>R5</t></is></c></row>${row(['c@x.io', 'C', 'R6'])}`;
    const path = await written(handMadeParts({ sheets: [{ name: 'Users', sheetData }] }));
    const { rows } = await readAll(path);
    expect(rows).toEqual([
      { rowNumber: 2, cells: ['a@x.io', 'A', 'R1'] },
      { rowNumber: 5, cells: ['b@x.io', null, 'R5'] },
      { rowNumber: 6, cells: ['c@x.io', 'C', 'R6'] },
    ]);
  });

  it('reads a shared-string cell with an empty <v/> as blank', async () => {
    expect(
      await values(['<c r="@" t="s"><v/></c>', '<c r="@" t="s"><v>0</v></c>'], {
        sharedStrings: ['<si><t>kept</t></si>'],
      }),
    ).toEqual([null, 'kept']);
  });

  it('reads a zip whose end record declares a comment of the wrong length', async () => {
    const path = await written(
      handMadeParts({ sheets: [{ name: 'Users', sheetData: HEADER + userRow(2, '') }] }),
    );
    const bytes = await readFile(path);
    // Bytes appended after the end record, which declares no comment.
    await writeFile(path, Buffer.concat([bytes, Buffer.from('trailing')]));
    expect((await readAll(path)).rows).toHaveLength(1);
    // A comment declared longer than the bytes left.
    const cut = Buffer.from(bytes);
    cut.writeUInt16LE(40, cut.length - 2);
    await writeFile(path, cut);
    expect((await readAll(path)).rows).toHaveLength(1);
  });
});

describe('text', () => {
  it('leaves out phonetic runs, in shared strings and inline strings', async () => {
    expect(
      await values(
        [
          '<c r="@" t="s"><v>0</v></c>',
          '<c r="@" t="s"><v>1</v></c>',
          '<c r="@" t="inlineStr"><is><t>批次号</t><rPh sb="0" eb="3"><t>hao</t></rPh></is></c>',
        ],
        {
          sharedStrings: [
            '<si><t>豊田</t><rPh sb="0" eb="2"><t>トヨタ</t></rPh><phoneticPr fontId="1"/></si>',
            '<si><r><t>漢</t></r><r><t>字</t></r><rPh sb="0" eb="2"><t>カンジ</t></rPh></si>',
          ],
        },
      ),
    ).toEqual(['豊田', '漢字', '批次号']);
  });

  it('reads every run of inline rich text, and inline text in CDATA', async () => {
    expect(
      await values([
        '<c r="@" t="inlineStr"><is><r><t xml:space="preserve">Last Run : </t></r><r><rPr><b/></rPr><t>05-Jul-2023</t></r></is></c>',
        '<c r="@" t="inlineStr"><is><t><![CDATA[a <b> & c]]></t></is></c>',
      ]),
    ).toEqual(['Last Run : 05-Jul-2023', 'a <b> & c']);
  });

  it('decodes _xHHHH_ escapes', async () => {
    expect(
      await values(['<c r="@" t="s"><v>0</v></c>', '<c r="@" t="s"><v>1</v></c>'], {
        sharedStrings: ['<si><t>ABC_x000D_&#10;DEF</t></si>', '<si><t>a_x005F_x0041_b</t></si>'],
      }),
    ).toEqual(['ABC\r\nDEF', 'a_x0041_b']);
  });

  it('makes text longer than a cell can hold a row problem', async () => {
    const long = 'x'.repeat(32_768);
    const sheetData = `${HEADER}${userRow(2, `<c r="@" t="inlineStr"><is><t>${long}</t></is></c>`)}${userRow(3, `<c r="@" t="inlineStr"><is><t>${long.slice(1)}</t></is></c>`)}`;
    const { rows } = await readAll(
      await written(handMadeParts({ sheets: [{ name: 'Users', sheetData }] })),
    );
    expect(rows[0]?.cells[3]).toBeNull();
    expect(rows[0]?.problems).toEqual([
      expect.objectContaining({ columnIndex: 3, code: 'CELL_TOO_LONG' }),
    ]);
    expect(rows[1]?.cells[3]).toHaveLength(32_767);
    expect(rows[1]?.problems).toBeUndefined();
  });
});

describe('numbers, dates and times', () => {
  it('reads numbers as General shows them, at most 15 significant digits', async () => {
    expect(
      await values([
        '<c r="@"><v>0.049999999999999975</v></c>',
        '<c r="@"><v>1.0000000000000002</v></c>',
        '<c r="@"><v>4915112345678</v></c>',
      ]),
    ).toEqual(['0.05', '1', '4915112345678']);
  });

  it('reads numbers under zero-padded or text-like formats as displayed', async () => {
    expect(
      await values(
        [
          '<c r="@" s="1"><v>123</v></c>',
          '<c r="@" s="2"><v>42</v></c>',
          '<c r="@" s="3"><v>123456789</v></c>',
          '<c r="@" s="4"><v>1234.5</v></c>',
        ],
        {
          numFmts: { 164: '00000', 165: '"EMP"0000', 166: '000-00-0000', 167: '#,##0.00' },
          cellStyles: [164, 165, 166, 167],
        },
      ),
    ).toEqual(['00123', 'EMP0042', '123-45-6789', '1234.5']);
  });

  it('reads t="d" cells as ISO dates, date-times and times', async () => {
    expect(
      await values([
        '<c r="@" t="d"><v>2021-01-01</v></c>',
        '<c r="@" t="d"><v>2021-01-01T10:10:10</v></c>',
        '<c r="@" t="d"><v>2021-01-01T00:00:00</v></c>',
        '<c r="@" t="d"><v>10:10:10</v></c>',
      ]),
    ).toEqual(['2021-01-01', '2021-01-01T10:10:10', '2021-01-01', '10:10:10']);
  });

  it('counts dates from 1904 when the workbook says date1904="true" or "1"', async () => {
    for (const flag of ['true', '1']) {
      expect(
        await values(['<c r="@" s="1"><v>42735</v></c>'], {
          cellStyles: [14],
          workbookPr: `<workbookPr date1904="${flag}"/>`,
        }),
      ).toEqual(['2021-01-01']);
    }
  });

  it('reads dates before 1900-03-01 as Excel shows them', async () => {
    expect(
      await values(
        [
          '<c r="@" s="1"><v>1</v></c>',
          '<c r="@" s="1"><v>59</v></c>',
          '<c r="@" s="1"><v>61</v></c>',
        ],
        { numFmts: { 164: 'yyyy-mm-dd' }, cellStyles: [164] },
      ),
    ).toEqual(['1900-01-01', '1900-02-28', '1900-03-01']);
  });

  it('reads times, durations and date-times without a zone', async () => {
    expect(
      await values(
        [
          '<c r="@" s="1"><v>0.375</v></c>',
          '<c r="@" s="2"><v>0.37534722222222</v></c>',
          '<c r="@" s="3"><v>1.5208333333333333</v></c>',
          '<c r="@" s="4"><v>45306.4375</v></c>',
          '<c r="@" s="5"><v>45306.43755787037</v></c>',
        ],
        {
          numFmts: { 164: 'hh:mm', 165: '[h]:mm', 166: 'yyyy-mm-dd hh:mm:ss' },
          cellStyles: [20, 21, 165, 22, 166],
        },
      ),
    ).toEqual(['09:00', '09:00:30', '36:30', '2024-01-15T10:30', '2024-01-15T10:30:05']);
  });
});

describe('formulas and errors', () => {
  it("reads a formula's boolean result as true or false", async () => {
    expect(
      await values([
        '<c r="@" t="b"><f>1=1</f><v>1</v></c>',
        '<c r="@" t="b"><f>1=2</f><v>0</v></c>',
        '<c r="@" t="b"><v>false</v></c>',
        '<c r="@" t="str"><f>"a"&amp;"b"</f><v>ab</v></c>',
      ]),
    ).toEqual(['true', 'false', 'false', 'ab']);
  });

  it('makes error values, of formulas or typed, row problems with their own code', async () => {
    const sheetData = `${HEADER}${userRow(2, '<c r="@" t="e"><f>NA()</f><v>#N/A</v></c>')}${userRow(3, '<c r="@" t="e"><v>#DIV/0!</v></c>')}`;
    const { rows } = await readAll(
      await written(handMadeParts({ sheets: [{ name: 'Users', sheetData }] })),
    );
    expect(rows.map((row) => [row.cells[3], row.problems])).toEqual([
      [
        null,
        [expect.objectContaining({ columnIndex: 3, code: 'CELL_ERROR_VALUE', value: '#N/A' })],
      ],
      [
        null,
        [expect.objectContaining({ columnIndex: 3, code: 'CELL_ERROR_VALUE', value: '#DIV/0!' })],
      ],
    ]);
  });

  it('makes a formula without a cached value a row problem of its own', async () => {
    const sheetData = `${HEADER}${userRow(2, '<c r="@"><f>A2&amp;B2</f></c>')}`;
    const { rows } = await readAll(
      await written(handMadeParts({ sheets: [{ name: 'Users', sheetData }] })),
    );
    expect(rows[0]?.problems).toEqual([
      expect.objectContaining({ columnIndex: 3, code: 'FORMULA_WITHOUT_VALUE', value: '=A2&B2' }),
    ]);
    expect(rows[0]?.problems?.[0]?.message).toContain('Value');
  });
});

describe('the header row and the sheet', () => {
  const users = (rowNumber: number) =>
    HEADER.replaceAll('1"', `${rowNumber}"`) + userRow(rowNumber + 1, '');

  it('finds the header row below title lines', async () => {
    const sheetData = `${inlineRow(1, ['Users export'])}${inlineRow(2, ['as of 2024-01-15'])}${users(4).replace('<row r="4">', '<row r="4">')}`;
    const path = await written(handMadeParts({ sheets: [{ name: 'Users', sheetData }] }));
    const { header, rows } = await readAll(path);
    expect(header).toMatchObject({ headerRowNumber: 4 });
    expect(rows.map((row) => row.rowNumber)).toEqual([5]);
  });

  it('reads the active tab when two sheets have the headers, and lists every sheet', async () => {
    const path = await written(
      handMadeParts({
        sheets: [
          { name: 'Instructions', sheetData: inlineRow(1, ['Fill in the users']) },
          { name: 'Old users', sheetData: users(1) },
          { name: 'New users', sheetData: users(1) },
        ],
        activeTab: 2,
      }),
    );
    const { header } = await readAll(path);
    expect(header).toMatchObject({
      sheetName: 'New users',
      sheets: [
        { name: 'Instructions', hasRequiredHeaders: false, read: false },
        { name: 'Old users', hasRequiredHeaders: true, read: false },
        { name: 'New users', hasRequiredHeaders: true, read: true },
      ],
    });
  });

  it('reads the sheet asked for, and names the sheets when there is none by that name', async () => {
    const path = await written(
      handMadeParts({
        sheets: [
          { name: 'Old users', sheetData: users(1) },
          { name: 'New users', sheetData: users(1) },
        ],
      }),
    );
    expect((await readAll(path, { sheetName: 'Old users' })).header).toMatchObject({
      sheetName: 'Old users',
    });
    expect((await readAll(path)).header).toMatchObject({ sheetName: 'Old users' });
    expect((await readAll(path, { sheetName: 'New users' })).header).toMatchObject({
      sheetName: 'New users',
    });
    const error = await readFailure(path, { sheetName: 'Staff' });
    expect(error.code).toBe('SHEET_NOT_FOUND');
    expect(error.details).toMatchObject({ sheetNames: ['Old users', 'New users'] });
  });
});

describe('staged bytes', () => {
  it('fails with TOO_LARGE_STAGED when the rows hold more than maxStagedBytes', async () => {
    // One shared string of 30,000 characters in every row: a small file, much to stage.
    const long = 'd'.repeat(30_000);
    const sheetData =
      HEADER +
      Array.from({ length: 200 }, (_, index) =>
        userRow(index + 2, '<c r="@" t="s"><v>0</v></c>'),
      ).join('');
    const path = await written(
      handMadeParts({
        sheets: [{ name: 'Users', sheetData }],
        sharedStrings: [`<si><t>${long}</t></si>`],
      }),
    );
    const staged = await readWorkbookInWorker(
      path,
      { ...limits, maxStagedBytes: 1024 * 1024, batchSize: 20 },
      () => {},
    ).catch((error: unknown) => error);
    expect(staged).toBeInstanceOf(WorkbookReadError);
    expect(staged).toMatchObject({ code: 'TOO_LARGE_STAGED' });
    await expect(
      readWorkbookInWorker(path, { ...limits, maxStagedBytes: 10 * 1024 * 1024 }, () => {}),
    ).resolves.toBeUndefined();
  });
});
