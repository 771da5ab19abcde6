import { type SQL, sql } from 'drizzle-orm';
import { type Database, queryRows } from '../../drizzle/client.js';

/** Staged rows from row number `from` to `to`, both included. */
export interface RowRange {
  from: number;
  to: number;
}

/** `and <column> between from and to`, or nothing for the whole session. */
export function inRangeSql(rowNumber: SQL, range?: RowRange): SQL {
  return range ? sql`and ${rowNumber} between ${range.from}::int and ${range.to}::int` : sql``;
}

/**
 * Joins to each staged row `r` its preview `p` (import_row_previews), by primary key. The range
 * is stated on both sides: Postgres carries an equality across a join but not a range, and
 * without it each range's statement read the previews of the whole session (a commit of 100k
 * rows: 2.8 s became 4.7 s).
 */
export function previewsJoinSql(range?: RowRange): SQL {
  return sql`join import_row_previews p
    on p.session_id = r.session_id and p.row_number = r.row_number
      ${inRangeSql(sql`p.row_number`, range)}`;
}

/**
 * How the ranges of a step are sized: `rows` per unit range, and with
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

/** What inPacedRowRanges runs beside the calls (see there). */
export interface RangeWalk {
  /** How many calls may run at once; asked before each range is started. */
  lanes?: () => number;
  /** Reports a range's rows once its call has ended, without holding up the next range. */
  report?: (rows: number) => Promise<void>;
}

/**
 * Calls `work` over the session's staged rows (only the valid ones with `validOnly`, by their
 * preview) in consecutive ranges, in row order, with how many rows each holds; returns how
 * many rows there were in all. Each range is found when it is needed, by a keyset step on the
 * primary key from the end of the one before (an index scan of the range's rows): nothing scans
 * all the rows before the first call, which at a million rows took over a second of silence.
 *
 * The first range holds one unit (`pace.rows` rows); with `pace.targetMs`, each next one as
 * many units as fit in that time by how long the last call took. A step that reports progress
 * after each call then reports about as often on a slow machine as on a fast one, and a
 * statement stays short whatever the rows cost.
 *
 * With `lanes`, as many calls may run at once (asked before each range is started; default
 * one: each call starts when the one before has ended). Calls running at once must not depend
 * on each other's rows. With `report`, each range's rows are reported once its call has ended,
 * without holding up the next range: the reports run one at a time, in the order the calls
 * ended, and the walk returns only once the last has ended. (In a trace of a 100k import,
 * each range of validation and of the commit had waited 3-50 ms for the write before it;
 * timed alone, validating 100k rows took 0.87-0.89 s against 0.92-0.95 s, and in the bench
 * the difference was within its noise.) When a call or a report fails,
 * no further range is started; the calls running are waited for, and the first failure is
 * thrown.
 */
export async function inPacedRowRanges(
  db: Database,
  sessionId: string,
  { validOnly }: { validOnly: boolean },
  pace: RangePace,
  work: (range: RowRange, rows: number) => Promise<void>,
  { lanes = () => 1, report }: RangeWalk = {},
): Promise<number> {
  let units = 1;
  let after = 0; // spreadsheet rows are numbered from 1
  let total = 0;
  const running = new Set<Promise<void>>();
  let failure: { error: unknown } | null = null;
  let reporting: Promise<void> = Promise.resolve();
  const start = (range: RowRange, rows: number) => {
    const started = performance.now();
    const call = work(range, rows).then(
      () => {
        total += rows;
        if (pace.targetMs !== null) {
          units = nextRangeUnits(units, performance.now() - started, pace.targetMs);
        }
        if (report) {
          reporting = reporting
            .then(() => (failure ? undefined : report(rows)))
            .catch((error: unknown) => {
              failure ??= { error };
            });
        }
      },
      (error: unknown) => {
        failure ??= { error };
      },
    );
    const settled = call.finally(() => running.delete(settled));
    running.add(settled);
  };
  while (!failure) {
    while (running.size >= Math.max(1, lanes()) && !failure) await Promise.race(running);
    if (failure) break;
    const [next] = await queryRows<{ from: number | null; to: number | null; rows: number }>(
      db,
      sql`select min(row_number)::int as "from", max(row_number)::int as "to", count(*)::int as rows
          from (
            select row_number from ${validOnly ? sql`import_row_previews` : sql`import_rows`}
            where session_id = ${sessionId} and row_number > ${after}::int
              ${validOnly ? sql`and errors is null` : sql``}
            order by row_number
            limit ${units * pace.rows}::int
          ) next_range`,
    ).catch((error: unknown) => {
      failure ??= { error };
      return [];
    });
    if (failure || !next || next.from === null || next.to === null || next.rows === 0) break;
    start({ from: next.from, to: next.to }, next.rows);
    after = next.to;
  }
  await Promise.all(running);
  await reporting;
  if (failure) throw (failure as { error: unknown }).error;
  return total;
}
