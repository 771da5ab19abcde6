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

const MAIN_NS = 'http://schemas.openxmlformats.org/spreadsheetml/2006/main';
const REL_NS = 'http://schemas.openxmlformats.org/officeDocument/2006/relationships';
const PACKAGE_REL_NS = 'http://schemas.openxmlformats.org/package/2006/relationships';

/** A worksheet for handMadeParts: its `<sheetData>` content, written by hand. */
export interface HandMadeSheet {
  name: string;
  sheetData: string;
  state?: 'visible' | 'hidden';
}

/**
 * The parts of a minimal workbook, written by hand for XML that exceljs cannot write
 * (prefixes, cells without `r`, phonetic runs, `t="d"`…). Tests change the parts they need
 * and write them with writeParts.
 */
export function handMadeParts(options: {
  sheets: HandMadeSheet[];
  /** The `<si>` elements of the shared strings, if any. */
  sharedStrings?: string[];
  /** Custom number formats by id, and the cell styles (`s`) as number format ids. */
  numFmts?: Record<number, string>;
  cellStyles?: number[];
  workbookPr?: string;
  activeTab?: number;
}): Record<string, string> {
  const { sheets } = options;
  const parts: Record<string, string> = {
    '[Content_Types].xml': `<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/></Types>`,
    '_rels/.rels': `<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="${PACKAGE_REL_NS}"><Relationship Id="rId1" Type="${REL_NS}/officeDocument" Target="xl/workbook.xml"/></Relationships>`,
    'xl/workbook.xml': `<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="${MAIN_NS}" xmlns:r="${REL_NS}">${options.workbookPr ?? ''}<bookViews><workbookView activeTab="${options.activeTab ?? 0}"/></bookViews><sheets>${sheets
      .map(
        (sheet, index) =>
          `<sheet name="${sheet.name}" sheetId="${index + 1}"${sheet.state ? ` state="${sheet.state}"` : ''} r:id="rId${index + 1}"/>`,
      )
      .join('')}</sheets></workbook>`,
    'xl/_rels/workbook.xml.rels': `<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="${PACKAGE_REL_NS}">${sheets
      .map(
        (_, index) =>
          `<Relationship Id="rId${index + 1}" Type="${REL_NS}/worksheet" Target="worksheets/sheet${index + 1}.xml"/>`,
      )
      .join(
        '',
      )}<Relationship Id="rIdStyles" Type="${REL_NS}/styles" Target="styles.xml"/><Relationship Id="rIdStrings" Type="${REL_NS}/sharedStrings" Target="sharedStrings.xml"/></Relationships>`,
    'xl/styles.xml': `<?xml version="1.0" encoding="UTF-8"?><styleSheet xmlns="${MAIN_NS}"><numFmts>${Object.entries(
      options.numFmts ?? {},
    )
      .map(([id, code]) => `<numFmt numFmtId="${id}" formatCode="${escapeXml(code)}"/>`)
      .join('')}</numFmts><cellXfs>${[0, ...(options.cellStyles ?? [])]
      .map((id) => `<xf numFmtId="${id}" applyNumberFormat="1"/>`)
      .join('')}</cellXfs></styleSheet>`,
    'xl/sharedStrings.xml': `<?xml version="1.0" encoding="UTF-8"?><sst xmlns="${MAIN_NS}">${(options.sharedStrings ?? []).join('')}</sst>`,
  };
  for (const [index, sheet] of sheets.entries()) {
    parts[`xl/worksheets/sheet${index + 1}.xml`] =
      `<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="${MAIN_NS}" xmlns:r="${REL_NS}"><sheetData>${sheet.sheetData}</sheetData></worksheet>`;
  }
  return parts;
}

export function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

/** `<row>` of inline-string cells, with `r` attributes, for handMadeParts. */
export function inlineRow(rowNumber: number, texts: string[]): string {
  const cells = texts.map(
    (text, index) =>
      `<c r="${String.fromCharCode(65 + index)}${rowNumber}" t="inlineStr"><is><t>${escapeXml(text)}</t></is></c>`,
  );
  return `<row r="${rowNumber}">${cells.join('')}</row>`;
}

export async function writeParts(path: string, parts: Record<string, string>): Promise<void> {
  const zip = new JSZip();
  for (const [name, content] of Object.entries(parts)) zip.file(name, content);
  await writeFile(path, await zip.generateAsync({ type: 'nodebuffer', compression: 'DEFLATE' }));
}
