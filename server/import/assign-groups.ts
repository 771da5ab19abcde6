import { type SQL, sql } from 'drizzle-orm';
import type { Database } from '../../drizzle/client.js';
import type { ImportColumn } from '../../drizzle/tables.js';
import { cellSql, columnOf, customColumns } from './columns.js';
import { inRangeSql, type RowRange } from './row-ranges.js';

/** A rule's test of a value, ignoring case, as `ruleMatches` in TypeScript. */
const RULE_MATCHES = sql`case dr.operator
  when 'EQUALS' then lower(field_value) = lower(dr.value)
  when 'NOT_EQUALS' then lower(coalesce(field_value, '')) <> lower(dr.value)
  when 'CONTAINS' then strpos(lower(field_value), lower(dr.value)) > 0
  when 'STARTS_WITH' then left(lower(field_value), length(dr.value)) = lower(dr.value)
  when 'ENDS_WITH' then right(lower(field_value), length(dr.value)) = lower(dr.value)
end`;

/** The value a rule tests: the file's cell, or the existing user's stored value when blank. */
function fieldValueSql(columns: ImportColumn[]): SQL {
  const stored: Record<string, SQL> = {
    email: sql`u.email`,
    userName: sql`u.user_name`,
    reference: sql`u.reference`,
  };
  const branches = [
    ...['email', 'userName', 'reference'].map(
      (key) =>
        sql`when ${key}::text then coalesce(${cellSql(columnOf(columns, key))}, ${stored[key]})`,
    ),
    ...customColumns(columns).map(
      (column) =>
        sql`when ${column.fieldKey}::text then coalesce(${cellSql(column)}, u.custom_values ->> ${column.fieldKey}::text)`,
    ),
  ];
  return sql`case dr.field_key ${sql.join(branches, sql` `)} else u.custom_values ->> dr.field_key end`;
}

/**
 * Stage 5: the company's rules, in order, first match wins, give each valid row a group, in one
 * statement. New users get the rule's group; existing users keep theirs unless they have none.
 * Recomputed whenever rules change while the session is at this stage. `range` limits it to
 * some rows; without it, all of them.
 */
export async function assignGroups(
  db: Database,
  session: { id: string; companyId: string; columns: ImportColumn[] },
  range?: RowRange,
): Promise<void> {
  await db.execute(sql`
    update import_rows target
    set matched_rule_id = assigned.rule_id,
        training_group_id = assigned.group_id
    from (
      select r.row_number,
        first_match.rule_id,
        coalesce(u.training_group_id, first_match.group_id) as group_id
      from import_rows r
      left join users u on u.id = r.user_id
      left join lateral (
        select dr.id as rule_id, dr.training_group_id as group_id
        from distribution_rules dr
        cross join lateral (select ${fieldValueSql(session.columns)} as field_value) tested
        where dr.company_id = ${session.companyId} and ${sql`(${RULE_MATCHES.getSQL()})`.getSQL()}
        order by dr.position
        limit 1
      ) first_match on true
      where r.session_id = ${session.id} and r.errors is null ${inRangeSql(sql`r.row_number`, range)}
    ) assigned
    where target.session_id = ${session.id} and target.row_number = assigned.row_number
      ${inRangeSql(sql`target.row_number`, range)}`);
}
