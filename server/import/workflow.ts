import { and, eq } from 'drizzle-orm';
import type { Database } from '../../drizzle/client.js';
import { companies, importSessions, type PreviewBasis } from '../../drizzle/tables.js';
import { PREVIEW_REFRESH_STEP, previewHolds } from './preview-basis.js';
import type { ImportSession } from './sessions.js';

type SessionValues = Partial<typeof importSessions.$inferInsert>;
type Step = ImportSession['step'];

/** A process's claim on a session's background work: valid while `attempt` is current. */
export interface Claim {
  id: string;
  attempt: number;
}

/** A step's work is done and nothing follows until the admin acts. */
export const RELEASED = { busy: false, progress: null, leaseOwner: null, leaseExpiresAt: null };

/** Hands the session on to a background step (a worker claims it again at once). */
export function queued(step: Step) {
  return {
    busy: true,
    step,
    progress: { phase: 'QUEUED' as const, done: 0, total: null },
    leaseOwner: null,
    leaseExpiresAt: null,
  };
}

/** Writes to the session only while the claim is current; false when it is not. */
export async function updateClaimed(
  db: Database,
  claim: Claim,
  values: SessionValues,
): Promise<boolean> {
  const updated = await db
    .update(importSessions)
    .set({ ...values, updatedAt: new Date() })
    .where(and(eq(importSessions.id, claim.id), eq(importSessions.attempt, claim.attempt)))
    .returning({ id: importSessions.id });
  return updated.length > 0;
}

/**
 * Ends a step that computed the preview from `basis`, with `values` (its stage, counts):
 * released when the basis still holds, else queued again to recompute what moved, in one
 * transaction under the claim. A rule or user change that landed while the step ran found the
 * session busy and queued nothing: this is where it is caught. The company row is locked
 * first, as a user change locks it (bumpUsersVersion) before it queues idle sessions: one that
 * is in flight finishes first and is seen here, one that comes after finds the session idle.
 * Returns false when the claim is no longer current (nothing written).
 */
export async function releasePreviewStep(
  db: Database,
  claim: Claim & { companyId: string },
  basis: PreviewBasis,
  values: SessionValues,
): Promise<boolean> {
  return db.transaction(async (tx) => {
    await tx
      .select({ id: companies.id })
      .from(companies)
      .where(eq(companies.id, claim.companyId))
      .for('share');
    const [session] = await tx
      .select({ stage: importSessions.stage })
      .from(importSessions)
      .where(and(eq(importSessions.id, claim.id), eq(importSessions.attempt, claim.attempt)))
      .for('update');
    if (!session) return false;
    const stage = values.stage ?? session.stage;
    const refresh =
      stage === 'REVIEW' || stage === 'GROUP_ASSIGNMENT' ? PREVIEW_REFRESH_STEP[stage] : null;
    const holds = !refresh || (await previewHolds(tx, claim.companyId, basis));
    await tx
      .update(importSessions)
      .set({
        ...values,
        ...(holds || !refresh ? RELEASED : queued(refresh)),
        previewBasis: basis,
        updatedAt: new Date(),
      })
      .where(eq(importSessions.id, claim.id));
    return true;
  });
}
