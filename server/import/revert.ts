import { and, eq, sql } from 'drizzle-orm';
import { type Database, queryRows } from '../../drizzle/client.js';
import { importSessions, type RevertResult, type UserImage } from '../../drizzle/tables.js';
import { AppError, NotFoundError, SessionBusyError, WrongStageError } from '../errors.js';
import { bumpUsersVersion, lockCompanyForChange } from './preview-basis.js';
import type { ImportSession } from './sessions.js';
import { archiveCandidatesSql, type SyncTarget } from './sync-archive.js';
import { StaleClaimError } from './workflow.js';

/** A user's values as an image (UserImage), from `users` aliased `u`. */
/** A user `u`'s values as a UserImage. */
export const imageSql = sql`jsonb_build_object('email', u.email, 'userName', u.user_name,
  'reference', u.reference, 'customValues', u.custom_values,
  'trainingGroupId', u.training_group_id, 'status', u.status, 'archivedAt', u.archived_at)`;

/** The advisory lock that serializes a company's commits and reverts. */
export function companyUsersLockSql(companyId: string) {
  return sql`select pg_advisory_xact_lock(hashtext(${`muster.commit:${companyId}`}))`;
}

/**
 * In the commit's transaction, before it changes anyone: the values of every existing user the
 * commit will change (an UPDATE, a RESTORE, an UNCHANGED row that only gets a group, and in a
 * SYNC each user to archive), in one INSERT … SELECT.
 */
export async function keepBeforeImages(tx: Database, target: SyncTarget): Promise<void> {
  await tx.execute(sql`
    insert into import_user_changes (session_id, user_id, action, before)
    select ${target.id}::uuid, u.id, p.action, ${imageSql}
    from import_row_previews p join users u on u.id = p.user_id
    where p.session_id = ${target.id} and p.errors is null
      and (p.action in ('UPDATE', 'RESTORE')
        or (p.action = 'UNCHANGED' and p.training_group_id is not null
          and u.training_group_id is null))
    union all
    select ${target.id}::uuid, u.id, 'ARCHIVE', ${imageSql}
    from users u where u.id in (${archiveCandidatesSql(target)})`);
}

/**
 * In the commit's transaction, once it has changed the users: every recorded user's values
 * after (the users it created were recorded as it inserted them, see commit.ts). A recorded
 * user the commit left as it was is forgotten.
 */
export async function keepAfterImages(tx: Database, target: SyncTarget): Promise<void> {
  await tx.execute(sql`
    update import_user_changes c
    set after = ${imageSql}, action = case when c.action = 'UNCHANGED' then 'UPDATE' else c.action end
    from users u
    where c.session_id = ${target.id} and c.after is null and u.id = c.user_id`);
  await tx.execute(sql`
    delete from import_user_changes
    where session_id = ${target.id} and before is not distinct from after`);
}

/**
 * The recorded users of a session changed since its commit (by a later import or a mutation),
 * as a condition on `import_user_changes c` left-joined to their user `u`. A created user
 * already gone is no conflict: removing it is done.
 */
const conflictSql = sql`(c.outcome is null and (
  (u.id is null and c.action <> 'CREATE') or (u.id is not null and ${imageSql} is distinct from c.after)))`;

export async function countRevertConflicts(db: Database, sessionId: string): Promise<number> {
  const [row] = await queryRows<{ count: number }>(
    db,
    sql`select count(*)::int as count from import_user_changes c
        left join users u on u.id = c.user_id
        where c.session_id = ${sessionId} and ${conflictSql}`,
  );
  return row?.count ?? 0;
}

export class UndoExpiredError extends AppError {
  readonly code = 'UNDO_EXPIRED';
  constructor(readonly undoDays: number) {
    super(
      `This import can no longer be reverted: imports can be undone for ${undoDays} days after their commit (IMPORT_UNDO_DAYS).`,
    );
  }
}

/**
 * Users changed since the import: reverting them would throw the later change away. Nothing
 * was reverted; `force` reverts the others and leaves these as they are.
 */
export class RevertConflictError extends AppError {
  readonly code = 'REVERT_CONFLICT';
  constructor(
    readonly sessionId: string,
    readonly conflictCount: number,
  ) {
    super(
      `${conflictCount} users were changed after this import (by a later import or by hand). Nothing was reverted. Check them in conflicts; revert with force: true to undo the rest and leave them as they are now.`,
    );
  }
}

/**
 * revertImport: checks that a COMPLETED import can be undone (within `undoDays` of its commit,
 * no user changed since unless `force`) and queues the revert as background work (step
 * REVERT), done by the worker like the commit. A REVERTED import is at a wrong stage: reverting
 * twice changes nothing.
 */
