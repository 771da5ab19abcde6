import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
import yauzl, { type Entry, type Options, type ZipFile } from 'yauzl';
import {
  corruptFileError,
  SAVE_AS_XLSX,
  tooLargeInflated,
  tooManyEntries,
  WorkbookReadError,
} from './errors.js';
import type { ReadClock } from './read-clock.js';

/**
 * The zip under a workbook, through yauzl: its central directory is checked (entry count,
 * declared sizes, encryption) before anything is inflated, and each part inflates through a
 * budget while yauzl checks it against its declared size, so a zip bomb stops while inflating.
 */

const ZIP_SIGNATURE = Buffer.from([0x50, 0x4b, 0x03, 0x04]);
const OLE2_SIGNATURE = Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]);
/** Excel stores an encrypted .xlsx as an OLE2 file with a stream of this (UTF-16) name. */
const ENCRYPTED_PACKAGE_NAME = Buffer.from('EncryptedPackage', 'utf16le');
const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
/** The end record (22 bytes) and the longest comment it can declare. */
const END_RECORD_SEARCH = 22 + 0xffff;

const ZIP_OPTIONS: Options = {
  lazyEntries: true,
  autoClose: false,
  validateEntrySizes: true,
  // Backslashes in entry names (some Windows tools write them) read as slashes.
  strictFileNames: false,
};

export async function checkFileType(filePath: string): Promise<void> {
  const file = await open(filePath);
  const start = Buffer.alloc(OLE2_SIGNATURE.length);
  try {
    await file.read(start, 0, start.length, 0);
  } finally {
    await file.close();
  }
  if (start.subarray(0, ZIP_SIGNATURE.length).equals(ZIP_SIGNATURE)) return;
  if (start.equals(OLE2_SIGNATURE)) {
    if (await fileContains(filePath, ENCRYPTED_PACKAGE_NAME)) {
      throw new WorkbookReadError(
        'ENCRYPTED',
        'The workbook is protected with a password. Remove the password in Excel (File > Info > Protect Workbook > Encrypt with Password), save, and upload the file again.',
      );
    }
    throw new WorkbookReadError(
      'NOT_A_WORKBOOK',
      `The file is in the old Excel 97-2003 format (.xls) or another Office format, not .xlsx. ${SAVE_AS_XLSX}`,
    );
  }
  throw new WorkbookReadError(
    'NOT_A_WORKBOOK',
    `The file is not an Excel workbook (.xlsx). ${SAVE_AS_XLSX}`,
  );
}

async function fileContains(filePath: string, needle: Buffer): Promise<boolean> {
  // Keep the end of the previous chunk so a match split across two chunks is found.
  let carry = Buffer.alloc(0);
  for await (const chunk of createReadStream(filePath)) {
    const window = Buffer.concat([carry, chunk as Buffer]);
    if (window.includes(needle)) return true;
    carry = window.subarray(window.length - needle.length + 1);
  }
  return false;
}

/**
 * Opens the zip. yauzl refuses a zip whose end record declares a comment of another length
 * than the bytes after it (bytes appended to the file, or a comment cut short); Excel and
 * other readers take the record as it is, so the zip is then read as if it ended where its
 * record says.
 */
export async function openZip(filePath: string): Promise<ZipFile> {
  try {
    return await yauzl.openPromise(filePath, ZIP_OPTIONS);
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('Invalid comment length'))
      throw error;
  }
  const { size } = await stat(filePath);
  const end = await findEndRecord(filePath, size);
  if (end === null) throw corruptFileError('the zip has no end of central directory record');
  return new Promise((resolve, reject) => {
    yauzl.fromRandomAccessReader(
      new ZeroPaddedFileReader(filePath, size),
      end.offset + 22 + end.commentLength,
      ZIP_OPTIONS,
      (error, zip) => (error ? reject(error) : resolve(zip)),
    );
  });
}

async function findEndRecord(
  filePath: string,
  size: number,
): Promise<{ offset: number; commentLength: number } | null> {
  const length = Math.min(size, END_RECORD_SEARCH);
  const tail = Buffer.alloc(length);
  const file = await open(filePath);
  try {
    await file.read(tail, 0, length, size - length);
  } finally {
    await file.close();
  }
  for (let at = length - 22; at >= 0; at -= 1) {
    if (tail.readUInt32LE(at) === END_OF_CENTRAL_DIRECTORY) {
      return { offset: size - length + at, commentLength: tail.readUInt16LE(at + 20) };
    }
  }
  return null;
}

/** The file, read as if zeros followed its end (a comment declared longer than it is). */
class ZeroPaddedFileReader extends yauzl.RandomAccessReader {
  constructor(
    private readonly filePath: string,
    private readonly size: number,
  ) {
    super();
  }

  override _readStreamForRange(start: number, end: number): Readable {
    const output = new PassThrough();
    const fileEnd = Math.min(end, this.size);
    const padding = Buffer.alloc(Math.max(0, end - Math.max(start, this.size)));
    if (start >= fileEnd) {
      output.end(padding);
      return output;
    }
    const input = createReadStream(this.filePath, { start, end: fileEnd - 1 });
    input.on('error', (error) => output.destroy(error));
    input.on('end', () => output.end(padding));
    input.pipe(output, { end: false });
    return output;
  }
}

/**
 * The zip's entries by part name in lower case (OPC part names compare case-insensitively),
 * checked before anything is inflated: the number of entries, unique names, no encryption,
 * declared sizes within the cap.
 */
export async function listEntries(
  zip: ZipFile,
  limits: { maxEntries: number; maxInflatedBytes: number },
  clock: ReadClock,
): Promise<Map<string, Entry>> {
  if (zip.entryCount > limits.maxEntries) throw tooManyEntries(limits.maxEntries);
  const entries = new Map<string, Entry>();
  let declaredBytes = 0;
  for await (const entry of zip.eachEntry()) {
    clock.check();
    const name = partKey(entry.fileName);
    if (entries.has(name)) {
      throw corruptFileError(`the zip holds "${entry.fileName}" twice`);
    }
    if (entry.isEncrypted()) {
      throw new WorkbookReadError(
        'ENCRYPTED',
        'The file is encrypted. Save the workbook without encryption and upload it again.',
      );
    }
    entries.set(name, entry);
    declaredBytes += entry.uncompressedSize;
    if (declaredBytes > limits.maxInflatedBytes) throw tooLargeInflated(limits.maxInflatedBytes);
  }
  return entries;
}

/** The key of a part name in listEntries's map. */
export function partKey(name: string): string {
  return name.replace(/^\/+/, '').toLowerCase();
}

/** The bytes a read may inflate, counted as they come out of yauzl. */
export class InflateBudget {
  /** Bytes inflated so far (progress). */
  inflatedBytes = 0;

  constructor(private readonly maxInflatedBytes: number) {}

  count(bytes: number): void {
    this.inflatedBytes += bytes;
    if (this.inflatedBytes > this.maxInflatedBytes) throw tooLargeInflated(this.maxInflatedBytes);
  }
}

/**
 * A part as yauzl inflates it, counted against the budget. Reading it to its end checks it
 * against its declared size (yauzl fails a part that inflates to more or less); a caller that
 * stops early ends the inflation.
 */
export async function* readPart(
  zip: ZipFile,
  entry: Entry,
  budget: InflateBudget,
): AsyncGenerator<Buffer> {
  const stream = await zip.openReadStreamPromise(entry);
  try {
    for await (const chunk of stream) {
      budget.count((chunk as Buffer).length);
      yield chunk as Buffer;
    }
  } finally {
    stream.destroy();
  }
}
