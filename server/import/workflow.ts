import { and, eq, sql } from 'drizzle-orm';
import type { Database } from '../../drizzle/client.js';
import {
  companies,
  type ImportFailure,
  type ImportProgress,
  importSessions,
  type PreviewBasis,
} from '../../drizzle/tables.js';
import { NotFoundError, SessionBusyError, WrongStageError } from '../errors.js';
import { PREVIEW_REFRESH_STEP, previewHolds } from './preview-basis.js';
import { deleteLoadedRows } from './rows.js';

/**
 * The import workflow as one state machine. A session is at a wizard *stage* (what the admin
 * sees); while `busy`, a background *step* runs for it. Every change of stage or step is one
 * of the transitions below, in one place:
 *
 *   queue    an admin's action (or a change of rules or users) hands the session to a step
 *   start    a worker claims a queued step (the worker: FOR UPDATE SKIP LOCKED, attempt + 1)
 *   release  a step ends and the session waits for the admin, maybe at a new stage
 *   fail     a step ends the session FAILED and drops its loaded rows
 *   complete the commit ends the session COMPLETED (in the commit's own transaction)
 *   cancel   the admin or retention ends the session CANCELLED
 *
 * A worker's transitions hold only while its claim (the session's attempt) is current: each is
 * one statement or one transaction that checks it, so a process that lost its lease can never
 * overwrite the one that took over.
 */

export type ImportSession = typeof importSessions.$inferSelect;
export type ImportStage = ImportSession['stage'];
export type ImportStep = ImportSession['step'];
type SessionValues = Partial<typeof importSessions.$inferInsert>;

/** Stages an import ends at: nothing more happens to it. */
export const ENDED_STAGES = [
  'COMPLETED',
  'CANCELLED',
  'FAILED',
  'REVERTED',
] as const satisfies readonly ImportStage[];

/** Stages before the commit: an import there can still be cancelled. */
export const CANCELLABLE_STAGES = [
  'UPLOAD',
  'CUSTOM_FIELDS',
  'VALIDATION',
  'REVIEW',
  'GROUP_ASSIGNMENT',
] as const satisfies readonly ImportStage[];

export function isEnded(stage: ImportStage): boolean {
  return (ENDED_STAGES as readonly ImportStage[]).includes(stage);
}

/** Where `continueImport` goes from each stage, and the background step that gets it there. */
export const CONTINUE_FROM: Partial<Record<ImportStage, { stage: ImportStage; step: ImportStep }>> =
  {
    VALIDATION: { stage: 'REVIEW', step: 'REVIEW' },
    REVIEW: { stage: 'GROUP_ASSIGNMENT', step: 'ASSIGN' },
    GROUP_ASSIGNMENT: { stage: 'GROUP_ASSIGNMENT', step: 'COMMIT' },
  };

/** A process's claim on a session's background work: valid while `attempt` is current. */
export interface Claim {
  id: string;
  attempt: number;
}

/**
 * The claim is no longer current: the session was cancelled, or another process took the
 * work over after this one's lease ran out (a paused or slow process). Nothing was written.
 */
export class StaleClaimError extends Error {
  override readonly name = 'StaleClaimError';
  constructor(readonly sessionId: string) {
    super(`The claim on import session ${sessionId} is no longer current.`);
  }
}

/** release: a step's work is done and nothing follows until the admin acts. */
export const RELEASED = { busy: false, progress: null, leaseOwner: null, leaseExpiresAt: null };

/** queue: hands the session on to a background step (a worker claims it at once). */
export function queued(step: ImportStep) {
  return {
    busy: true,
    step,
    progress: { phase: 'QUEUED', done: 0, total: null } satisfies ImportProgress,
    leaseOwner: null,
    leaseExpiresAt: null,
  };
}

/** complete: the commit's last write, checked against the claim by the commit itself. */
export const COMPLETED = { ...RELEASED, stage: 'COMPLETED' } as const;

/**
 * cancel: bumping the attempt makes a worker still busy with the session fail its next write.
 */
export const CANCELLED = {
  stage: 'CANCELLED',
  busy: false,
  progress: null,
  attempt: sql`${importSessions.attempt} + 1`,
  leaseOwner: null,
  leaseExpiresAt: null,
} as const;

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
 * release, for a step that computed the preview from `basis`, with `values` (its stage,
 * counts): released when the basis still holds, else queued again to recompute what moved,
 * in one transaction under the claim. A rule or user change that landed while the step ran
 * found the session busy and queued nothing: this is where it is caught. The company row is
 * locked first, as a user change locks it (bumpUsersVersion) before it queues idle sessions:
 * one in flight finishes first and is seen here, one that comes after finds the session idle.
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

