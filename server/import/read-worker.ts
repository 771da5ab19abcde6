import { parentPort, workerData } from 'node:worker_threads';
import {
  type ReadEvent,
  type ReadLimits,
  readWorkbook,
  WorkbookReadError,
} from './read-workbook.js';

/**
 * The worker thread started by read-in-worker.ts: reads one workbook and posts its events.
 * A crash here (out of memory, an exception exceljs throws outside the read) ends only this
 * thread; the parent turns it into a WorkbookReadError.
 */

export interface ReadWorkerData {
  filePath: string;
  limits: ReadLimits;
  /** 'rows' events posted but not yet handled by the parent before the read pauses. */
  maxPendingBatches: number;
}

/** Worker to parent. The parent answers each 'rows' event with 'ack' once it is handled. */
export type ReadWorkerMessage =
  | { type: 'started' }
  | { type: 'event'; event: ReadEvent }
  | { type: 'done' }
  | {
      type: 'failed';
      code: WorkbookReadError['code'];
      message: string;
      details: Record<string, unknown>;
    };

const port = parentPort;
if (!port)
  throw new Error('read-worker.ts runs only as a worker thread: use readWorkbookInWorker.');
const { filePath, limits, maxPendingBatches } = workerData as ReadWorkerData;

function post(message: ReadWorkerMessage): void {
  port?.postMessage(message);
}

// Waiting for acks keeps rows from piling up in the parent when it stages them slower than
// they are read.
let pendingBatches = 0;
let onAck: (() => void) | undefined;
port.on('message', (message) => {
  if (message !== 'ack') return;
  pendingBatches -= 1;
  onAck?.();
});

post({ type: 'started' });
try {
  for await (const event of readWorkbook(filePath, limits)) {
    post({ type: 'event', event });
    if (event.type !== 'rows') continue;
    pendingBatches += 1;
    while (pendingBatches >= maxPendingBatches) {
      await new Promise<void>((resolve) => {
        onAck = resolve;
      });
    }
  }
  post({ type: 'done' });
} catch (error) {
  // readWorkbook throws nothing else; anything that does is a crash for the parent to report.
  if (!(error instanceof WorkbookReadError)) throw error;
  post({ type: 'failed', code: error.code, message: error.message, details: error.details });
} finally {
  // The listener would keep the thread alive after the read.
  port.removeAllListeners('message');
}
