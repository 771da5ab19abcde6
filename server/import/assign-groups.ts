import { type SQL, sql } from 'drizzle-orm';
import type { Database } from '../../drizzle/client.js';
import type { ImportColumn } from '../../drizzle/tables.js';
import type { DistributionRule } from '../settings/distribution-rules.js';
import { cellSql, columnOf, customColumns } from './columns.js';
import { readRules, rulesHashOf } from './preview-basis.js';
import { inRangeSql, previewsJoinSql, type RowRange } from './row-ranges.js';

/**
 * The value a rule tests, for a staged row `r` and the existing user `u` it updates (null for a
 * new user): the file's cell, or the user's stored value when the cell is blank.
 */
function fieldValueSql(columns: ImportColumn[], fieldKey: string): SQL {
  const stored: Record<string, SQL> = {
    email: sql`u.email`,
    userName: sql`u.user_name`,
    reference: sql`u.reference`,
  };
  const builtIn = stored[fieldKey];
  if (builtIn) return sql`coalesce(${cellSql(columnOf(columns, fieldKey))}, ${builtIn})`;
  const column = customColumns(columns).find((candidate) => candidate.fieldKey === fieldKey);
  const storedCustom = sql`(u.custom_values ->> ${fieldKey}::text)`;
  return column ? sql`coalesce(${cellSql(column)}, ${storedCustom})` : storedCustom;
}

/** A rule's test of a value, ignoring case, as `ruleMatches` in TypeScript. */
function ruleMatchesSql(rule: DistributionRule, value: SQL): SQL {
  const wanted = sql`lower(${rule.value}::text)`;
  switch (rule.operator) {
    case 'EQUALS':
      return sql`lower(${value}) = ${wanted}`;
    case 'NOT_EQUALS':
      return sql`lower(coalesce(${value}, '')) <> ${wanted}`;
    case 'CONTAINS':
      return sql`strpos(lower(${value}), ${wanted}) > 0`;
    case 'STARTS_WITH':
      return sql`left(lower(${value}), ${rule.value.length}::int) = ${wanted}`;
    case 'ENDS_WITH':
      return sql`right(lower(${value}), ${rule.value.length}::int) = ${wanted}`;
  }
}

export interface GroupSql {
  /** The fingerprint of the rules this was written from (see preview-basis.ts). */
  rulesHash: string;
  /** The first matching rule's id, or null. */
  ruleId: SQL;
  /**
   * The group a row gets from the rule id `ruleId` computed it (a column, so the rules are
   * tested once a row) and its existing user's group `userGroupId` (null for a new user): an
   * existing user keeps theirs, else the first match's.
   */
  groupOf(ruleId: SQL, userGroupId: SQL): SQL;
}

/**
 * The company's rules, in order, first match wins, as a CASE expression over a staged row `r`
 * and its existing user `u` that names the rule, and one that maps that rule to its group:
 * written out from the rules as they are now, so a row costs a few comparisons and no lookup.
 * Its `rulesHash` is theirs: a preview records it as its basis.
 */
export async function groupSql(
  db: Database,
  session: { companyId: string; columns: ImportColumn[] },
): Promise<GroupSql> {
  const rules = await readRules(db, session.companyId);
  const rulesHash = rulesHashOf(rules);
  if (rules.length === 0) {
    return { rulesHash, ruleId: sql`null::uuid`, groupOf: (_ruleId, userGroupId) => userGroupId };
  }
  const tests = rules.map(
    (rule) =>
      sql`when ${ruleMatchesSql(rule, fieldValueSql(session.columns, rule.fieldKey))} then ${rule.id}::uuid`,
  );
  const groupOfRule = rules.map(
    (rule) => sql`when ${rule.id}::uuid then ${rule.trainingGroupId}::uuid`,
  );
  return {
    rulesHash,
    ruleId: sql`case ${sql.join(tests, sql` `)} end`,
    groupOf: (ruleId, userGroupId) =>
      sql`coalesce(${userGroupId}, case ${ruleId} ${sql.join(groupOfRule, sql` `)} end)`,
  };
}

/**
 * Stage 5 again, when only the rules changed: gives each valid row the group of the first rule
 * that matches it (`groups`, from groupSql once per step), leaving its action and user as they
 * are. `range` limits it to some rows; without it, all of them. Writes only the rows whose
 * group changes.
 */
export async function assignGroups(
  db: Database,
  session: { id: string },
  groups: GroupSql,
  range?: RowRange,
): Promise<void> {
  await db.execute(sql`
    update import_row_previews target
    set matched_rule_id = assigned.rule_id,
        training_group_id = assigned.group_id
    from (
      select matched.row_number, matched.rule_id,
        ${groups.groupOf(sql`matched.rule_id`, sql`matched.user_group_id`)} as group_id
      from (
        select r.row_number, ${groups.ruleId} as rule_id, u.training_group_id as user_group_id
        from import_rows r
        ${previewsJoinSql(range)}
        -- By primary key, row by row: a hash join would read all the company's users per range
        -- (LIMIT keeps the planner from making it one, see preview.ts).
        left join lateral (select * from users u where u.id = p.user_id limit 1) u on true
        where r.session_id = ${session.id} and p.errors is null ${inRangeSql(sql`r.row_number`, range)}
        -- OFFSET 0 keeps this level apart: merged into the one above, the rules would be
        -- tested again for the group.
        offset 0
      ) matched
    ) assigned
    where target.session_id = ${session.id} and target.row_number = assigned.row_number
      ${inRangeSql(sql`target.row_number`, range)}
      and (target.matched_rule_id is distinct from assigned.rule_id
        or target.training_group_id is distinct from assigned.group_id)`);
}
