import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Heartbeat } from '../../server/jobs/heartbeat.js';

describe('Heartbeat', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('beats once an interval passes without a publish, and again each interval after', () => {
    const beats: number[] = [];
    const heartbeat = new Heartbeat(200, () => beats.push(Date.now()));
    vi.advanceTimersByTime(650);
    expect(beats).toEqual([200, 400, 600]);
    heartbeat.stop();
  });

  it('waits a whole interval after each publish', () => {
    const beats: number[] = [];
    const heartbeat = new Heartbeat(200, () => beats.push(Date.now()));
    vi.advanceTimersByTime(150);
    heartbeat.published();
    vi.advanceTimersByTime(150);
    heartbeat.published();
    vi.advanceTimersByTime(199);
    expect(beats).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(beats).toEqual([500]);
    heartbeat.stop();
  });

  it('beats no more once stopped, even if published after', () => {
    const beats: number[] = [];
    const heartbeat = new Heartbeat(200, () => beats.push(Date.now()));
    vi.advanceTimersByTime(250);
    heartbeat.stop();
    heartbeat.published();
    vi.advanceTimersByTime(1000);
    expect(beats).toEqual([200]);
  });
});
