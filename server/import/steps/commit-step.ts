import { isEmbedded } from '../../../drizzle/client.js';
import type { ImportProgress } from '../../../drizzle/tables.js';
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
  // The commit is one transaction; on Postgres its progress is written from another
  // connection as it goes. The embedded database has one connection, which the transaction
  // holds: there its progress goes to the followers unwritten, from the start (a follower
  // reloading the session for a written one could find its read queued behind the
  // transaction, and hear nothing more until the commit ends).
  const report = isEmbedded(db)
    ? async (progress: ImportProgress) => context.reportUnwritten(progress)
    : (progress: ImportProgress) => context.report(progress);
  await report({ phase: 'COMMITTING', done: 0, total: session.validRowCount });
  const onProgress = (done: number, total: number) => report({ phase: 'COMMITTING', done, total });
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
