import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ProgressPacer } from '../../server/import/steps/progress-pacer.js';

describe('ProgressPacer', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('writes at most once an interval, and writes a report that came too soon when the interval ends', () => {
    const written: [number, number][] = [];
    const pacer = new ProgressPacer<number>(100, (done) => written.push([Date.now(), done]));
    pacer.report(1);
    vi.advanceTimersByTime(60);
    pacer.report(2);
    vi.advanceTimersByTime(20);
    pacer.report(3); // replaces 2: the latest is written
    vi.advanceTimersByTime(20);
    expect(written).toEqual([
      [0, 1],
      [100, 3],
    ]);
    vi.advanceTimersByTime(145);
    pacer.report(4); // 145 ms after the last write: at once
    expect(written.at(-1)).toEqual([245, 4]);
  });

  it('writes nothing more once stopped', () => {
    const written: number[] = [];
    const pacer = new ProgressPacer<number>(100, (done) => written.push(done));
    pacer.report(1);
    vi.advanceTimersByTime(50);
    pacer.report(2);
    pacer.stop();
    vi.advanceTimersByTime(500);
    expect(written).toEqual([1]);
  });
});
