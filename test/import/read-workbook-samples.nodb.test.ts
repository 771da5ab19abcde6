import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  type ReadEvent,
  type ReadLimits,
  readWorkbook,
  WorkbookReadError,
} from '../../server/import/reader/read-workbook.js';

/**
 * Real workbooks written by Excel, LibreOffice, Numbers, Tencent Office and others
 * (test/fixtures/xlsx-samples/README.md), read with the header requirement off: the first
 * non-blank row is the header. Each reads as other spreadsheet programs show it.
 */

const limits: ReadLimits = {
  requiredHeaders: [],
  maxRows: 10_000,
  maxColumns: 200,
  maxInflatedBytes: 50 * 1024 * 1024,
  maxEntries: 1000,
  timeBudgetMs: 20_000,
};

const sample = (name: string) =>
  fileURLToPath(new URL(`../fixtures/xlsx-samples/${name}`, import.meta.url));

async function read(name: string) {
  const events: ReadEvent[] = [];
  for await (const event of readWorkbook(sample(name), limits)) events.push(event);
  const header = events.find((event) => event.type === 'header');
  if (header?.type !== 'header') throw new Error(`${name}: no header event`);
  const rows = events.flatMap((event) => (event.type === 'rows' ? event.rows : []));
  return { header, rows };
}

describe('real workbooks', () => {
  it('leaves out phonetic runs (Excel, Japanese)', async () => {
    const { rows } = await read('phonetic-ruby-poi-51519.xlsx');
    expect(rows[0]?.cells[1]).toBe('豊田');
    expect((await read('phonetic-ruby-sheetjs.xlsx')).header.headers[0]).toBe('漢字');
  });

  it('reads SpreadsheetML with an x: prefix (Tencent Office) up to its repeated headers', async () => {
    const error = await read('namespace-prefix-tencent.xlsx').catch((thrown: unknown) => thrown);
    // Its header row is "w" thirteen times: read, and refused for that reason alone.
    expect(error).toBeInstanceOf(WorkbookReadError);
    expect(error).toMatchObject({ code: 'DUPLICATE_HEADERS', details: { header: 'w' } });
  });

  it('reads relationship ids under a non-standard prefix', async () => {
    const { header, rows } = await read('relationship-prefix.xlsx');
    expect(header.headers).toEqual(['a', 'b']);
    expect(rows.map((row) => row.cells)).toEqual([
      ['1', '3'],
      ['2', '4'],
    ]);
  });

  it('finds worksheet and shared-string parts through relationships, whatever their names', async () => {
    expect((await read('numbers-part-names.xlsx')).header).toMatchObject({
      sheetName: '主动技能',
      headers: ['编号'],
    });
    expect((await read('shared-strings-part-case.xlsx')).header.headers).toEqual(['Hello']);
    const { header, rows } = await read('sheet-part-without-number.xlsx');
    expect(header.headers.slice(0, 3)).toEqual(['Checked', 'Ion', 'Charge']);
    expect(rows[0]).toMatchObject({ rowNumber: 2 });
    expect(rows[0]?.cells.slice(0, 4)).toEqual(['true', '[M+Na]+1', '1', '644.24222']);
  });

  it('places cells without an r attribute by their order', async () => {
    const { header, rows } = await read('cells-without-r.xlsx');
    expect(header.headers).toEqual(['String Value 32']);
    expect(rows[0]).toEqual({ rowNumber: 7, cells: ['String Value 29'] });
  });

  it('reads an empty <v/> in a shared-string cell as blank', async () => {
    const { header, rows } = await read('empty-shared-string-value.xlsx');
    expect(header.headers[0]).toBe('Partner ID ( ID za DDV )');
    expect(rows[0]?.cells).toEqual([
      'SI33738548',
      '04656-2020',
      '2020-06-08',
      '1',
      null,
      '0630996510285',
      '2',
    ]);
  });

  it('reads dates in the 1904 system and t="d" cells', async () => {
    expect((await read('date1904-true.xlsx')).header.headers[0]).toBe('2021-01-01');
    const { header, rows } = await read('iso-date-cells.xlsx');
    expect(header.headers).toEqual(['2021-01-01']);
    expect(rows.slice(0, 2).map((row) => row.cells[0])).toEqual([
      '2021-01-01T10:10:10',
      '10:10:10',
    ]);
  });

  it('reads boolean formula results as true and false', async () => {
    const { header, rows } = await read('formula-booleans.xlsx');
    expect(header.headers[0]).toBe('true');
    expect(rows.map((row) => row.cells[0])).toEqual(['true', 'false', 'false']);
  });

  it('decodes _x000D_ escapes', async () => {
    expect((await read('escaped-characters.xlsx')).header.headers[0]).toBe('ABC\r\nDEF');
  });

  it('reads every run of inline rich text', async () => {
    expect((await read('inline-rich-text.xlsx')).header.headers[12]).toBe(
      'Last Run :               05-Jul-2023',
    );
  });
});
