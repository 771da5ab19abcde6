import { isEmbedded } from '../../../drizzle/client.js';
import { revertImport } from '../revert.js';
import { analyzeUsersAfter } from '../rows.js';
import { StaleClaimError } from '../workflow.js';
import { LostClaimError, type StepContext, type StepTransition } from './step.js';

/**
 * revertImport's background work: one transaction (revert.ts), like the commit. The import
 * stays committed if the revert fails (rolled back whole): COMPLETED, with a failure that
 * says so, never FAILED (which would say that nothing was imported).
 */
export async function runRevertStep(context: StepContext): Promise<StepTransition> {
  const { db, session, logger } = context;
  // On the embedded database, unwritten, as the commit's (commit-step.ts): a follower's read
  // for a written one could wait behind the revert's transaction.
  const start = { phase: 'REVERTING', done: 0, total: null } as const;
  if (isEmbedded(db)) context.reportUnwritten(start);
  else await context.report(start);
  let reverted: Awaited<ReturnType<typeof revertImport>>;
  try {
    reverted = await revertImport(db, session);
  } catch (error) {
    if (error instanceof StaleClaimError) throw error;
    logger.error('import revert failed', { sessionId: session.id, error: String(error) });
    return {
      kind: 'release',
      values: {
        failure: {
          code: 'REVERT_FAILED',
          message:
            'The revert could not be done and nothing was reverted (the users may have changed meanwhile). Try it again; if it fails again, contact your operator.',
        },
      },
    };
  }
  if (!reverted) throw new LostClaimError();
  if (typeof reverted === 'object') {
    const { removed, updated, unarchived, rearchived } = reverted;
    await analyzeUsersAfter(db, removed + updated + unarchived + rearchived);
  }
  return { kind: 'done' };
}
