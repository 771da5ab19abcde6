/**
 * Keeps followers hearing from a step while it runs. Each time the session is published,
 * `published()` restarts the wait; when `intervalMs` pass without a publish, `beat` is called
 * (the worker publishes the session again, as it stands) and the wait starts over.
 *
 * Steps report progress as they go (the read every 150 ms, the set-based steps after each
 * range of ~125 ms), but some statements cannot report (the duplicate check that validation
 * waits for, the counts at its end), and the read's reports come from a niced thread that
 * waits for the CPU when both cores are busy: at a million rows followers then heard nothing
 * for 300–500 ms. A beat carries the same progress as the last report: the step is alive and
 * still at that point.
 */
export class Heartbeat {
  private readonly timer: NodeJS.Timeout;
  private stopped = false;

  constructor(
    intervalMs: number,
    private readonly beat: () => void,
  ) {
    this.timer = setTimeout(() => this.onTimeout(), intervalMs);
    // A beat never keeps the process alive.
    this.timer.unref();
  }

  /** The session was just published: the next beat is due `intervalMs` from now. */
  published(): void {
    if (!this.stopped) this.timer.refresh();
  }

  /** The step is over: no more beats. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private onTimeout(): void {
    if (this.stopped) return;
    this.beat();
    this.timer.refresh();
  }
}
