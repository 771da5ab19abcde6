import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { and, eq, sql } from 'drizzle-orm';
import { type Database, isEmbedded, queryRows } from '../../drizzle/client.js';
import { type ImportProgress, importSessions, type PreviewBasis } from '../../drizzle/tables.js';
import { assignGroups, groupSql } from '../import/assign-groups.js';
import { needsColumnDecisions } from '../import/column-mapping.js';
import { commitImport } from '../import/commit.js';
import { validateRows, writePreview } from '../import/preview.js';
import { currentUsersVersion } from '../import/preview-basis.js';
import { readUpload } from '../import/read-upload.js';
import { WorkbookReadError } from '../import/reader/read-workbook.js';
import { revertImport } from '../import/revert.js';
import { inPacedRowRanges, type RangePace, type RowRange } from '../import/row-ranges.js';
import type { ImportSession } from '../import/sessions.js';
import {
  failClaimedStep,
  handBack,
  queued,
  RELEASED,
  releasePreviewStep,
  StaleClaimError,
  updateClaimed as updateClaimedSession,
} from '../import/workflow.js';
import type { Config } from '../infrastructure/config.js';
import { isUniqueViolation } from '../infrastructure/database-errors.js';
import { currentRequestId, type Logger } from '../infrastructure/logger.js';
import type { Metrics } from '../infrastructure/metrics.js';
import type { ImportEvents } from '../infrastructure/pubsub.js';
import { listUserFields } from '../settings/fields.js';
import { Heartbeat } from './heartbeat.js';
import { ProgressPacer } from './progress-pacer.js';
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
 * Progress is written and published at most this often while a step runs. The reader already
 * paces its events at 150 ms; a second throttle as slow would drop every other one.
 */
const PROGRESS_INTERVAL_MS = 100;

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

/**
 * Validation's ranges at once, once the duplicate check (which runs beside them) has ended and
 * left its core free. Timed alone, the check took 0.6 s of a 1 s validation of 100k rows and
 * 5.4 s of 8.6 s at a million: the ranges after it ran on one core while the other was idle.
 */
const VALIDATION_LANES = 2;

