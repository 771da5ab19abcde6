import { and, eq, exists, inArray, isNotNull, lt, not, notInArray } from 'drizzle-orm';
import type { Database } from '../../drizzle/client.js';
import { importSessions, uploadFiles } from '../../drizzle/tables.js';
import { purgeExpiredRateLimits } from '../http/rate-limit.js';
import { deleteLoadedRows } from '../import/rows.js';
import { CANCELLED, ENDED_STAGES } from '../import/workflow.js';

/**
 * Age after which an upload no session names is an orphan: its request ended long ago (Node
 * ends a request after `server.requestTimeout`, 5 minutes), so its process died mid-upload.
 */
export const ORPHANED_UPLOAD_MS = 10 * 60 * 1000;

/**
 * Keeps the database from growing without bound: sessions idle longer than the retention
 * period are cancelled, and ended sessions older than it lose their staged rows and stored
 * upload. The sessions themselves stay, as the history of imports. An upload that no session
 * names (its process died while storing it, or before creating its session) goes once it is
 * ORPHANED_UPLOAD_MS old: this runs at every start, so a crash leaves no row for long.
 */
export async function purgeOldImports(
  db: Database,
  retentionDays: number,
  now = new Date(),
  orphanedUploadMs = ORPHANED_UPLOAD_MS,
): Promise<{ cancelled: number; purged: number; orphanedUploads: number }> {
  const cutoff = new Date(now.getTime() - retentionDays * 24 * 60 * 60 * 1000);
  const cancelled = await db
    .update(importSessions)
    .set(CANCELLED)
    .where(
      and(
        notInArray(importSessions.stage, [...ENDED_STAGES]),
        eq(importSessions.busy, false),
        lt(importSessions.updatedAt, cutoff),
      ),
    )
    .returning({ id: importSessions.id });
  const ended = await db
    .select({ id: importSessions.id, uploadFileId: importSessions.uploadFileId })
    .from(importSessions)
    .where(
      and(
        inArray(importSessions.stage, [...ENDED_STAGES]),
        lt(importSessions.updatedAt, cutoff),
        isNotNull(importSessions.uploadFileId),
      ),
    );
  if (ended.length > 0) {
    const sessionIds = ended.map((session) => session.id);
    await db.transaction(async (tx) => {
      await deleteLoadedRows(tx, sessionIds);
      await tx
        .update(importSessions)
        .set({ uploadFileId: null })
        .where(inArray(importSessions.id, sessionIds));
      await tx.delete(uploadFiles).where(
        inArray(
          uploadFiles.id,
          ended.map((session) => session.uploadFileId as string),
        ),
      );
    });
  }
  const orphanedUploads = await db
    .delete(uploadFiles)
    .where(
      and(
        lt(uploadFiles.createdAt, new Date(now.getTime() - orphanedUploadMs)),
        not(
          exists(
            db
              .select({ id: importSessions.id })
              .from(importSessions)
              .where(eq(importSessions.uploadFileId, uploadFiles.id)),
          ),
        ),
      ),
    )
    .returning({ id: uploadFiles.id });
  return {
    cancelled: cancelled.length,
    purged: ended.length,
    orphanedUploads: orphanedUploads.length,
  };
}

/** Runs purgeOldImports (and purges spent rate-limit counters) now and then hourly; returns the function that stops it. */
export function scheduleRetention(
  db: Database,
  retentionDays: number,
  onError: (error: unknown) => void,
): () => void {
  const run = () => {
    purgeOldImports(db, retentionDays).catch(onError);
    purgeExpiredRateLimits(db).catch(onError);
  };
  run();
  const timer = setInterval(run, 60 * 60 * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
