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
  await context.report({ phase: 'REVERTING', done: 0, total: null });
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