export async function requestRevert(
  db: Database,
  companyId: string,
  sessionId: string,
  options: { force: boolean; undoDays: number },
): Promise<ImportSession> {
  return db.transaction(async (tx) => {
    const [session] = await tx
      .select()
      .from(importSessions)
      .where(and(eq(importSessions.companyId, companyId), eq(importSessions.id, sessionId)))
      .for('update');
    if (!session) throw new NotFoundError('import session', sessionId);
    if (session.stage !== 'COMPLETED') throw new WrongStageError(session.stage, ['COMPLETED']);
    if (session.busy) throw new SessionBusyError(session.stage);
    const undoMs = options.undoDays * 24 * 60 * 60 * 1000;
    if (!session.committedAt || Date.now() - session.committedAt.getTime() > undoMs) {
      throw new UndoExpiredError(options.undoDays);
    }
    const conflicts = await countRevertConflicts(tx, session.id);
    if (conflicts > 0 && !options.force) throw new RevertConflictError(session.id, conflicts);
    const [queued] = await tx
      .update(importSessions)
      .set({
        step: 'REVERT',
        busy: true,
        revertForce: options.force,
        progress: { phase: 'QUEUED', done: 0, total: null },
        failure: null,
        updatedAt: new Date(),
      })
      .where(eq(importSessions.id, session.id))
      .returning();
    return queued as ImportSession;
  });
}

export interface RevertTarget {
  id: string;
  companyId: string;
  attempt: number;
  revertForce: boolean;
}

const isReverting = (target: RevertTarget) =>
  and(
    eq(importSessions.id, target.id),
    eq(importSessions.attempt, target.attempt),
    eq(importSessions.stage, 'COMPLETED'),
    eq(importSessions.step, 'REVERT'),
    eq(importSessions.busy, true),
  );

/**
 * The revert, in one transaction under the company's commit lock: users the import created
 * are deleted, the others get their before-images back (a group deleted since stays unset),
 * each in one statement; users changed since are left as they are and reported. A user
 * changed between the request and this (without force) stops it: nothing is reverted and
 * the import stays COMPLETED with a failure that says why. Returns null when the claim is no
 * longer current; throws StaleClaimError, rolling back, when it stopped being current meanwhile.
 * A retry after a crash finds nothing reverted or the session REVERTED: never half of it.
 */
export async function revertImport(
  db: Database,
  target: RevertTarget,
): Promise<RevertResult | 'CONFLICT' | null> {
  return db.transaction(async (tx) => {
    await tx.execute(companyUsersLockSql(target.companyId));
    await lockCompanyForChange(tx, target.companyId);
    const [current] = await tx
      .select({ id: importSessions.id })
      .from(importSessions)
      .where(isReverting(target));
    if (!current) return null;
    const conflicts = await queryRows<{ user_id: string }>(
      tx,
      sql`update import_user_changes c set outcome = 'CONFLICT'
          where c.session_id = ${target.id} and c.outcome is null
            and ((c.action <> 'CREATE' and not exists (select 1 from users u where u.id = c.user_id))
              or exists (select 1 from users u
                where u.id = c.user_id and ${imageSql} is distinct from c.after))
          returning c.user_id`,
    );
    const idle = { busy: false, progress: null, leaseOwner: null, leaseExpiresAt: null };
    if (conflicts.length > 0 && !target.revertForce) {
      await tx.execute(
        sql`update import_user_changes set outcome = null where session_id = ${target.id}`,
      );
      const stopped = await tx
        .update(importSessions)
        .set({
          ...idle,
          failure: {
            code: 'REVERT_CONFLICT',
            message: `${conflicts.length} users were changed after this import while its revert waited. Nothing was reverted; revert again to see them, or with force to undo the rest.`,
          },
          updatedAt: new Date(),
        })
        .where(isReverting(target))
        .returning({ id: importSessions.id });
      if (stopped.length === 0) throw new StaleClaimError(target.id);
      return 'CONFLICT';
    }
    const removed = await queryRows<{ id: string }>(
      tx,
      sql`delete from users u using import_user_changes c
          where c.session_id = ${target.id} and c.action = 'CREATE' and c.outcome is null
            and u.id = c.user_id
          returning u.id`,
    );
    const restored = await queryRows<{ action: string; count: number }>(
      tx,
      sql`with restored as (
            update users u set
              email = c.before ->> 'email',
              user_name = c.before ->> 'userName',
              reference = c.before ->> 'reference',
              custom_values = c.before -> 'customValues',
              training_group_id = (select g.id from training_groups g
                where g.id = (c.before ->> 'trainingGroupId')::uuid and g.company_id = u.company_id),
              status = (c.before ->> 'status')::user_status,
              archived_at = (c.before ->> 'archivedAt')::timestamptz,
              updated_at = now()
            from import_user_changes c
            where c.session_id = ${target.id} and c.action <> 'CREATE' and c.outcome is null
              and u.id = c.user_id
            returning c.action)
          select action, count(*)::int as count from restored group by action`,
    );
    await tx.execute(
      sql`update import_user_changes set outcome = 'REVERTED'
          where session_id = ${target.id} and outcome is null`,
    );
    const count = (action: string) => restored.find((row) => row.action === action)?.count ?? 0;
    const result: RevertResult = {
      removed: removed.length,
      updated: count('UPDATE'),
      unarchived: count('ARCHIVE'),
      rearchived: count('RESTORE'),
      conflicts: conflicts.length,
    };
    if (result.removed + result.updated + result.unarchived + result.rearchived > 0) {
      await bumpUsersVersion(tx, target.companyId);
    }
    const reverted = await tx
      .update(importSessions)
      .set({ ...idle, stage: 'REVERTED', revertResult: result, updatedAt: new Date() })
      .where(isReverting(target))
      .returning({ id: importSessions.id });
    if (reverted.length === 0) throw new StaleClaimError(target.id);
    return result;
  });
}

