import type { Stream } from 'node:stream';
import { finished } from 'node:stream/promises';
import ExcelJS from 'exceljs';

// Built-in labels (server/settings/fields.ts), matched the way import headers are matched.
const EMAIL_HEADER = 'email';
const REFERENCE_HEADER = 'reference';

const EMAIL_COLUMN_WIDTH = 32;
const MIN_COLUMN_WIDTH = 12;
// Labels may be 100 characters long; past this the column would push the others off screen.
const MAX_COLUMN_WIDTH = 50;

function normalizeHeader(header: string): string {
  return header.trim().toLowerCase();
}

function columnWidth(header: string): number {
  if (normalizeHeader(header) === EMAIL_HEADER) return EMAIL_COLUMN_WIDTH;
  return Math.min(MAX_COLUMN_WIDTH, Math.max(MIN_COLUMN_WIDTH, header.length + 4));
}

/**
 * Writes the import template: one "Users" sheet whose first row is `headers` (the company's
 * fields, built-ins first). Resolves once `output` has finished; rejects if it fails or closes
 * early (e.g. the client went away), so a caller is never left waiting.
 */
export async function writeImportTemplate(
  output: NodeJS.WritableStream,
  headers: string[],
): Promise<void> {
  const workbook = new ExcelJS.stream.xlsx.WorkbookWriter({
    // exceljs types this as a Stream class but only pipes its zip into it.
    stream: output as unknown as Stream,
    useStyles: true,
    useSharedStrings: false,
  });
  // The streaming writer emits a sheet's views when the sheet is created, so pass them here.
  const sheet = workbook.addWorksheet('Users', { views: [{ state: 'frozen', ySplit: 1 }] });
  // Column definitions are emitted before the first row, so set them before adding it. The
  // reference column is text so that Excel keeps leading zeros in what users type there.
  sheet.columns = headers.map((header) => ({
    width: columnWidth(header),
    style: normalizeHeader(header) === REFERENCE_HEADER ? { numFmt: '@' } : {},
  }));
  const headerRow = sheet.addRow(headers);
  headerRow.font = { bold: true };
  headerRow.commit();
  sheet.commit();
  await Promise.all([workbook.commit(), finished(output)]);
}
