import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { and, eq, sql } from 'drizzle-orm';
import { type Database, isEmbedded, queryRows } from '../../drizzle/client.js';
import { type ImportProgress, importSessions } from '../../drizzle/tables.js';
import type { RangePace } from '../import/row-ranges.js';
import type { ImportSession } from '../import/sessions.js';
import { runCommitStep } from '../import/steps/commit-step.js';
import { runReadStep } from '../import/steps/read.js';
import { refreshPreview } from '../import/steps/refresh-preview.js';
import { runRevertStep } from '../import/steps/revert-step.js';
import { LostClaimError, type Step, type StepContext } from '../import/steps/step.js';
import { runValidateStep } from '../import/steps/validate.js';
import {
  applyStepTransition,
  failClaimedStep,
  handBack,
  type ImportStep,
  StaleClaimError,
  updateClaimed,
} from '../import/workflow.js';
import type { Config } from '../infrastructure/config.js';
import { currentRequestId, type Logger } from '../infrastructure/logger.js';
import type { Metrics } from '../infrastructure/metrics.js';
import type { ImportEvents } from '../infrastructure/pubsub.js';
import { Heartbeat } from './heartbeat.js';
import { observeStep, type StepEnd } from './step-events.js';

export interface ImportWorkerOptions {
  db: Database;
  config: Config;
  logger: Logger;
  events: ImportEvents;
  /** Step durations, rows and lease losses (the logs get the step events either way). */
  metrics?: Metrics;
  /** How long a claim lasts without renewal; another process may take the session after. */
  leaseMs?: number;
  /** How often to look for work when nobody called wake(). */
  pollIntervalMs?: number;
  /**
   * How the steps that go range by range (validation, review, groups, commit) size their
   * statements; they report progress after each. Default: units of 1,000 rows, merged so
   * that a statement takes about 125 ms.
   */
  pace?: RangePace;
}

export interface ImportWorker {
  /**
   * Look for work now (called after startImport, so progress starts at once). With the session
   * whose work was queued, its step's log lines carry the id of the request being served.
   */
  wake(sessionId?: string): void;
  /** Stops taking work and waits for the current step to end or be released. */
  stop(): Promise<void>;
  /** False once stopped, or when its loop ended on an error (readiness reports it). */
  isRunning(): boolean;
}

/**
 * While a step runs, followers hear from it at least this often (followers are promised an
 * event every 250 ms): when nothing was published for this long, the session is published
 * again as it stands (see heartbeat.ts). A beat still has to travel (NOTIFY, the follower's
 * reload of the session, the write): 40-90 ms with both cores busy, so at 200 ms followers
 * went 250-287 ms without an event in the first ranges of validation of 100k rows.
 */
const HEARTBEAT_MS = 150;

/**
 * The statements of a set-based step run range by range (all but the read): ranges of 1,000
 * rows, merged to take about 125 ms a statement, so that followers hear of the step at least
 * every 250 ms (at 10,000 rows a statement, 0.3–0.5 s passed between events).
 */
const DEFAULT_PACE: RangePace = { rows: 1_000, targetMs: 125 };

/** Each background step's work (server/import/steps/), by the step the session is queued for. */
const STEPS: Record<ImportStep, Step> = {
  READ: runReadStep,
  VALIDATE: runValidateStep,
  REVIEW: (context) => refreshPreview(context, 'REVIEWING'),
  ASSIGN: (context) => refreshPreview(context, 'ASSIGNING'),
  COMMIT: runCommitStep,
  REVERT: runRevertStep,
};

/**
 * Background work on import sessions. The session row is the unit of work: a process claims a
 * busy session whose lease is free or expired (`FOR UPDATE SKIP LOCKED`, so two processes never
 * take the same one), renews the lease while it works, and writes only while its attempt
 * number is still current, so a step redone after a crash cannot be mixed with a stale one.
 */
