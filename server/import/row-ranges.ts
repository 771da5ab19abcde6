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
