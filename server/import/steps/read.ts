import type { ImportProgress } from '../../../drizzle/tables.js';
import { listUserFields } from '../../settings/fields.js';
import { needsColumnDecisions } from '../column-mapping.js';
import { readUpload } from '../read-upload.js';
import { WorkbookReadError } from '../reader/read-workbook.js';
import { ProgressPacer } from './progress-pacer.js';
import { LostClaimError, type StepContext, type StepTransition } from './step.js';

/**
 * Progress is written and published at most this often while the file is read. The reader
 * already paces its events at 150 ms; a second throttle as slow would drop every other one.
 */
const PROGRESS_INTERVAL_MS = 100;

/**
 * Stage 1: reads the uploaded workbook and stages its rows. Columns that need the admin's
 * decision wait at CUSTOM_FIELDS; otherwise validation follows at once. A file that cannot be
 * read fails the import.
 */
export async function runReadStep(context: StepContext): Promise<StepTransition> {
  const { db, session, config } = context;
  // Progress writes run beside the read: one that finds the claim lost stops the read.
  const lost = new AbortController();
  const signal = AbortSignal.any([context.signal, lost.signal]);
  let progressWrite: Promise<void> = Promise.resolve();
  const pacer = new ProgressPacer<ImportProgress>(PROGRESS_INTERVAL_MS, (progress) => {
    progressWrite = progressWrite.then(async () => {
      try {
        await context.report(progress);
      } catch (error) {
        if (!(error instanceof LostClaimError)) throw error;
        lost.abort(error);
      }
    });
  });
  const onProgress = (progress: ImportProgress) => pacer.report(progress);
  try {
    // The worker thread takes a moment to start: show at once that the read has begun.
    await context.report({ phase: 'INFLATING', done: 0, total: session.fileSize });
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
      signal,
    });
    pacer.stop();
    await progressWrite;
    const values = { columns: result.columns, rowCount: result.rowCount, sheets: result.sheets };
    return needsColumnDecisions(result.columns)
      ? { kind: 'release', values: { ...values, stage: 'CUSTOM_FIELDS' } }
      : { kind: 'queue', step: 'VALIDATE', values: { ...values, stage: 'VALIDATION' } };
  } catch (error) {
    pacer.stop();
    await progressWrite.catch(() => {});
    if (signal.aborted) throw new LostClaimError();
    if (!(error instanceof WorkbookReadError)) throw error;
    // A fail, checked against the claim with the rows' deletion: a stale process must not
    // delete the rows of the one that took over.
    return {
      kind: 'fail',
      failure: { code: error.code, message: error.message },
      values: { rowCount: 0 },
    };
  }
}