export function startImportWorker(options: ImportWorkerOptions): ImportWorker {
  const { db, config, logger, events } = options;
  const leaseMs = options.leaseMs ?? 30_000;
  const pollIntervalMs = options.pollIntervalMs ?? 1_000;
  const pace = options.pace ?? DEFAULT_PACE;
  const owner = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  let stopped = false;
  let wakeUp: (() => void) | null = null;
  let current: AbortController | null = null;
  /** Beats for the claimed session while its step runs. */
  let heartbeat: Heartbeat | null = null;
  let loopEnded = false;
  /** The request that queued each session's work, for its step's log lines (bounded). */
  const queuedBy = new Map<string, string>();
  const rememberRequest = (sessionId: string, requestId: string) => {
    queuedBy.delete(sessionId);
    queuedBy.set(sessionId, requestId);
    // Sessions claimed by another process never leave the map: keep the latest only.
    if (queuedBy.size > 1000) queuedBy.delete(queuedBy.keys().next().value as string);
  };

  function publish(sessionId: string): void {
    events.publishSessionUpdated(sessionId);
    heartbeat?.published();
  }

  async function claimSession(): Promise<ImportSession | null> {
    const claimed = await queryRows<{ id: string }>(
      db,
      sql`
      update import_sessions
      set lease_owner = ${owner},
          lease_expires_at = now() + ${`${leaseMs} milliseconds`}::interval,
          attempt = attempt + 1
      where id = (
        select id from import_sessions
        where busy and (lease_expires_at is null or lease_expires_at < now())
        order by updated_at
        limit 1
        for update skip locked
      )
      returning id`,
    );
    const id = claimed[0]?.id;
    if (!id) return null;
    const [session] = await db.select().from(importSessions).where(eq(importSessions.id, id));
    return session ?? null;
  }

  async function renewLease(session: ImportSession): Promise<boolean> {
    const renewed = await db
      .update(importSessions)
      .set({ leaseExpiresAt: sql`now() + ${`${leaseMs} milliseconds`}::interval` })
      .where(and(eq(importSessions.id, session.id), eq(importSessions.attempt, session.attempt)))
      .returning({ id: importSessions.id });
    return renewed.length > 0;
  }

  async function runClaimed(session: ImportSession): Promise<void> {
    const abort = new AbortController();
    current = abort;
    // stop() may have come while this claim was being made: hand the session back at once.
    if (stopped) abort.abort(new LostClaimError());
    // In a transaction of the embedded database (the commit, the revert), its one connection
    // is the transaction's and each follower's reload would wait for it: progress is not
    // written but travels with the event, and the beat repeats the last one.
    const inEmbeddedTransaction =
      (session.step === 'COMMIT' || session.step === 'REVERT') && isEmbedded(db);
    let lastProgress: ImportProgress | null = null;
    heartbeat = new Heartbeat(HEARTBEAT_MS, () => {
      if (!inEmbeddedTransaction) events.publishSessionUpdated(session.id);
      else if (lastProgress) events.publishSessionUpdated(session.id, lastProgress);
    });
    // A renewal waits while the commit's transaction holds the session row: never queue
    // another behind it, each would hold a pool connection and starve every other request.
    let renewing = false;
    const renewal = setInterval(() => {
      if (renewing) return;
      renewing = true;
      renewLease(session)
        .then(
          (renewed) => {
            if (!renewed) abort.abort(new LostClaimError());
          },
          (error: unknown) => logger.warn('lease renewal failed', { error: String(error) }),
        )
        .finally(() => {
          renewing = false;
        });
    }, leaseMs / 3);
    const requestId = queuedBy.get(session.id);
    queuedBy.delete(session.id);
    const observer = observeStep({ db, logger, metrics: options.metrics, requestId }, session);
    let end: StepEnd = 'ran';
    let failure: unknown;
    const context: StepContext = {
      db,
      session,
      config,
      pace,
      report: async (progress) => {
        lastProgress = progress;
        // Unwritten there, from the first report on: a follower reloading the session for a
        // written one could find its read queued behind the transaction, and hear nothing
        // more until the step ended.
        if (inEmbeddedTransaction) {
          events.publishSessionUpdated(session.id, progress);
          heartbeat?.published();
          return;
        }
        if (!(await updateClaimed(db, session, { progress }))) throw new LostClaimError();
        publish(session.id);
      },
      signal: abort.signal,
      logger,
    };
    try {
      const transition = await STEPS[session.step](context);
      if (!(await applyStepTransition(db, session, transition))) throw new LostClaimError();
      publish(session.id);
    } catch (error) {
      if (error instanceof LostClaimError || error instanceof StaleClaimError) {
        end = stopped ? 'handed_back' : 'interrupted';
        // On shutdown, hand the session back at once instead of after the lease runs out.
        if (stopped) await handBack(db, session);
        return;
      }
      end = 'error';
      failure = error;
      const failed = await failClaimedStep(db, session, {
        code: 'INTERNAL_ERROR',
        message:
          'Muster could not process this import because of an internal error. Start it again; if it fails again, contact your operator.',
      });
      if (failed) publish(session.id);
    } finally {
      clearInterval(renewal);
      heartbeat?.stop();
      heartbeat = null;
      current = null;
      const nextStepQueued = await observer.end(end, failure);
      // A step that ended queuing the next one (the read, validation) passes its request on.
      if (nextStepQueued && requestId) rememberRequest(session.id, requestId);
    }
  }

  const loop = (async () => {
    while (!stopped) {
      let session: ImportSession | null = null;
      try {
        session = await claimSession();
      } catch (error) {
        logger.error('claiming import work failed', { error: String(error) });
      }
      if (session) {
        await runClaimed(session);
        continue;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, pollIntervalMs);
        wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wakeUp = null;
    }
  })().then(
    () => {
      loopEnded = true;
    },
    (error: unknown) => {
      loopEnded = true;
      logger.error('the import worker stopped on an error: imports wait until a restart', {
        error: String(error),
      });
    },
  );

  return {
    wake: (sessionId) => {
      const requestId = currentRequestId();
      if (sessionId && requestId) rememberRequest(sessionId, requestId);
      wakeUp?.();
    },
    isRunning: () => !stopped && !loopEnded,
    stop: async () => {
      stopped = true;
      current?.abort(new LostClaimError());
      wakeUp?.();
      await loop;
    },
  };
}
