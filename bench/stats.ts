/** The value below which `fraction` of the samples lie (nearest rank); NaN without samples. */
export function percentile(samples: readonly number[], fraction: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1));
  return sorted[rank] as number;
}

export const median = (samples: readonly number[]) => percentile(samples, 0.5);
export const p95 = (samples: readonly number[]) => percentile(samples, 0.95);

export function maximum(samples: readonly number[]): number {
  return samples.length === 0 ? Number.NaN : Math.max(...samples);
}

/** Milliseconds rounded for a table or JSON: one decimal below 10, whole above. */
export function round(ms: number): number {
  if (!Number.isFinite(ms)) return ms;
  return Math.abs(ms) < 10 ? Math.round(ms * 10) / 10 : Math.round(ms);
}

/** The load average over 1, 5 and 15 minutes, as /proc/loadavg gives it. */
export async function loadAverage(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  const text = await readFile('/proc/loadavg', 'utf8').catch(() => '');
  return text.split(' ').slice(0, 3).join(' ');
}
