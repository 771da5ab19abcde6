import type { Database } from '../../../drizzle/client.js';
import type { ImportProgress } from '../../../drizzle/tables.js';
import type { Config } from '../../infrastructure/config.js';
import type { Logger } from '../../infrastructure/logger.js';
import { inPacedRowRanges, type RangePace, type RowRange } from '../row-ranges.js';
import type { ImportSession, StepTransition } from '../workflow.js';

export type { StepTransition } from '../workflow.js';

/**
 * What a background step gets from the worker that claimed its session. A step computes and
 * returns how it ends (StepTransition); the worker applies that under its claim.
 */
export interface StepContext {
  db: Database;
  /** The session as claimed: its attempt is the claim every write is checked against. */
  session: ImportSession;
  config: Config;
  /** How the set-based steps size their statements (see inPacedRowRanges). */
  pace: RangePace;
  /**
   * Writes the step's progress through the claim and tells followers; throws LostClaimError
   * once the claim is lost, which ends the step. In the commit and the revert on the embedded
   * database, whose transaction holds the one connection, the progress only travels with the
   * event (see ImportEvents.publishSessionUpdated).
   */
  report(progress: ImportProgress): Promise<void>;
  /** Aborted when the claim is lost or the process stops (the read stops at once for it). */
  signal: AbortSignal;
  logger: Logger;
}

export type Step = (context: StepContext) => Promise<StepTransition>;

/** Ends the current step: the lease was lost or the session was cancelled. */
export class LostClaimError extends Error {}

/**
 * Shows the phase at once (not only after the first range), and returns what reports each
 * range done (inPacedRowRanges calls it one at a time, in order).
 */
export async function startProgress(
  context: StepContext,
  phase: ImportProgress['phase'],
  total: number | null,
): Promise<(rows: number) => Promise<void>> {
  await context.report({ phase, done: 0, total });
  let done = 0;
  return async (rows) => {
    done += rows;
    await context.report({ phase, done, total });
  };
}

/**
 * Runs a set-based step range by range, in row order and at the pace's size, reporting
 * progress after each, so that followers see it move (one statement over a million rows is
 * silent for tens of seconds). Stops when the claim is lost.
 */
export async function byRowRanges(
  context: StepContext,
  phase: ImportProgress['phase'],
  rows: { validOnly: boolean },
  work: (range: RowRange) => Promise<void>,
): Promise<void> {
  const { db, session, pace } = context;
  // The session's counts (staging wrote rowCount, validation the valid ones) give the
  // total at once; the ranges are found as they go.
  const total = rows.validOnly ? session.validRowCount : session.rowCount;
  const rangeDone = await startProgress(context, phase, total);
  await inPacedRowRanges(db, session.id, rows, pace, work, { report: rangeDone });
}
