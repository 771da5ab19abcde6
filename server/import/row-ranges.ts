import { type SQL, sql } from 'drizzle-orm';
import { type Database, queryRows } from '../../drizzle/client.js';

/** Staged rows from row number `from` to `to`, both included. */
export interface RowRange {
  from: number;
  to: number;
}

/**
 * The session's staged rows (only the valid ones with `validOnly`) cut into consecutive ranges
 * of `size` rows (the last one shorter), with how many rows each holds: a set-based step runs
 * range by range and reports progress after each. One scan of the primary key.
 */
export async function rowRanges(
  db: Database,
  sessionId: string,
  size: number,
  { validOnly }: { validOnly: boolean },
): Promise<{ range: RowRange; rows: number }[]> {
  const ranges = await queryRows<{ from: number; to: number; rows: number }>(
    db,
    sql`select min(row_number)::int as "from", max(row_number)::int as "to", count(*)::int as rows
        from (
          select row_number, (row_number() over (order by row_number) - 1) / ${size}::int as bucket
          from import_rows
          where session_id = ${sessionId} ${validOnly ? sql`and errors is null` : sql``}
        ) numbered
        group by bucket
        order by bucket`,
  );
  return ranges.map(({ from, to, rows }) => ({ range: { from, to }, rows }));
}

/** `and <column> between from and to`, or nothing for the whole session. */
export function inRangeSql(rowNumber: SQL, range?: RowRange): SQL {
  return range ? sql`and ${rowNumber} between ${range.from}::int and ${range.to}::int` : sql``;
}

/**
 * How the ranges of a step are sized: `rows` per unit range (rowRanges' size), and with
 * `targetMs`, consecutive units merged so that one call of the work takes about that long.
 */
export interface RangePace {
  rows: number;
  /** Null: one call per unit range. */
  targetMs: number | null;
}

/**
 * How many unit ranges the next call takes, after `units` of them took `elapsedMs`: scaled
 * toward `targetMs`, at most twice as many as before, and at least one.
 */
export function nextRangeUnits(units: number, elapsedMs: number, targetMs: number): number {
  const scaled = Math.floor((units * targetMs) / Math.max(elapsedMs, 1));
  return Math.max(1, Math.min(units * 2, scaled));
}

/**
 * Calls `work` over consecutive unit ranges (from rowRanges, in row order), merged by the
 * pace: the first call takes one unit, and each next one as many as fit in `targetMs` by the
 * time the last one took. A step that reports progress after each call then reports about as
 * often on a slow machine as on a fast one, and a statement stays short whatever the rows cost.
 */
export async function inPacedRanges(
  units: { range: RowRange; rows: number }[],
  targetMs: number | null,
  work: (range: RowRange, rows: number) => Promise<void>,
): Promise<void> {
  let take = 1;
  for (let index = 0; index < units.length; ) {
    const merged = units.slice(index, index + take);
    const first = merged[0];
    const last = merged[merged.length - 1];
    if (!first || !last) break;
    const started = performance.now();
    await work(
      { from: first.range.from, to: last.range.to },
      merged.reduce((sum, unit) => sum + unit.rows, 0),
    );
    index += merged.length;
    if (targetMs !== null) take = nextRangeUnits(take, performance.now() - started, targetMs);
  }
}
