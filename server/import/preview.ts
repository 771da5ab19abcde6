import { eq, sql } from 'drizzle-orm';
import type { Database } from '../../drizzle/client.js';
import { type ImportColumn, importRowPreviews } from '../../drizzle/tables.js';
import type { GroupSql } from './assign-groups.js';
import { cellSql, columnOf } from './columns.js';
import { actionSql } from './review.js';
import { inRangeSql, previewsJoinSql, type RowRange } from './row-ranges.js';
import { duplicatesJoinSql, emailKeySql, rowErrorsSql } from './validation.js';

export interface PreviewOptions {
  /** Only these rows; without it, all of the session's. */
  range?: RowRange;
  /**
   * Check the rows first (stage 3), with the duplicates findDuplicateRows recorded so far;
   * otherwise their errors stay as validation left them and only actions, users and groups
   * are recomputed. Without `onlyDuplicates`, this is the rows' first preview, inserted: the
   * rows must have none (clearPreviews, at the start of validation).
   */
  validate: boolean;
  /**
   * Only the rows findDuplicateRows recorded: validation's last statement, once the
   * duplicate check that ran beside the ranges is done.
   */
  onlyDuplicates?: boolean;
  /**
   * Only these rows, whose previews exist (rows fixed in place, see row-edits.ts); null: all
   * of the session's. Either way the previews are updated, not inserted.
   */
  rowNumbers?: number[] | null;
  /** The company's rules as SQL (groupSql), read once for all the ranges of a step. */
  groups: GroupSql;
}

/** Deletes a session's previews: validation starts over, and inserts them again. */
export async function clearPreviews(db: Database, sessionId: string): Promise<void> {
  await db.delete(importRowPreviews).where(eq(importRowPreviews.sessionId, sessionId));
}

/**
 * Writes the preview of an import's staged rows in one statement: each row's errors
 * (validation), its action and the existing user it updates (review), and the group the rules
 * give it (group assignment). A row with errors is SKIP, with no user and no group. Validation
 * computes all of it in one pass and inserts it (import_row_previews), so that the review and
 * the group preview that follow have nothing left to do unless the users or rules change
 * meanwhile (see preview-basis.ts); those later passes update only the previews that change.
 */
export async function writePreview(
  db: Database,
  session: { id: string; companyId: string; columns: ImportColumn[] },
  options: PreviewOptions,
): Promise<void> {
  const { groups, range } = options;
  const firstPreview =
    options.validate && !options.onlyDuplicates && options.rowNumbers === undefined;
  const rows = firstPreview
    ? sql`select r.session_id, r.row_number, r.cells, r.problems, d.first_email_row, d.first_reference_row,
            null::jsonb as old_errors, null::text as old_action, null::uuid as old_user_id,
            null::uuid as old_rule_id, null::uuid as old_group_id
          from import_rows r ${duplicatesJoinSql()}
          where r.session_id = ${session.id} ${inRangeSql(sql`r.row_number`, range)}`
    : sql`select r.session_id, r.row_number, r.cells, r.problems,
            ${options.validate ? sql`d.first_email_row, d.first_reference_row,` : sql``}
            p.errors as old_errors, p.action as old_action, p.user_id as old_user_id,
            p.matched_rule_id as old_rule_id, p.training_group_id as old_group_id
          from import_rows r
          ${previewsJoinSql(range)}
          ${options.validate ? duplicatesJoinSql() : sql``}
          where r.session_id = ${session.id} ${inRangeSql(sql`r.row_number`, range)}
            ${options.onlyDuplicates ? sql`and d.row_number is not null` : sql``}
            ${options.rowNumbers ? sql`and r.row_number = any(${sql`${`{${options.rowNumbers.join(',')}}`}::int[]`})` : sql``}`;
  const computed = sql`
    with checked as materialized (
      -- Materialized: the errors are computed once per row, not once per use below.
      select r.*, ${options.validate ? rowErrorsSql(session) : sql`r.old_errors`} as new_errors
      from (${rows}) r
    ),
    previewed as materialized (
      select r.row_number, r.new_errors as errors,
        r.old_errors, r.old_action, r.old_user_id, r.old_rule_id, r.old_group_id,
        case when r.new_errors is null then ${actionSql(session.columns)} else 'SKIP' end as action,
        u.id as user_id,
        case when r.new_errors is null then ${groups.ruleId} end as rule_id,
        u.training_group_id as user_group_id
      from checked r
      -- A lookup per row by the unique index: a hash join would read all the company's users
      -- for every range (a million users: 3 s a range of 10,000 rows). LIMIT keeps the
      -- planner from turning the lookup back into a join, as it does when the users table
      -- has no statistics yet (right after a big commit).
      left join lateral (
        select * from users u
        where r.new_errors is null
          and u.company_id = ${session.companyId}
          and lower(u.email) = ${emailKeySql(cellSql(columnOf(session.columns, 'email')))}
        limit 1
      ) u on true
    ),
    -- The group from the rule found above (previewed is materialized: the rules are tested
    -- once a row).
    grouped as (
      select p.*,
        case when p.errors is null then ${groups.groupOf(sql`p.rule_id`, sql`p.user_group_id`)} end as group_id
      from previewed p
    )`;
  if (firstPreview) {
    await db.execute(sql`${computed}
      insert into import_row_previews
        (session_id, row_number, errors, action, user_id, matched_rule_id, training_group_id)
      select ${session.id}::uuid, p.row_number, p.errors, p.action, p.user_id, p.rule_id, p.group_id
      from grouped p`);
    return;
  }
  await db.execute(sql`${computed}
    update import_row_previews target
    set errors = p.errors, action = p.action, user_id = p.user_id,
        matched_rule_id = p.rule_id, training_group_id = p.group_id
    from grouped p
    where target.session_id = ${session.id} and target.row_number = p.row_number
      ${inRangeSql(sql`target.row_number`, range)}
      and (p.old_errors is distinct from p.errors
        or p.old_action is distinct from p.action
        or p.old_user_id is distinct from p.user_id
        or p.old_rule_id is distinct from p.rule_id
        or p.old_group_id is distinct from p.group_id)`);
}
