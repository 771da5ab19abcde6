import { and, eq, sql } from 'drizzle-orm';
import { type Database, queryRows } from '../../drizzle/client.js';
import {
  type ImportColumn,
  type ImportResult,
  importSessions,
  type PreviewBasis,
} from '../../drizzle/tables.js';
import { groupSql } from './assign-groups.js';
import { cellSql, columnOf, customValuesSql } from './columns.js';
import { writePreview } from './preview.js';
import { bumpUsersVersion, holdPreviewBasis, previewHolds } from './preview-basis.js';
import { imageSql, keepAfterImages, keepBeforeImages } from './revert.js';
import {
  inPacedRowRanges,
  inRangeSql,
  previewsJoinSql,
  type RangePace,
  type RowRange,
} from './row-ranges.js';
import { archiveLeavers, archiveLimitPassedSinceCheck } from './sync-archive.js';
import { nfcSql } from './validation.js';
import { queued, StaleClaimError } from './workflow.js';

export interface CommitTarget {
  id: string;
  companyId: string;
  columns: ImportColumn[];
  /** The claim's attempt: the commit happens only while it is still current. */
  attempt: number;
  /** What the staged preview was computed from (set by validation, review and groups). */
  previewBasis: PreviewBasis | null;
  /** The valid rows validation counted: the total the progress is reported against. */
  validRowCount: number;
  /** SYNC also archives the active users the file does not contain (sync-archive.ts). */
  mode?: 'ADD_AND_UPDATE' | 'SYNC';
  /** A SYNC past the archive limit was acknowledged: the commit archives without a limit. */
  archiveAcknowledged?: boolean;
  /** The limit continueImport checked, checked again if the users changed since. */
  archiveLimitPercent?: number | null;
}

/**
 * What the commit returns instead of a result when users changed after continueImport checked
 * the archive limit, so that the SYNC now passes it: nothing was committed, and the session is
 * back at GROUP_ASSIGNMENT (its preview recomputed first) with its archiveWarning.
 */
export const ARCHIVE_LIMIT_PASSED = 'ARCHIVE_LIMIT_PASSED';

export interface CommitOptions {
  /**
   * How many rows each upsert statement takes (see RangePace); progress is reported after each,
   * without holding up the next (see inPacedRowRanges).
   */
  pace: RangePace;
  /**
   * Called inside the transaction after each range with the valid rows done so far. It may
   * write through another connection (the session row is not locked until the end); on the
   * embedded database, whose one connection the transaction holds, it must not write.
   */
  onProgress?: (done: number, total: number) => Promise<void>;
}

/**
 * The commit: one transaction, serialized per company by an advisory lock, that recomputes the
 * preview if the users or rules changed since it was computed (another import may have
 * committed meanwhile), upserts the valid rows that change something keyed on
 * (company, lower(email)), range by range, and ends the session COMPLETED.
 * Returns null when the claim is no longer current at the start, and throws StaleClaimError
 * (rolling everything back) when it stopped being current meanwhile: a cancellation or a
 * takeover wins until the last statement. A retry after a crash finds either nothing
 * committed or the session already COMPLETED: never half of it. An unacknowledged SYNC that
 * the users changed since continueImport now takes past the archive limit commits nothing and
 * returns ARCHIVE_LIMIT_PASSED.
 */
