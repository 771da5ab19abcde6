import { randomBytes } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { and, eq } from 'drizzle-orm';
import type { Database } from '../../drizzle/client.js';
import {
  type ImportColumn,
  type ImportProgress,
  type ImportSheet,
  uploadFilePieces,
  uploadFiles,
} from '../../drizzle/tables.js';
import { builtInFields, type UserField } from '../settings/fields.js';
import { loadColumnMemory, matchFileColumns, requiredHeaderKeys } from './column-mapping.js';
import { loadRowsBatch } from './load-rows.js';
import { type ReadLimits, WorkbookReadError } from './reader/read-workbook.js';
import { readWorkbookInWorker } from './reader/reader-thread.js';
import { analyzeLoaded, deleteLoadedRows } from './rows.js';
import type { ImportSession } from './sessions.js';

export interface ReadUploadOptions {
  fields: UserField[];
  limits: Omit<ReadLimits, 'requiredHeaders'>;
  onProgress(progress: ImportProgress): void;
  signal: AbortSignal;
}

export interface ReadUploadResult {
  columns: ImportColumn[];
  rowCount: number;
  sheets: ImportSheet[];
}

/**
 * Copies a stored upload to a file, a piece a query, calling `onPiece` after each: in one
 * query, a 66 MB upload took 1.2 s (more on a busy machine) during which the import reported
 * nothing, and it was held in memory whole, as hex and as bytes. Returns false when the upload
 * is no longer stored.
 */
export async function copyUploadToFile(
  db: Database,
  uploadFileId: string,
  path: string,
  { onPiece }: { onPiece(): void },
): Promise<boolean> {
  const [stored] = await db
    .select({ id: uploadFiles.id })
    .from(uploadFiles)
    .where(eq(uploadFiles.id, uploadFileId));
  if (!stored) return false;
  const file = await open(path, 'w');
  try {
    for (let piece = 0; ; piece += 1) {
      const [row] = await db
        .select({ content: uploadFilePieces.content })
        .from(uploadFilePieces)
        .where(
          and(eq(uploadFilePieces.uploadFileId, uploadFileId), eq(uploadFilePieces.piece, piece)),
        );
      if (!row) return true;
      await file.write(row.content);
      onPiece();
    }
  } finally {
    await file.close();
  }
}

/**
 * Stage 1's background step: reads the stored upload in a worker thread and stages its rows
 * as they arrive, a batch a statement. Redoing it (after a crash) replaces the staged rows.
 */
export async function readUpload(
  db: Database,
  session: ImportSession,
  options: ReadUploadOptions,
): Promise<ReadUploadResult> {
  await deleteLoadedRows(db, [session.id]);
  const { uploadFileId } = session;
  const path = join(tmpdir(), `muster-${session.id}-${randomBytes(4).toString('hex')}.xlsx`);
  const preparing: ImportProgress = { phase: 'INFLATING', done: 0, total: session.fileSize };
  let columns: ImportColumn[] = [];
  let sheets: ImportSheet[] = [];
  let rowCount = 0;
  try {
    const stored =
      uploadFileId !== null &&
      (await copyUploadToFile(db, uploadFileId, path, {
        onPiece: () => options.onProgress(preparing),
      }));
    if (!stored) {
      throw new WorkbookReadError(
        'CORRUPT_FILE',
        'The uploaded file is no longer stored. Upload it again.',
      );
    }
    // Remembered mappings and, for a replaced file, the decisions made for the one before.
    const memory = await loadColumnMemory(db, session);
    // The reader waits for each batch's insert before sending more: memory stays flat.
    await readWorkbookInWorker(
      path,
      {
        ...options.limits,
        requiredHeaders: builtInFields.map((field) => field.label),
        sheetName: session.requestedSheet,
        knownHeaderKeys: requiredHeaderKeys(memory),
      },
      async (event) => {
        if (event.type === 'progress') {
          options.onProgress({ phase: event.phase, done: event.done, total: event.total });
        } else if (event.type === 'header') {
          columns = matchFileColumns(event.headers, options.fields, memory);
          sheets = event.sheets;
        } else {
          rowCount += event.batch.count;
          await loadRowsBatch(db, session, event.batch);
        }
      },
      options.signal,
    );
  } finally {
    await rm(path, { force: true });
  }
  // Autovacuum gets to the rows just staged later; validation needs statistics now.
  await analyzeLoaded(db, 'import_rows');
  return { columns, rowCount, sheets };
}
