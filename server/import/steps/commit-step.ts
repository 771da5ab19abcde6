import { isUniqueViolation } from '../../infrastructure/database-errors.js';
import { commitImport } from '../commit.js';
import { analyzeUsersAfter } from '../rows.js';
import { LostClaimError, type StepContext, type StepTransition } from './step.js';

/**
 * Stage 5's end: the commit, one transaction that completes the session itself, checked
 * against the claim (commit.ts).
 */
export async function runCommitStep(context: StepContext): Promise<StepTransition> {
  const { db, session, pace } = context;
  await context.report({ phase: 'COMMITTING', done: 0, total: session.validRowCount });
  // The commit is one transaction; on Postgres its progress is written from another
  // connection as it goes (on the embedded database it travels with the event: see report).
  const onProgress = (done: number, total: number) =>
    context.report({ phase: 'COMMITTING', done, total });
  try {
    const result = await commitImport(db, session, { pace, onProgress });
    if (!result) throw new LostClaimError();
    if (typeof result === 'object') {
      const { created, updated, archived = 0, restored = 0 } = result;
      await analyzeUsersAfter(db, created + updated + archived + restored);
    }
    return { kind: 'done' };
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
    // Rolled back whole: users changed since validation so that a reference now clashes.
    return {
      kind: 'release',
      values: {
        stage: 'FAILED',
        failure: {
          code: 'USER_CONFLICT',
          message:
            "The company's users changed while this import was open, and a reference in the file now belongs to another user. Nothing was imported; start the import again.",
        },
      },
    };
  }
}