export interface UserChange {
  userId: string;
  action: 'CREATE' | 'UPDATE' | 'ARCHIVE' | 'RESTORE';
  before: UserImage | null;
  after: UserImage | null;
  /** REVERTED or CONFLICT once a revert ran; CONFLICT too for a user changed since, before. */
  outcome: 'REVERTED' | 'CONFLICT' | null;
}

/**
 * One page of what an import did to each user, by user id (keyset); `onlyConflicts`: only
 * the users changed since (those a revert would refuse or skip).
 */
export async function listUserChangesPage(
  db: Database,
  sessionId: string,
  options: { limit: number; after?: string | null; onlyConflicts?: boolean },
): Promise<{ changes: UserChange[]; hasNextPage: boolean }> {
  const rows = await queryRows<{
    user_id: string;
    action: UserChange['action'];
    before: UserImage | null;
    after: UserImage | null;
    outcome: 'REVERTED' | 'CONFLICT' | null;
    conflict: boolean;
  }>(
    db,
    sql`select c.user_id, c.action, c.before, c.after, c.outcome, ${conflictSql} as conflict
        from import_user_changes c left join users u on u.id = c.user_id
        where c.session_id = ${sessionId}
          ${options.after ? sql`and c.user_id > ${options.after}::uuid` : sql``}
          ${options.onlyConflicts ? sql`and (${conflictSql} or c.outcome = 'CONFLICT')` : sql``}
        order by c.user_id
        limit ${options.limit + 1}`,
  );
  return {
    changes: rows.slice(0, options.limit).map((row) => ({
      userId: row.user_id,
      action: row.action,
      before: row.before,
      after: row.after,
      outcome: row.outcome ?? (row.conflict ? 'CONFLICT' : null),
    })),
    hasNextPage: rows.length > options.limit,
  };
}

export interface ImageFieldChange {
  /** email, userName, reference, a custom field's key, trainingGroup or status. */
  fieldKey: string;
  before: string | null;
  after: string | null;
}

/**
 * The fields that differ between two images of a user, in a fixed order (built-ins, custom
 * fields by key, group, status); `groupName` names a group id (the id when it is gone).
 */
export function imageChanges(
  before: UserImage | null,
  after: UserImage | null,
  groupName: (id: string) => string,
): ImageFieldChange[] {
  const custom = [
    ...new Set([
      ...Object.keys(before?.customValues ?? {}),
      ...Object.keys(after?.customValues ?? {}),
    ]),
  ].sort();
  const group = (image: UserImage | null) =>
    image?.trainingGroupId ? groupName(image.trainingGroupId) : null;
  const pairs: [string, string | null, string | null][] = [
    ['email', before?.email ?? null, after?.email ?? null],
    ['userName', before?.userName ?? null, after?.userName ?? null],
    ['reference', before?.reference ?? null, after?.reference ?? null],
    ...custom.map((key): [string, string | null, string | null] => [
      key,
      before?.customValues[key] ?? null,
      after?.customValues[key] ?? null,
    ]),
    ['trainingGroup', group(before), group(after)],
    ['status', before?.status ?? null, after?.status ?? null],
  ];
  return pairs
    .filter(([, from, to]) => from !== to)
    .map(([fieldKey, from, to]) => ({ fieldKey, before: from, after: to }));
}
