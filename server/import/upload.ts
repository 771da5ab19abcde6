import { eq } from 'drizzle-orm';
import type { FileUpload } from 'graphql-upload-ts';
import { type Database, isEmbedded } from '../../drizzle/client.js';
import { uploadFilePieces, uploadFiles } from '../../drizzle/tables.js';
import { EmptyFileError, FileTooLargeError, NotAWorkbookError } from '../errors.js';

/**
 * Bytes of an upload stored a row (2 MB of hex on the wire). Each piece is one statement, and
 * PGlite runs one at a time: with 4 MB pieces, other requests waited up to 0.9 s during an
 * upload and the read's first progress came 0.66 s late; with 1 MB, 0.3 s at most.
 */
const UPLOAD_PIECE_BYTES = 1024 * 1024;
/**
 * Pieces being inserted at once on Postgres, on as many connections: the next piece is
 * received and sent while the last one is written. Storing a 66 MB file took 2.3-3.3 s a
 * piece at a time, 1.7-2.2 s with two. The embedded database runs one statement at a time:
 * there a second piece would only make other requests wait for two.
 */
const PIECES_IN_FLIGHT = 2;

const ZIP_MAGIC = Buffer.from([0x50, 0x4b, 0x03, 0x04]);
const OLE2_MAGIC = Buffer.from([0xd0, 0xcf, 0x11, 0xe0]);

/** An upload to store: whose, under what name, its bytes as they arrive, and the checks' limits. */
export interface UploadToStore {
  companyId: string;
  fileName: string;
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
  maxBytes: number;
  /** Bytes a stored piece; tests make it small. */
  pieceBytes?: number;
}

export interface StoredUpload {
  id: string;
  fileName: string;
  size: number;
}

/**
 * The file of a multipart request, as its name and its bytes as they arrive. graphql-upload-ts
 * deletes its temporary file when the response closes: store the bytes before responding.
 */
export async function receiveUpload(
  uploadPromise: Promise<FileUpload>,
  maxBytes: number,
): Promise<{ fileName: string; chunks: AsyncIterable<Buffer> }> {
  try {
    const upload = await uploadPromise;
    return {
      fileName: cleanFileName(upload.filename),
      chunks: chunksOf(upload, maxBytes),
    };
  } catch (error) {
    throw isUploadTooLarge(error) ? new FileTooLargeError(maxBytes) : error;
  }
}

/** Longest stored file name: names are shown in lists and mails, never trusted. */
const MAX_FILE_NAME_LENGTH = 255;

/**
 * The client's file name as it is shown back: control characters (CR and LF above all, which
 * would start a new line in a mail or a log) become spaces, and it is cut to 255 characters.
 */
export function cleanFileName(name: string | undefined): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point.
  const cleaned = (name ?? '').replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return cleaned.slice(0, MAX_FILE_NAME_LENGTH) || 'upload.xlsx';
}

async function* chunksOf(upload: FileUpload, maxBytes: number): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of upload.createReadStream()) yield chunk as Buffer;
  } catch (error) {
    // graphql-upload-ts fails the stream itself when the file passes maxFileSize.
    throw isUploadTooLarge(error) ? new FileTooLargeError(maxBytes) : error;
  }
}

function isUploadTooLarge(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === 'FILE_TOO_LARGE' || (error as { status?: unknown }).status === 413;
}

/**
 * Stores an upload as it streams in, `pieceBytes` a row, so that memory does not grow with the
 * file. The first piece must start like an .xlsx (a zip); the whole must be at most
 * `maxBytes` and not empty. Whatever fails (the checks, the client, the database), nothing of
 * the upload is left stored.
 */
export async function storeUpload(db: Database, input: UploadToStore): Promise<StoredUpload> {
  const pieceBytes = input.pieceBytes ?? UPLOAD_PIECE_BYTES;
  const [file] = await db
    .insert(uploadFiles)
    .values({ companyId: input.companyId, fileName: input.fileName, size: 0 })
    .returning({ id: uploadFiles.id });
  if (!file) throw new Error('upload insert returned nothing');
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let piece = 0;
  let size = 0;
  const inserting: Promise<void>[] = [];
  const storePiece = async (content: Buffer) => {
    if (piece === 0) checkWorkbookStart(content);
    const insert = db
      .insert(uploadFilePieces)
      .values({ uploadFileId: file.id, piece, content })
      .then(() => undefined);
    // Its failure is seen where it is awaited, below or in the catch.
    insert.catch(() => {});
    inserting.push(insert);
    piece += 1;
    if (inserting.length >= (isEmbedded(db) ? 1 : PIECES_IN_FLIGHT)) await inserting.shift();
  };
  try {
    for await (const chunk of input.chunks) {
      size += chunk.length;
      if (size > input.maxBytes) throw new FileTooLargeError(input.maxBytes);
      pending.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
      pendingBytes += chunk.length;
      while (pendingBytes >= pieceBytes) {
        const joined = Buffer.concat(pending, pendingBytes);
        await storePiece(joined.subarray(0, pieceBytes));
        pending = [joined.subarray(pieceBytes)];
        pendingBytes -= pieceBytes;
      }
    }
    if (size === 0) throw new EmptyFileError();
    if (pendingBytes > 0) await storePiece(Buffer.concat(pending, pendingBytes));
    await Promise.all(inserting);
    await db.update(uploadFiles).set({ size }).where(eq(uploadFiles.id, file.id));
    return { id: file.id, fileName: input.fileName, size };
  } catch (error) {
    // Not while a piece is still being inserted: it would fail on the deleted file.
    await Promise.allSettled(inserting);
    await deleteUpload(db, file.id);
    throw error;
  }
}

/** Deletes a stored upload, its pieces with it. */
export async function deleteUpload(db: Database, uploadFileId: string): Promise<void> {
  await db.delete(uploadFiles).where(eq(uploadFiles.id, uploadFileId));
}

/** The check on an upload's first bytes: an .xlsx is a zip; an .xls or encrypted file is not. */
function checkWorkbookStart(content: Buffer): void {
  const start = content.subarray(0, 4);
  if (start.equals(OLE2_MAGIC)) {
    throw new NotAWorkbookError(
      'The file is an old .xls workbook or a password-protected one. Save it from Excel as .xlsx without a password and upload it again.',
    );
  }
  if (!start.equals(ZIP_MAGIC)) throw new NotAWorkbookError();
}
