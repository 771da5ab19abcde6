import { type SQL, sql } from 'drizzle-orm';
import type { ImportColumn } from '../../drizzle/tables.js';
import { cellSql, columnOf, customValuesSql } from './columns.js';

/**
 * Stage 4's label of a valid staged row `r` against the existing user `u` with its email (null
 * when there is none): CREATE (no such user), RESTORE (an archived user, active again with the
 * row's values), UPDATE (the user's values would change) or UNCHANGED. A blank cell never
 * clears a stored value, so it never makes a row an UPDATE.
 */
export function actionSql(columns: ImportColumn[]): SQL {
  return sql`case
    when u.id is null then 'CREATE'
    when u.status = 'ARCHIVED' then 'RESTORE'
    when u.user_name is distinct from ${cellSql(columnOf(columns, 'userName'))}
      or u.reference is distinct from ${cellSql(columnOf(columns, 'reference'))}
      or not (u.custom_values @> ${customValuesSql(columns)}) then 'UPDATE'
    else 'UNCHANGED'
  end`;
}
