/**
 * Paces progress writes: at most one per `intervalMs`. A report that comes sooner is not
 * dropped but kept, and the latest one kept is written when the interval ends, so followers
 * never wait much longer than the interval after a report (dropping it left gaps of almost
 * twice the reader's 150 ms cadence, when its reports came slightly early).
 */
export class ProgressPacer<Progress> {
  private lastWriteAt = Number.NEGATIVE_INFINITY;
  private kept: Progress | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly intervalMs: number,
    private readonly write: (progress: Progress) => void,
  ) {}

  report(progress: Progress): void {
    const wait = this.lastWriteAt + this.intervalMs - Date.now();
    if (wait <= 0) {
      this.stop();
      this.writeNow(progress);
      return;
    }
    this.kept = progress;
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      const kept = this.kept;
      if (kept !== undefined) this.writeNow(kept);
    }, wait);
  }

  /** Drops a report still waiting for its interval: the step is over. */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.kept = undefined;
  }

  private writeNow(progress: Progress): void {
    this.kept = undefined;
    this.lastWriteAt = Date.now();
    this.write(progress);
  }
}
