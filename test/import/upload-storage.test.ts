import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eq, inArray } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseHandle } from '../../drizzle/client.js';
import { importSessions, uploadFilePieces, uploadFiles } from '../../drizzle/tables.js';
import { EmptyFileError, FileTooLargeError, NotAWorkbookError } from '../../server/errors.js';
import { copyUploadToFile } from '../../server/import/read-upload.js';
import { createImportSession } from '../../server/import/sessions.js';
import { storeUpload } from '../../server/import/upload.js';
import { createCompany } from '../../server/infrastructure/auth.js';
import { createTestDatabase } from '../support/database.js';

let database: DatabaseHandle;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database.close();
});

/** `content` cut in chunks of `size` bytes, as a request stream delivers it. */
async function* chunked(content: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < content.length; offset += size) {
    yield content.subarray(offset, offset + size);
  }
}

/** What the company has stored: upload files, their pieces and sessions. */
async function storedFor(companyId: string) {
  const files = await database.db
    .select({ id: uploadFiles.id })
    .from(uploadFiles)
    .where(eq(uploadFiles.companyId, companyId));
  const pieces =
    files.length === 0
      ? []
      : await database.db
          .select({ piece: uploadFilePieces.piece })
          .from(uploadFilePieces)
          .where(
            inArray(
              uploadFilePieces.uploadFileId,
              files.map((file) => file.id),
            ),
          );
  const sessions = await database.db
    .select({ id: importSessions.id })
    .from(importSessions)
    .where(eq(importSessions.companyId, companyId));
  return { files: files.length, pieces: pieces.length, sessions: sessions.length };
}

describe('storing an upload in pieces', () => {
  it('stores it as it streams, in pieces of a fixed size, and copies it back byte for byte', async () => {
    const { companyId } = await createCompany(database.db, 'Pieces');
    // A zip's first bytes, then noise: 10,001 bytes arriving in chunks of 777.
    const content = Buffer.concat([Buffer.from('PK\x03\x04'), randomBytes(9_997)]);
    const session = await createImportSession(database.db, {
      companyId,
      fileName: 'p.xlsx',
      chunks: chunked(content, 777),
      maxBytes: 20_000,
      pieceBytes: 1000,
      comment: null,
    });
    expect(session.fileSize).toBe(10_001);
    const pieces = await database.db
      .select({ piece: uploadFilePieces.piece, content: uploadFilePieces.content })
      .from(uploadFilePieces)
      .where(eq(uploadFilePieces.uploadFileId, session.uploadFileId ?? ''))
      .orderBy(uploadFilePieces.piece);
    expect(pieces.map((piece) => [piece.piece, piece.content.length])).toEqual([
      ...Array.from({ length: 10 }, (_, index) => [index, 1000]),
      [10, 1],
    ]);

    const directory = await mkdtemp(join(tmpdir(), 'muster-pieces-'));
    try {
      let copiedPieces = 0;
      const path = join(directory, 'copy.xlsx');
      const copied = await copyUploadToFile(database.db, session.uploadFileId ?? '', path, {
        onPiece: () => {
          copiedPieces += 1;
        },
      });
      expect(copied).toBe(true);
      expect(copiedPieces).toBe(11);
      expect((await readFile(path)).equals(content)).toBe(true);
      const gone = await copyUploadToFile(database.db, randomUUID(), path, { onPiece: () => {} });
      expect(gone).toBe(false);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('refuses an empty file, a non-workbook, an .xls and a file past the cap, leaving nothing stored', async () => {
    const { companyId } = await createCompany(database.db, 'Refused');
    const zip = (size: number) =>
      Buffer.concat([Buffer.from('PK\x03\x04'), Buffer.alloc(size - 4)]);
    const cases: [Buffer, unknown][] = [
      [Buffer.alloc(0), EmptyFileError],
      [Buffer.from('Email,userName\na@b.c,A\n'), NotAWorkbookError],
      [Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]), NotAWorkbookError],
      // Past the cap after three pieces were stored.
      [zip(3_500), FileTooLargeError],
    ];
    for (const [content, errorClass] of cases) {
      const storing = createImportSession(database.db, {
        companyId,
        fileName: 'bad.xlsx',
        chunks: chunked(content, 300),
        maxBytes: 3_000,
        pieceBytes: 1000,
        comment: null,
      });
      await expect(storing).rejects.toBeInstanceOf(errorClass);
    }
    expect(await storedFor(companyId)).toEqual({ files: 0, pieces: 0, sessions: 0 });
  });

  it('keeps nothing of an upload whose stream fails halfway (the client went away)', async () => {
    const { companyId } = await createCompany(database.db, 'Aborted');
    async function* failingHalfway() {
      yield Buffer.concat([Buffer.from('PK\x03\x04'), Buffer.alloc(2_000)]);
      throw new Error('Request disconnected during file upload stream parsing.');
    }
    await expect(
      storeUpload(database.db, {
        companyId,
        fileName: 'cut.xlsx',
        chunks: failingHalfway(),
        maxBytes: 10_000,
        pieceBytes: 1000,
      }),
    ).rejects.toThrow('disconnected');
    expect(await storedFor(companyId)).toEqual({ files: 0, pieces: 0, sessions: 0 });
  });
});