export async function commitImport(
  db: Database,
  target: CommitTarget,
  options: CommitOptions,
): Promise<ImportResult | typeof ARCHIVE_LIMIT_PASSED | null> {
  return db.transaction(async (tx) => {
    await tx.execute(
      sql`select pg_advisory_xact_lock(hashtext(${`muster.commit:${target.companyId}`}))`,
    );
    // Not locked (FOR UPDATE would hold back progress writes for the whole commit): the
    // closing update below checks the claim again.
    const [current] = await tx
      .select({ id: importSessions.id })
      .from(importSessions)
      .where(isCurrent(target));
    if (!current) return null;
    // Under the lock no other commit of the company runs; holding the basis, no rule or user
    // change lands until this ends: the check cannot go stale, and the rules read are the
    // rules committed.
    await holdPreviewBasis(tx, target.companyId);
    if (!(await previewHolds(tx, target.companyId, target.previewBasis))) {
      // The users may have changed since continueImport checked the archive limit (while
      // the preview held, they had not): the admin must see what the SYNC archives now.
      if (await archiveLimitPassedSinceCheck(tx, target)) {
        const stopped = await tx
          .update(importSessions)
          .set({ ...queued('ASSIGN'), updatedAt: new Date() })
          .where(isCurrent(target))
          .returning({ id: importSessions.id });
        if (stopped.length === 0) throw new StaleClaimError(target.id);
        return ARCHIVE_LIMIT_PASSED;
      }
      await writePreview(tx, target, { validate: false, groups: await groupSql(tx, target) });
    }
    // For revertImport and ImportSession.changes: the users as they were, set-based.
    await keepBeforeImages(tx, target);
    let created = 0;
    let updated = 0;
    let done = 0;
    const { onProgress } = options;
    const total = await inPacedRowRanges(
      tx,
      target.id,
      { validOnly: true },
      options.pace,
      async (range) => {
        const changed = await upsertRange(tx, target, range);
        created += changed.created;
        updated += changed.updated;
      },
      // Every report has ended when the walk returns: none can land after the closing update.
      {
        report: onProgress
          ? async (rows) => {
              done += rows;
              await onProgress(done, target.validRowCount);
            }
          : undefined,
      },
    );
    const archived = await archiveLeavers(tx, target.id);
    await keepAfterImages(tx, target);
    const [counts] = await queryRows<{ invalid: number; restored: number }>(
      tx,
      sql`select count(*) filter (where errors is not null)::int as invalid,
            count(*) filter (where errors is null and action = 'RESTORE')::int as restored
          from import_row_previews where session_id = ${target.id}`,
    );
    if (created + updated + archived > 0) await bumpUsersVersion(tx, target.companyId);
    const restored = counts?.restored ?? 0;
    const result: ImportResult = {
      created,
      updated: updated - restored,
      unchanged: total - created - updated,
      skipped: counts?.invalid ?? 0,
      archived,
      restored,
    };
    const completed = await tx
      .update(importSessions)
      .set({
        stage: 'COMPLETED',
        busy: false,
        progress: null,
        result,
        committedAt: new Date(),
        leaseOwner: null,
        leaseExpiresAt: null,
        updatedAt: new Date(),
      })
      .where(isCurrent(target))
      .returning({ id: importSessions.id });
    if (completed.length === 0) throw new StaleClaimError(target.id);
    return result;
  });
}

/** The session is still at GROUP_ASSIGNMENT under this claim's attempt. */
function isCurrent(target: CommitTarget) {
  return and(
    eq(importSessions.id, target.id),
    eq(importSessions.attempt, target.attempt),
    eq(importSessions.stage, 'GROUP_ASSIGNMENT'),
  );
}

/** One range's upsert; returns how many users it created and updated. */
async function upsertRange(
  tx: Database,
  target: CommitTarget,
  range: RowRange,
): Promise<{ created: number; updated: number }> {
  const email = cellSql(columnOf(target.columns, 'email'));
  const userName = cellSql(columnOf(target.columns, 'userName'));
  const reference = cellSql(columnOf(target.columns, 'reference'));
  const [changed] = await queryRows<{ created: number; updated: number }>(
    tx,
    sql`
    with upserted as (
      insert into users (company_id, email, user_name, reference, custom_values, training_group_id)
      select ${target.companyId}::uuid, ${nfcSql(sql`btrim(${email})`)}, ${userName}, ${reference},
        ${customValuesSql(target.columns)}, p.training_group_id
      from import_rows r
      ${previewsJoinSql(range)}
      where r.session_id = ${target.id} and p.errors is null ${inRangeSql(sql`r.row_number`, range)}
        -- The preview is current (see above): an UNCHANGED row changes nothing, unless its
        -- user has no group yet and a rule gives one. Skipping the rest spares a re-import
        -- of an unchanged file its conflict checks.
        -- (A lookup by primary key, LIMIT keeping it one: as an EXISTS the planner hashed
        -- every user of the company for every range, 0.4 s a range at a million users.)
        and (p.action in ('CREATE', 'UPDATE', 'RESTORE')
          or (p.training_group_id is not null
            and (select u.training_group_id is null from users u where u.id = p.user_id limit 1)))
      on conflict (company_id, lower(email)) do update set
        user_name = excluded.user_name,
        reference = excluded.reference,
        custom_values = users.custom_values || excluded.custom_values,
        training_group_id = coalesce(users.training_group_id, excluded.training_group_id),
        status = 'ACTIVE',
        archived_at = null,
        updated_at = now()
      where users.status = 'ARCHIVED'
        or users.user_name is distinct from excluded.user_name
        or users.reference is distinct from excluded.reference
        or not (users.custom_values @> excluded.custom_values)
        or (users.training_group_id is null and excluded.training_group_id is not null)
      returning id, (xmax = 0) as inserted, email, user_name, reference, custom_values,
        training_group_id, status, archived_at
    ),
    -- The users created, recorded for revertImport as they are inserted: found afterwards by
    -- their email, the planner (the users' statistics stale inside this transaction) joined
    -- them by nested loop, 7.6 s of an 11 s commit of 100,000 new users.
    created_images as (
      insert into import_user_changes (session_id, user_id, action, before, after)
      select ${target.id}::uuid, u.id, 'CREATE', null, ${imageSql} from upserted u where u.inserted
    )
    select count(*) filter (where inserted)::int as created,
           count(*) filter (where not inserted)::int as updated
    from upserted`,
  );
  return { created: changed?.created ?? 0, updated: changed?.updated ?? 0 };
}
