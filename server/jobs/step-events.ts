import { eq } from 'drizzle-orm';
import type { Database } from '../../drizzle/client.js';
import { importSessions } from '../../drizzle/tables.js';
import type { ImportSession } from '../import/sessions.js';
import type { Logger } from '../infrastructure/logger.js';
import type { Metrics } from '../infrastructure/metrics.js';

/**
 * How a background step ended, as the worker saw it: `ran` (the step returned), `interrupted`
 * (it lost its claim: the session was cancelled, or its lease was taken), `handed_back` (this
 * process is shutting down), `error` (an unexpected error; the session was failed).
 */
export type StepEnd = 'ran' | 'interrupted' | 'handed_back' | 'error';

export interface StepObserver {
  /**
   * Logs the step's end and records its metrics; never throws. True when the session is
   * still busy: the step queued the next one.
   */
  end(how: StepEnd, error?: unknown): Promise<boolean>;
}

/**
 * An import's lifecycle in the logs and metrics, from the one place every step passes: the
 * worker's dispatch. The session is read again when the step ends, so the outcome (next
 * stage, failure code, counts) is what was written, whichever code path wrote it.
 * `requestId` is the request that queued the step, when it was served by this process.
 */
export function observeStep(
  options: { db: Database; logger: Logger; metrics?: Metrics; requestId?: string },
  session: ImportSession,
): StepObserver {
  const { db, logger, metrics } = options;
  const started = performance.now();
  const ids = {
    ...(options.requestId ? { requestId: options.requestId } : {}),
    sessionId: session.id,
    companyId: session.companyId,
    step: session.step,
  };
  logger.info('import step started', { ...ids, stage: session.stage, attempt: session.attempt });
  return {
    async end(how, error) {
      const seconds = (performance.now() - started) / 1000;
      try {
        const [after] = await db
          .select()
          .from(importSessions)
          .where(eq(importSessions.id, session.id));
        const outcome =
          how === 'ran' || how === 'error'
            ? after?.stage === 'FAILED'
              ? 'failed'
              : how === 'ran'
                ? 'completed'
                : 'error'
            : how === 'handed_back'
              ? 'handed_back'
              : after?.stage === 'CANCELLED' || !after
                ? 'cancelled'
                : 'lease_lost';
        const rows = after?.rowCount ?? 0;
        const durationMs = Math.round(seconds * 1000);
        const rowsPerSecond = seconds > 0 ? Math.round(rows / seconds) : rows;
        metrics?.importSteps.observe({ step: session.step, outcome }, seconds);
        if (outcome === 'completed') metrics?.importRows.inc({ step: session.step }, rows);
        if (outcome === 'lease_lost') metrics?.leaseLosses.inc();
        const ended = { ...ids, outcome, durationMs, rows, rowsPerSecond, stage: after?.stage };
        if (outcome === 'lease_lost') {
          logger.warn('import step ended: another process took the session', ended);
        } else if (outcome === 'error') {
          logger.error('import step failed', { ...ended, error: String(error) });
        } else {
          logger.info('import step ended', ended);
        }
        if (outcome === 'failed' && after?.failure) {
          metrics?.importFailures.inc({ code: after.failure.code });
          const failed = { ...ids, code: after.failure.code, message: after.failure.message };
          const details = error === undefined ? failed : { ...failed, error: String(error) };
          if (after.failure.code === 'INTERNAL_ERROR') logger.error('import failed', details);
          else logger.warn('import failed', details);
        }
        if (outcome === 'completed' && after?.stage === 'COMPLETED') {
          logger.info('import completed', {
            ...ids,
            rows,
            ...(after.result ?? {}),
            totalMs: Date.now() - after.createdAt.getTime(),
          });
        }
        return how === 'ran' && after?.busy === true;
      } catch (failure) {
        logger.warn('import step ended; its outcome could not be read', {
          ...ids,
          durationMs: Math.round(seconds * 1000),
          error: String(failure),
        });
        return false;
      }
    },
  };
}