/**
 * fail: the session becomes FAILED and loses its loaded rows, in one transaction, but only
 * while the claim is current: a stale process must not delete the rows that the process now
 * owning the session has loaded. Returns false when the claim was stale.
 */
export async function failClaimedStep(
  db: Database,
  claim: Claim,
  failure: ImportFailure,
  values: SessionValues = {},
): Promise<boolean> {
  return db.transaction(async (tx) => {
    const [current] = await tx
      .select({ id: importSessions.id })
      .from(importSessions)
      .where(and(eq(importSessions.id, claim.id), eq(importSessions.attempt, claim.attempt)))
      .for('update');
    if (!current) return false;
    await deleteLoadedRows(tx, [claim.id]);
    await tx
      .update(importSessions)
      .set({ ...values, ...RELEASED, stage: 'FAILED', failure, updatedAt: new Date() })
      .where(eq(importSessions.id, claim.id));
    return true;
  });
}

/**
 * How a background step ends, as the step returns it (server/import/steps/): the worker applies
 * it under its claim with applyStepTransition, so each step computes and none writes its end.
 *
 *   release          released, with `values` (a new stage, counts, or a failure that keeps
 *                    the loaded rows)
 *   queue            queued on to `step`, with `values`
 *   preview-release  releasePreviewStep: released, or queued again when `basis` moved
 *   fail             failClaimedStep: FAILED, its loaded rows dropped
 *   done             the step wrote its end itself, in its own transaction checked against the
 *                    claim (the commit's complete, the revert)
 */
export type StepTransition =
  | { kind: 'release'; values: SessionValues }
  | { kind: 'queue'; step: ImportStep; values: SessionValues }
  | { kind: 'preview-release'; basis: PreviewBasis; values: SessionValues }
  | { kind: 'fail'; failure: ImportFailure; values: SessionValues }
  | { kind: 'done' };

/** Applies a step's end while the claim is current; false when it is not (nothing written). */
export async function applyStepTransition(
  db: Database,
  claim: Claim & { companyId: string },
  transition: StepTransition,
): Promise<boolean> {
  switch (transition.kind) {
    case 'release':
      return updateClaimed(db, claim, { ...transition.values, ...RELEASED });
    case 'queue':
      return updateClaimed(db, claim, { ...transition.values, ...queued(transition.step) });
    case 'preview-release':
      return releasePreviewStep(db, claim, transition.basis, transition.values);
    case 'fail':
      return failClaimedStep(db, claim, transition.failure, transition.values);
    case 'done':
      return true;
  }
}

/** Hands the session back at once (shutdown), instead of after its lease runs out. */
export async function handBack(db: Database, claim: Claim): Promise<void> {
  await db
    .update(importSessions)
    .set({ leaseOwner: null, leaseExpiresAt: null })
    .where(and(eq(importSessions.id, claim.id), eq(importSessions.attempt, claim.attempt)));
}

/** Locks an admin's session for a transition (FOR UPDATE), within the company. */
export async function lockSession(
  tx: Database,
  companyId: string,
  id: string,
): Promise<ImportSession> {
  const [session] = await tx
    .select()
    .from(importSessions)
    .where(and(eq(importSessions.companyId, companyId), eq(importSessions.id, id)))
    .for('update');
  if (!session) throw new NotFoundError('import session', id);
  return session;
}

export function assertStage(session: ImportSession, expected: readonly ImportStage[]): void {
  if (!expected.includes(session.stage)) throw new WrongStageError(session.stage, [...expected]);
}

/**
 * queue, for an admin's action on a locked, idle session: moves it to `stage` with `step`
 * to run, with `values` beside (new columns).
 */
export async function queueStep(
  tx: Database,
  session: ImportSession,
  next: { stage: ImportStage; step: ImportStep },
  values: SessionValues = {},
): Promise<ImportSession> {
  if (session.busy) throw new SessionBusyError(session.stage);
  const [updated] = await tx
    .update(importSessions)
    .set({ ...values, stage: next.stage, ...queued(next.step), updatedAt: new Date() })
    .where(eq(importSessions.id, session.id))
    .returning();
  return updated as ImportSession;
}

/** cancel, for an admin: ends an import before its commit; its loaded rows go at once. */
export async function cancelSession(
  db: Database,
  companyId: string,
  sessionId: string,
): Promise<ImportSession> {
  return db.transaction(async (tx) => {
    const session = await lockSession(tx, companyId, sessionId);
    assertStage(session, CANCELLABLE_STAGES);
    const [updated] = await tx
      .update(importSessions)
      .set({ ...CANCELLED, updatedAt: new Date() })
      .where(eq(importSessions.id, sessionId))
      .returning();
    await deleteLoadedRows(tx, [sessionId]);
    return updated as ImportSession;
  });
}
