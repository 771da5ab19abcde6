import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import { tooLargeStaged } from './errors.js';
import { readWorkbook, WorkbookReadError } from './read-workbook.js';
import { READER_NICENESS, type ReadWorkerJob, type ReadWorkerMessage } from './reader-messages.js';
import { toRowsBatch } from './rows-batch.js';

/**
 * The worker thread started by reader-thread.ts: posts 'started' once loaded, then reads the
 * one workbook the parent's 'read' message names and posts its events. A crash here (out of
 * memory, an exception exceljs throws outside the read) ends only this thread; the parent
 * turns it into a WorkbookReadError.
 */

const port = parentPort;
if (!port)
  throw new Error('reader-thread-entry.ts runs only as a worker thread: use readWorkbookInWorker.');

function post(message: ReadWorkerMessage): void {
  port?.postMessage(message);
}

// Waiting for acks keeps rows from piling up in the parent when it stages them slower than
// they are read.
let pendingBatches = 0;
let onAck: (() => void) | undefined;
let reading = false;
port.on('message', (message: ReadWorkerJob | 'ack') => {
  if (message === 'ack') {
    pendingBatches -= 1;
    onAck?.();
  } else if (message.type === 'read' && !reading) {
    reading = true;
    void read(message);
  }
});

async function read({ filePath, limits, maxPendingBatches }: ReadWorkerJob): Promise<void> {
  // One shared string can fill many cells: the bytes staged, not the file's size, are bounded.
  let stagedBytes = 0;
  try {
    for await (const event of readWorkbook(filePath, limits)) {
      if (event.type !== 'rows') {
        post({ type: 'event', event });
        continue;
      }
      const batch = toRowsBatch(event.rows);
      stagedBytes += batch.bytes;
      if (limits.maxStagedBytes !== undefined && stagedBytes > limits.maxStagedBytes) {
        throw tooLargeStaged(limits.maxStagedBytes);
      }
      post({ type: 'event', event: { type: 'rows', batch } });
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
    port?.removeAllListeners('message');
  }
}

/**
 * The reader yields the CPU to requests. On two cores the reader thread, the main thread
 * (staging its rows, answering requests) and Postgres share them while a file is read; at
 * normal priority a `{ viewer }` query waited for the reader (bench, 100k rows: p95 27 ms
 * during the read, 6 ms idle; niced: 17 ms), and the read was no faster for it. Linux lets
 * a thread lower its own priority without privileges; where there is no /proc/thread-self
 * (not Linux), or the call fails, the reader runs at normal priority.
 */
function lowerReaderPriority(): void {
  try {
    const threadId = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isSafeInteger(threadId) && threadId > 0) setPriority(threadId, READER_NICENESS);
  } catch {
    // Not Linux: nothing to do.
  }
}

lowerReaderPriority();

// Loaded (tsx has compiled the reader and exceljs): a spare worker is now ready at once.
post({ type: 'started' });