/** Ends the current step: the lease was lost or the session was cancelled. */
class LostClaimError extends Error {}

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

  /** Writes to the session only while this claim is current (and tells its followers). */
  async function updateClaimed(
    session: ImportSession,
    values: Partial<typeof importSessions.$inferInsert>,
  ): Promise<boolean> {
    const updated = await updateClaimedSession(db, session, values);
    if (updated) publish(session.id);
    return updated;
  }

  async function renewLease(session: ImportSession): Promise<boolean> {
    const renewed = await db
      .update(importSessions)
      .set({ leaseExpiresAt: sql`now() + ${`${leaseMs} milliseconds`}::interval` })
      .where(and(eq(importSessions.id, session.id), eq(importSessions.attempt, session.attempt)))
      .returning({ id: importSessions.id });
    return renewed.length > 0;
  }

  const released = RELEASED;

  /**
   * Stage 3: validation, which also computes the rest of the preview (actions, users, groups)
   * in the same pass, range by range. A file without errors goes straight on to the review.
   */
  async function runValidateStep(session: ImportSession): Promise<void> {
    // Read before computing: a change landing meanwhile makes the preview look stale.
    const usersVersion = await currentUsersVersion(db, session.companyId);
    const groups = await groupSql(db, session);
    const rangeDone = await startProgress(session, 'VALIDATING', session.rowCount);
    const counts = await validateRows(db, session, {
      groups,
      pace,
      // The embedded database runs one statement at a time.
      lanes: isEmbedded(db) ? 1 : VALIDATION_LANES,
      onRange: rangeDone,
    });
    await releasePreview(
      session,
      { usersVersion, rulesHash: groups.rulesHash },
      {
        ...(counts.invalid === 0 ? { stage: 'REVIEW' as const } : {}),
        validRowCount: counts.valid,
        invalidRowCount: counts.invalid,
      },
    );
  }

  /** Ends a preview step: released, or queued again when what it used moved meanwhile. */
  async function releasePreview(
    session: ImportSession,
    basis: PreviewBasis,
    values: Partial<ImportSession> = {},
  ): Promise<void> {
    if (!(await releasePreviewStep(db, session, basis, values))) throw new LostClaimError();
    publish(session.id);
  }

  /**
   * Shows the phase at once (not only after the first range), and returns what reports each
   * range done (inPacedRowRanges calls it one at a time, in order). Throws LostClaimError once
   * the claim is lost.
   */
  async function startProgress(
    session: ImportSession,
    phase: ImportProgress['phase'],
    total: number | null,
  ): Promise<(rows: number) => Promise<void>> {
    await updateClaimed(session, { progress: { phase, done: 0, total } });
    let done = 0;
    return async (rows) => {
      done += rows;
      if (!(await updateClaimed(session, { progress: { phase, done, total } }))) {
        throw new LostClaimError();
      }
    };
  }

  /**
   * Runs a set-based step range by range, in row order and at the pace's size, reporting
   * progress after each, so that followers see it move (one statement over a million rows is
   * silent for tens of seconds). Stops when the claim is lost.
   */
  async function byRowRanges(
    session: ImportSession,
    phase: ImportProgress['phase'],
    rows: { validOnly: boolean },
    work: (range: RowRange) => Promise<void>,
  ): Promise<void> {
    // The session's counts (staging wrote rowCount, validation the valid ones) give the
    // total at once; the ranges are found as they go.
    const total = rows.validOnly ? session.validRowCount : session.rowCount;
    const rangeDone = await startProgress(session, phase, total);
    await inPacedRowRanges(db, session.id, rows, pace, work, { report: rangeDone });
  }

  /**
   * Stages 4 and 5: validation computed the preview; these recompute what moved since. Users
   * changed: actions, users and groups again; only the rules: the groups.
   */
  async function refreshPreview(
    session: ImportSession,
    phase: ImportProgress['phase'],
  ): Promise<void> {
    // The users' version before computing; the rules with their own hash, once for every range.
    const usersVersion = await currentUsersVersion(db, session.companyId);
    const groups = await groupSql(db, session);
    const basis = { usersVersion, rulesHash: groups.rulesHash };
    const previous = session.previewBasis;
    const usersMoved = previous?.usersVersion !== basis.usersVersion;
    if (usersMoved || previous?.rulesHash !== basis.rulesHash) {
      await byRowRanges(session, phase, { validOnly: true }, (range) =>
        usersMoved
          ? writePreview(db, session, { range, validate: false, groups })
          : assignGroups(db, session, groups, range),
      );
    }
    await releasePreview(session, basis);
  }

  async function runCommitStep(session: ImportSession): Promise<void> {
    await updateClaimed(session, {
      progress: { phase: 'COMMITTING', done: 0, total: session.validRowCount },
    });
    // The commit is one transaction; on Postgres its progress is written from another
    // connection as it goes. The embedded database has one connection, which the
    // transaction holds: its commit reports nothing until it ends.
    const onProgress = isEmbedded(db)
      ? undefined
      : async (done: number, total: number) => {
          const progress = { phase: 'COMMITTING' as const, done, total };
          if (!(await updateClaimed(session, { progress }))) throw new LostClaimError();
        };
    try {
      const result = await commitImport(db, session, { pace, onProgress });
      if (!result) throw new LostClaimError();
      publish(session.id);
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      // Rolled back whole: users changed since validation so that a reference now clashes.
      await updateClaimed(session, {
        ...released,
        stage: 'FAILED',
        failure: {
          code: 'USER_CONFLICT',
          message:
            "The company's users changed while this import was open, and a reference in the file now belongs to another user. Nothing was imported; start the import again.",
        },
      });
    }
  }

  /**
   * revertImport's background work: one transaction (revert.ts), like the commit. The import
   * stays committed if the revert fails (rolled back whole): COMPLETED, with a failure that
   * says so, never FAILED (which would say that nothing was imported).
   */
  async function runRevertStep(session: ImportSession): Promise<void> {
    await updateClaimed(session, { progress: { phase: 'REVERTING', done: 0, total: null } });
    let reverted: Awaited<ReturnType<typeof revertImport>>;
    try {
      reverted = await revertImport(db, session);
    } catch (error) {
      if (error instanceof StaleClaimError) throw error;
      logger.error('import revert failed', { sessionId: session.id, error: String(error) });
      await updateClaimed(session, {
        ...released,
        failure: {
          code: 'REVERT_FAILED',
          message:
            'The revert could not be done and nothing was reverted (the users may have changed meanwhile). Try it again; if it fails again, contact your operator.',
        },
      });
      return;
    }
    if (!reverted) throw new LostClaimError();
    publish(session.id);
  }

  async function runUploadStep(session: ImportSession, abort: AbortController): Promise<void> {
    let progressWrite: Promise<void> = Promise.resolve();
    const pacer = new ProgressPacer<ImportProgress>(PROGRESS_INTERVAL_MS, (progress) => {
      progressWrite = progressWrite.then(async () => {
        if (!(await updateClaimed(session, { progress }))) abort.abort(new LostClaimError());
      });
    });
    const onProgress = (progress: ImportProgress) => pacer.report(progress);
    try {
      // The worker thread takes a moment to start: show at once that the read has begun.
      await updateClaimed(session, {
        progress: { phase: 'INFLATING', done: 0, total: session.fileSize },
      });
      const fields = await listUserFields(db, session.companyId);
      const result = await readUpload(db, session, {
        fields,
        limits: {
          maxRows: config.MAX_ROWS,
          maxColumns: 500,
          maxInflatedBytes: config.MAX_INFLATED_BYTES,
          maxStagedBytes: config.MAX_STAGED_BYTES,
          maxEntries: 10_000,
          timeBudgetMs: config.READ_TIME_LIMIT_MS,
        },
        onProgress,
        signal: abort.signal,
      });
      pacer.stop();
      await progressWrite;
      await updateClaimed(
        session,
        needsColumnDecisions(result.columns)
          ? {
              ...released,
              columns: result.columns,
              rowCount: result.rowCount,
              sheets: result.sheets,
              stage: 'CUSTOM_FIELDS',
            }
          : {
              ...queued('VALIDATE'),
              columns: result.columns,
              rowCount: result.rowCount,
              sheets: result.sheets,
              stage: 'VALIDATION',
            },
      );
    } catch (error) {
      pacer.stop();
      await progressWrite.catch(() => {});
      if (abort.signal.aborted) throw new LostClaimError();
      if (!(error instanceof WorkbookReadError)) throw error;
      // Checked against the claim with the rows' deletion: a stale process must not delete
      // the rows of the one that took over.
      if (
        !(await failClaimedStep(
          db,
          session,
          { code: error.code, message: error.message },
          { rowCount: 0 },
        ))
      ) {
        throw new LostClaimError();
      }
      publish(session.id);
    }
  }

  async function runClaimed(session: ImportSession): Promise<void> {
    const abort = new AbortController();
    current = abort;
    // stop() may have come while this claim was being made: hand the session back at once.
    if (stopped) abort.abort(new LostClaimError());
    // Not for the commit on the embedded database: its one connection is the transaction's,
    // and each follower's reload would wait for it.
    heartbeat =
      (session.step === 'COMMIT' || session.step === 'REVERT') && isEmbedded(db)
        ? null
        : new Heartbeat(HEARTBEAT_MS, () => events.publishSessionUpdated(session.id));
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
    try {
      switch (session.step) {
        case 'READ':
          await runUploadStep(session, abort);
          break;
        case 'VALIDATE':
          await runValidateStep(session);
          break;
        case 'REVIEW':
          await refreshPreview(session, 'REVIEWING');
          break;
        case 'ASSIGN':
          await refreshPreview(session, 'ASSIGNING');
          break;
        case 'COMMIT':
          await runCommitStep(session);
          break;
        case 'REVERT':
          await runRevertStep(session);
          break;
      }
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
      // A step that queued the next one itself (the read, validation) passes its request on.
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
