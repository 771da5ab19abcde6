import { sql } from 'drizzle-orm';
import type { Database } from '../../drizzle/client.js';
import type { ImportColumn } from '../../drizzle/tables.js';
import { cellSql, columnOf, customValuesSql } from './columns.js';
import { inRangeSql, type RowRange } from './row-ranges.js';
import { emailKeySql } from './validate.js';

/**
 * Stage 4: labels each valid row CREATE (no user of the company has its email), UPDATE (the
 * user's values would change) or UNCHANGED, and links it to the existing user. A blank cell
 * never clears a stored value, so it never makes a row an UPDATE. `range` limits it to some
 * rows (the worker goes range by range to report progress); without it, all of them.
 */
export async function labelRowActions(
  db: Database,
  session: { id: string; companyId: string; columns: ImportColumn[] },
  range?: RowRange,
): Promise<void> {
  const userName = cellSql(columnOf(session.columns, 'userName'));
  const reference = cellSql(columnOf(session.columns, 'reference'));
  const email = cellSql(columnOf(session.columns, 'email'));
  await db.execute(sql`
    update import_rows target
    set user_id = labelled.user_id, action = labelled.action
    from (
      select r.row_number, u.id as user_id,
        case
          when u.id is null then 'CREATE'
          when u.user_name is distinct from ${userName}
            or u.reference is distinct from ${reference}
            or not (u.custom_values @> ${customValuesSql(session.columns)}) then 'UPDATE'
          else 'UNCHANGED'
        end as action
      from import_rows r
      left join users u
        on u.company_id = ${session.companyId} and lower(u.email) = ${emailKeySql(email)}
      where r.session_id = ${session.id} and r.errors is null ${inRangeSql(sql`r.row_number`, range)}
    ) labelled
    where target.session_id = ${session.id} and target.row_number = labelled.row_number
      ${inRangeSql(sql`target.row_number`, range)}`);
}
