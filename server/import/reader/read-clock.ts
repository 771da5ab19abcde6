import { timeLimitError } from './errors.js';

/**
 * How often the read reports progress. Followers are promised an event at least every 250 ms;
 * an event can wait behind the batches still being staged, so the reader reports well within.
 */
const PROGRESS_INTERVAL_MS = 150;
/** How often a wait on yauzl wakes up to check the clock and report progress. */
const TICK_INTERVAL_MS = 50;
export const TICK = Symbol('tick');

/**
 * The time budget, the abort signal and the progress throttle of one read. `withTicks`
 * races each wait on yauzl against a 50 ms ticker, so even while a part inflates slowly the
 * read checks its budget and reports progress. A wait that never ends is the worker's to end: the parent
 * terminates it when the budget has run out.
 */
export class ReadClock {
  private readonly deadline: number;
  private lastProgressAt = Date.now();
  /** The waits the next tick ends (see raceTick). */
  private readonly tickWaiters = new Set<() => void>();
  private readonly ticker: NodeJS.Timeout;

  constructor(
    private readonly timeBudgetMs: number,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.deadline = Date.now() + timeBudgetMs;
    this.ticker = setInterval(() => {
      for (const wake of this.tickWaiters) wake();
      this.tickWaiters.clear();
    }, TICK_INTERVAL_MS);
    this.ticker.unref();
  }

  /**
   * `pending`'s outcome, or TICK if the ticker fires first. Not `Promise.race` with one
   * promise per tick: each race leaves a reaction on that promise until it settles, keeping
   * the race's result (a chunk of parsed rows) alive for up to a tick; at 50 ms that was
   * enough for the rows to outlive young-generation collections, and garbage collection took
   * 10 s of a 30 s read of a million rows.
   */
  private raceTick<T>(pending: Promise<T>): Promise<T | typeof TICK> {
    return new Promise((resolve, reject) => {
      const wake = () => resolve(TICK);
      this.tickWaiters.add(wake);
      pending.then(
        (value) => {
          this.tickWaiters.delete(wake);
          resolve(value);
        },
        (error: unknown) => {
          this.tickWaiters.delete(wake);
          reject(error);
        },
      );
    });
  }

  check(): void {
    this.signal?.throwIfAborted();
    if (Date.now() > this.deadline) {
      throw timeLimitError(this.timeBudgetMs);
    }
  }

  /** Waits for `pending`, checking the budget and the abort signal at every tick. */
  async whileWaiting(pending: Promise<void>): Promise<void> {
    while ((await this.raceTick(pending)) === TICK) this.check();
  }

  progressDue(): boolean {
    const now = Date.now();
    if (now - this.lastProgressAt < PROGRESS_INTERVAL_MS) return false;
    this.lastProgressAt = now;
    return true;
  }

  async *withTicks<T>(source: AsyncIterable<T>): AsyncGenerator<T | typeof TICK> {
    const iterator = source[Symbol.asyncIterator]();
    let pending: Promise<IteratorResult<T>> | undefined;
    try {
      while (true) {
        pending ??= iterator.next();
        const result = await this.raceTick(pending);
        if (result === TICK) {
          yield TICK;
          continue;
        }
        pending = undefined;
        if (result.done) return;
        yield result.value;
      }
    } finally {
      if (pending) {
        // The read is being abandoned mid-wait (time limit, abort): nobody wants this result,
        // and closing the iterator would wait for it.
        pending.catch(() => {});
      } else {
        await iterator.return?.();
      }
    }
  }

  stop(): void {
    clearInterval(this.ticker);
  }
}
