import { Worker } from 'node:worker_threads';
import {
  corruptFileError,
  type ReadLimits,
  timeLimitError,
  WorkbookReadError,
} from './read-workbook.js';
import type { ReaderEvent, ReadWorkerJob, ReadWorkerMessage } from './reader-messages.js';

export { READER_NICENESS, type ReaderEvent } from './reader-messages.js';

export interface ReadWorkerOptions {
  /** The worker's V8 heap limit (`resourceLimits.maxOldGenerationSizeMb`), default 512. */
  maxOldGenerationSizeMb?: number;
}

const DEFAULT_MAX_OLD_GENERATION_SIZE_MB = 512;
/** 'rows' events in flight before the worker waits for `onEvent` to catch up. */
const MAX_PENDING_BATCHES = 4;
/** The worker reports its own TIME_LIMIT; this much later it is terminated instead. */
const TERMINATION_GRACE_MS = 2000;

/**
 * Node 20 applies neither the parent's tsx loader nor `--import tsx` in `execArgv` to a
 * worker's entry module, so the worker starts from this script: it registers tsx's ESM
 * loader in the worker thread, then imports the TypeScript entry. Works the same under
 * `tsx server/main.ts` and under vitest (which loads TypeScript only in its own runner).
 */
const WORKER_BOOTSTRAP = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then(({ register }) => {
  register();
  return import(${JSON.stringify(new URL('./reader-thread-entry.ts', import.meta.url).href)});
});`;

function startReader(maxOldGenerationSizeMb: number): Worker {
  return new Worker(WORKER_BOOTSTRAP, {
    eval: true,
    // The parent's flags (tsx's own loader among them) do not help the worker.
    execArgv: [],
    resourceLimits: { maxOldGenerationSizeMb },
  });
}

/** A reader started ahead of the next read (see keepReaderWarm), and whether it has loaded. */
interface SpareReader {
  worker: Worker;
  started: boolean;
  /** Removes the listeners it had while waiting. */
  detach(): void;
}
let spare: SpareReader | null = null;
let keepingWarm = false;

function prepareSpare(): void {
  if (!keepingWarm || spare) return;
  const worker = startReader(DEFAULT_MAX_OLD_GENERATION_SIZE_MB);
  // A waiting spare does not keep the process alive.
  worker.unref();
  const onMessage = (message: ReadWorkerMessage) => {
    if (message.type === 'started') reader.started = true;
  };
  // A spare that fails is dropped, not replaced: the next read starts its own and reports why.
  const drop = () => {
    reader.detach();
    if (spare === reader) spare = null;
  };
  const reader: SpareReader = {
    worker,
    started: false,
    detach: () => {
      worker.off('message', onMessage);
      worker.off('error', drop);
      worker.off('exit', drop);
    },
  };
  worker.on('message', onMessage);
  worker.on('error', drop);
  worker.on('exit', drop);
  spare = reader;
}

/**
 * Keeps one reader worker started ahead of the next read, and another after each read: a
 * worker takes ~0.6 s to start (tsx compiles the reader, exceljs loads), during which the
 * import it reads for could report nothing. For a server; returns the function that stops it
 * (and ends the spare). A spare costs an idle thread's memory (~40 MB).
 */
export function keepReaderWarm(): () => Promise<void> {
  keepingWarm = true;
  prepareSpare();
  return async () => {
    keepingWarm = false;
    const reader = spare;
    spare = null;
    reader?.detach();
    await reader?.worker.terminate();
  };
}

/** The spare reader, if one is ready for these options; the caller owns it then. */
function takeSpare(maxOldGenerationSizeMb: number): SpareReader | null {
  const reader = spare;
  if (!reader || maxOldGenerationSizeMb !== DEFAULT_MAX_OLD_GENERATION_SIZE_MB) return null;
  spare = null;
  reader.detach();
  reader.worker.ref();
  return reader;
}

/**
 * Runs readWorkbook in a worker thread with a heap limit, handing each event to `onEvent`
 * in order, the rows of each 'rows' event as one JSON text (RowsBatch). If `onEvent` returns
 * a promise, the next event waits for it, and the worker stops reading while several 'rows'
 * events are still being handled (the time it waits counts against the time budget).
 * 'progress' events are the exception: they are handed over as they arrive, without waiting
 * for the events before them, so a follower hears of the read while batches are being
 * staged; `onEvent` should not await anything for them.
 *
 * Rejects with a WorkbookReadError for anything wrong with the file, including a worker
 * that runs out of memory (RESOURCE_LIMIT), crashes (CORRUPT_FILE) or overruns the time
 * budget (TIME_LIMIT; it is terminated). On abort the worker is terminated, no further event
 * is handled, and the promise rejects with `signal.reason` once the event being handled has
 * ended, so no write of this read is still running then; if `onEvent` throws, with that
 * error. A worker that cannot even start is a deployment bug and rejects with a plain Error.
 */
export async function readWorkbookInWorker(
  filePath: string,
  limits: ReadLimits,
  onEvent: (event: ReaderEvent) => void | Promise<void>,
  signal?: AbortSignal,
  options: ReadWorkerOptions = {},
): Promise<void> {
  signal?.throwIfAborted();
  const job: ReadWorkerJob = {
    type: 'read',
    filePath,
    limits,
    maxPendingBatches: MAX_PENDING_BATCHES,
  };
  const maxOldGenerationSizeMb =
    options.maxOldGenerationSizeMb ?? DEFAULT_MAX_OLD_GENERATION_SIZE_MB;
  const taken = takeSpare(maxOldGenerationSizeMb);
  const worker = taken?.worker ?? startReader(maxOldGenerationSizeMb);

  return new Promise<void>((resolve, reject) => {
    let started = taken?.started ?? false;
    let settled = false;
    let aborted = false;
    // Messages are handled one at a time, in order, each after the previous onEvent.
    let handling = Promise.resolve();

    const timer = setTimeout(() => {
      settle(timeLimitError(limits.timeBudgetMs));
    }, limits.timeBudgetMs + TERMINATION_GRACE_MS);
    const onAbort = () => {
      aborted = true;
      void worker.terminate();
      handling = handling.then(() => settle(signal?.reason));
    };
    signal?.addEventListener('abort', onAbort, { once: true });

    function settle(error?: unknown): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      void worker.terminate();
      prepareSpare();
      if (error === undefined) resolve();
      else reject(error);
    }

    async function handle(message: ReadWorkerMessage): Promise<void> {
      if (message.type === 'event') {
        await onEvent(message.event);
        if (message.event.type === 'rows') worker.postMessage('ack');
      } else if (message.type === 'done') {
        settle();
      } else if (message.type === 'failed') {
        settle(new WorkbookReadError(message.code, message.message, message.details));
      }
    }

    worker.on('message', (message: ReadWorkerMessage) => {
      if (message.type === 'started') started = true;
      if (message.type === 'event' && message.event.type === 'progress') {
        // Progress is handed over as it arrives, ahead of the row batches still waiting to be
        // staged (up to MAX_PENDING_BATCHES): behind them, followers heard nothing for 0.6 s.
        if (!settled && !aborted) {
          Promise.resolve(onEvent(message.event)).catch((error: unknown) => settle(error));
        }
        return;
      }
      handling = handling
        .then(() => (settled || aborted ? undefined : handle(message)))
        .catch((error: unknown) => settle(aborted ? signal?.reason : error));
    });
    worker.on('error', (error: Error & { code?: string }) => {
      if (!started) {
        settle(new Error('The workbook reader worker failed to start.', { cause: error }));
      } else if (error.code === 'ERR_WORKER_OUT_OF_MEMORY') {
        settle(
          new WorkbookReadError(
            'RESOURCE_LIMIT',
            'Reading the file needed more memory than an import may use. Remove unused sheets, images or formatting, or split the users over several files.',
            { reason: error.message },
          ),
        );
      } else {
        settle(corruptFileError(error.message));
      }
    });
    // After the messages posted before it, which may still be waiting on onEvent.
    worker.on('exit', (exitCode) => {
      handling = handling.then(() =>
        settle(corruptFileError(`the reader exited with code ${exitCode}`)),
      );
    });
    // Queued until the worker has loaded, if it has not yet.
    worker.postMessage(job);
  });
}
