import type { ReadEvent, ReadLimits, WorkbookReadError } from './read-workbook.js';
import type { RowsBatch } from './rows-batch.js';

/**
 * What reader-thread.ts (the parent) and reader-thread-entry.ts (the worker thread) pass each
 * other, apart from both: the entry must not load the parent's module, nor the parent the entry.
 */

/** The reader thread's nice value, above the rest of the server's (0): see reader-thread-entry.ts. */
export const READER_NICENESS = 10;

/** Parent to worker: the read to do (once), then an 'ack' for each 'rows' event handled. */
export interface ReadWorkerJob {
  type: 'read';
  filePath: string;
  limits: ReadLimits;
  /** 'rows' events posted but not yet handled by the parent before the read pauses. */
  maxPendingBatches: number;
}

/**
 * An event of readWorkbook as the worker posts it: rows as one JSON text a batch (RowsBatch),
 * the others as they are.
 */
export type ReaderEvent = Exclude<ReadEvent, { type: 'rows' }> | { type: 'rows'; batch: RowsBatch };

/** Worker to parent. The parent answers each 'rows' event with 'ack' once it is handled. */
export type ReadWorkerMessage =
  | { type: 'started' }
  | { type: 'event'; event: ReaderEvent }
  | { type: 'done' }
  | {
      type: 'failed';
      code: WorkbookReadError['code'];
      message: string;
      details: Record<string, unknown>;
    };
