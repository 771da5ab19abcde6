import { and, eq } from 'drizzle-orm';
import type { Database } from '../../drizzle/client.js';
import { importSessions } from '../../drizzle/tables.js';
import { deleteStagedRows } from './rows.js';

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

/**
 * Ends a step that failed: the session becomes FAILED and loses its staged rows, in one
 * transaction, but only while the claim is current. A stale process must not delete the rows
 * that the process now owning the session has staged. Returns false when the claim was stale.
 */
export async function failClaimedStep(
  db: Database,
  claim: Claim,
  failure: { code: string; message: string },
): Promise<boolean> {
  return db.transaction(async (tx) => {
    const [current] = await tx
      .select({ id: importSessions.id })
      .from(importSessions)
      .where(and(eq(importSessions.id, claim.id), eq(importSessions.attempt, claim.attempt)))
      .for('update');
    if (!current) return false;
    await deleteStagedRows(tx, [claim.id]);
    await tx
      .update(importSessions)
      .set({
        stage: 'FAILED',
        busy: false,
        progress: null,
        leaseOwner: null,
        leaseExpiresAt: null,
        failure,
        updatedAt: new Date(),
      })
      .where(eq(importSessions.id, claim.id));
    return true;
  });
}
