import { and, desc, eq, inArray, lt, or } from 'drizzle-orm';
import type { Database } from '../../drizzle/client.js';
import { type ImportColumn, importSessions } from '../../drizzle/tables.js';
import { RequiredFieldUnmappedError, UnknownHeaderError, WrongStageError } from '../errors.js';
import { createCustomField } from '../settings/fields.js';
import { unmappedRequiredFields } from './column-mapping.js';
import { checkArchiveLimit } from './sync-archive.js';
import { deleteUpload, storeUpload, type UploadToStore } from './upload.js';
import {
  assertStage,
  CONTINUE_FROM,
  cancelSession,
  type ImportSession,
  type ImportStage,
  lockSession,
  queueStep,
} from './workflow.js';

export type { ImportSession, ImportStage } from './workflow.js';
export { CANCELLABLE_STAGES } from './workflow.js';

/**
 * Stores the upload as it streams in (see storeUpload: checked, in pieces) and creates the
 * session at UPLOAD, waiting for background work. When either fails, nothing is left stored.
 */
export async function createImportSession(
  db: Database,
  input: UploadToStore & {
    comment: string | null;
    sheet?: string | null;
    mode?: ImportSession['mode'];
  },
): Promise<ImportSession> {
  const upload = await storeUpload(db, input);
  try {
    const [session] = await db
      .insert(importSessions)
      .values({
        companyId: input.companyId,
        uploadFileId: upload.id,
        fileName: upload.fileName,
        fileSize: upload.size,
        comment: input.comment,
        requestedSheet: input.sheet ?? null,
        mode: input.mode ?? 'ADD_AND_UPDATE',
        stage: 'UPLOAD',
        busy: true,
        progress: { phase: 'QUEUED', done: 0, total: null },
      })
      .returning();
    if (!session) throw new Error('session insert returned nothing');
    return session;
  } catch (error) {
    await deleteUpload(db, upload.id);
    throw error;
  }
}

export async function findImportSession(
  db: Database,
  companyId: string,
  id: string,
): Promise<ImportSession | undefined> {
  const [session] = await db
    .select()
    .from(importSessions)
    .where(and(eq(importSessions.companyId, companyId), eq(importSessions.id, id)));
  return session;
}

export async function findImportSessions(db: Database, companyId: string, ids: string[]) {
  if (ids.length === 0) return [];
  return db
    .select()
    .from(importSessions)
    .where(and(eq(importSessions.companyId, companyId), inArray(importSessions.id, ids)));
}

export interface SessionCursor {
  createdAt: string;
  id: string;
}

/** Newest first, by keyset on (created_at, id). */
export async function listImportSessionsPage(
  db: Database,
  companyId: string,
  options: { limit: number; after?: SessionCursor | null },
): Promise<{ sessions: ImportSession[]; hasNextPage: boolean }> {
  const after = options.after;
  const rows = await db
    .select()
    .from(importSessions)
    .where(
      and(
        eq(importSessions.companyId, companyId),
        after
          ? or(
              lt(importSessions.createdAt, new Date(after.createdAt)),
              and(
                eq(importSessions.createdAt, new Date(after.createdAt)),
                lt(importSessions.id, after.id),
              ),
            )
          : undefined,
      ),
    )
    .orderBy(desc(importSessions.createdAt), desc(importSessions.id))
    .limit(options.limit + 1);
  return { sessions: rows.slice(0, options.limit), hasNextPage: rows.length > options.limit };
}

/**
 * Stage 2: creates the chosen new columns as company custom fields (for all users of the
 * company) and ignores the other new columns. Then the session moves on to validation.
 */
export async function confirmCustomFields(
  db: Database,
  companyId: string,
  sessionId: string,
  addToDatabase: string[],
  options: { maxCustomFields?: number } = {},
): Promise<ImportSession> {
  return db.transaction(async (tx) => {
    const session = await lockSession(tx, companyId, sessionId);
    assertStage(session, ['CUSTOM_FIELDS']);
    const newColumns = new Map(
      session.columns
        .filter((column) => column.status === 'NEW')
        .map((column) => [column.header.toLowerCase(), column]),
    );
    // Adding new columns cannot fill a built-in field: mapping one takes confirmColumns.
    const unmapped = unmappedRequiredFields(session.columns);
    if (unmapped.length > 0) {
      throw new RequiredFieldUnmappedError(unmapped.map((field) => field.key));
    }
    const wanted = [...new Set(addToDatabase.map((header) => header.trim().toLowerCase()))];
    const unknown = wanted.filter((header) => !newColumns.has(header));
    if (unknown.length > 0) {
      throw new UnknownHeaderError(
        addToDatabase.filter((header) => unknown.includes(header.trim().toLowerCase())),
      );
    }
    const addedKeys = new Map<string, string>();
    for (const header of wanted) {
      const column = newColumns.get(header) as ImportColumn;
      const field = await createCustomField(tx, companyId, column.header, {
        maxFields: options.maxCustomFields,
      });
      addedKeys.set(header, field.key);
    }
    const columns = session.columns.map((column): ImportColumn => {
      if (column.status !== 'NEW') return column;
      const fieldKey = addedKeys.get(column.header.toLowerCase());
      return fieldKey ? { ...column, fieldKey, status: 'ADDED' } : { ...column, status: 'IGNORED' };
    });
    return queueStep(tx, session, { stage: 'VALIDATION', step: 'VALIDATE' }, { columns });
  });
}

/**
 * Moves on from `fromStage` (the stage the caller saw): from VALIDATION with the valid rows
 * only, from REVIEW to the group preview, from GROUP_ASSIGNMENT to the commit. A stale or
 * repeated call gets WrongStageError and changes nothing.
 */
export async function continueImport(
  db: Database,
  companyId: string,
  sessionId: string,
  fromStage: ImportStage,
  /** A SYNC past the archive limit goes on only with acknowledgeArchive (sync-archive.ts). */
  sync: { acknowledgeArchive?: boolean | null; archiveLimitPercent: number } = {
    archiveLimitPercent: 100,
  },
): Promise<ImportSession> {
  return db.transaction(async (tx) => {
    const session = await lockSession(tx, companyId, sessionId);
    const next = CONTINUE_FROM[fromStage];
    if (session.stage !== fromStage || !next) {
      throw new WrongStageError(session.stage, next ? [fromStage] : Object.keys(CONTINUE_FROM));
    }
    const archive = await checkArchiveLimit(tx, session, {
      acknowledgeArchive: sync.acknowledgeArchive,
      limitPercent: sync.archiveLimitPercent,
    });
    return queueStep(tx, session, next, archive);
  });
}

/** Ends an import before its commit; loaded rows go at once, no user is changed. */
export const cancelImport = cancelSession;
