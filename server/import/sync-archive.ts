import { type SQL, sql } from 'drizzle-orm';
import { type Database, queryRows } from '../../drizzle/client.js';
import type { ImportColumn, UserImage } from '../../drizzle/tables.js';
import { AppError } from '../errors.js';
import type { User } from '../settings/users.js';
import { cellSql, columnOf } from './columns.js';
import { emailKeySql } from './validation.js';
import type { ImportSession } from './workflow.js';

/** What a SYNC needs to know of its session to find the users it archives. */
export interface SyncTarget {
  id: string;
  companyId: string;
  columns: ImportColumn[];
  /** Absent: ADD_AND_UPDATE. */
  mode?: ImportSession['mode'];
  validRowCount: number;
}

/**
 * The active users of the company that a SYNC archives, as `select id …`: those whose email and
 * reference appear in no row of the file. Every staged row counts, rows with errors too (a
 * colleague whose row has a typo is in the file, not a leaver), compared as validation does
 * (trimmed, NFC, case-folded email). A file with no valid row archives nobody: an empty or
 * broken export must never empty the company. Set-based: two anti-joins by hash.
 */
export function archiveCandidatesSql(target: SyncTarget): SQL {
  if (target.mode !== 'SYNC' || target.validRowCount === 0) {
    return sql`select u.id from users u where false`;
  }
  const email = emailKeySql(cellSql(columnOf(target.columns, 'email')));
  const reference = cellSql(columnOf(target.columns, 'reference'));
  return sql`select u.id from users u
    where u.company_id = ${target.companyId} and u.status = 'ACTIVE'
      and not exists (select 1 from import_rows r
        where r.session_id = ${target.id} and ${email} = lower(u.email))
      and not exists (select 1 from import_rows r
        where r.session_id = ${target.id} and ${reference} = u.reference)`;
}

export interface ArchiveCount {
  /** Active users the SYNC would archive. */
  archive: number;
  /** Active users of the company now. */
  active: number;
}

export async function countArchive(db: Database, target: SyncTarget): Promise<ArchiveCount> {
  const [row] = await queryRows<ArchiveCount>(
    db,
    sql`select (select count(*)::int from (${archiveCandidatesSql(target)}) c) as archive,
          (select count(*)::int from users
            where company_id = ${target.companyId} and status = 'ACTIVE') as active`,
  );
  return row ?? { archive: 0, active: 0 };
}

/** More than `limitPercent` of the active users would be archived. */
export function exceedsArchiveLimit(count: ArchiveCount, limitPercent: number): boolean {
  return count.archive * 100 > count.active * limitPercent;
}

/**
 * A SYNC would archive more of the company's users than SYNC_ARCHIVE_LIMIT_PERCENT allows: the
 * import waits at its stage until continueImport acknowledges it (acknowledgeArchive).
 */
export class ArchiveLimitExceededError extends AppError {
  readonly code = 'ARCHIVE_LIMIT_EXCEEDED';
  constructor(
    readonly archiveCount: number,
    readonly activeUserCount: number,
    readonly limitPercent: number,
  ) {
    super(
      `This SYNC would archive ${archiveCount} of ${activeUserCount} active users, more than the ${limitPercent} % allowed without confirmation. Check the users to archive; if they are right, continue with acknowledgeArchive: true.`,
    );
  }
}

/** The stages before the commit at which the users to archive are shown and checked. */
const CHECKED_STAGES: ImportSession['stage'][] = ['REVIEW', 'GROUP_ASSIGNMENT'];

/**
 * Called by continueImport on the locked session: returns what to keep on the session, whether
 * the archiving is acknowledged now and the limit checked (for the commit to check again), or
 * throws ArchiveLimitExceededError when a SYNC past the limit goes on without it.
 */
export async function checkArchiveLimit(
  db: Database,
  session: ImportSession,
  options: { acknowledgeArchive?: boolean | null; limitPercent: number },
): Promise<{ archiveAcknowledged: boolean; archiveLimitPercent: number }> {
  const checked = { archiveLimitPercent: options.limitPercent };
  if (session.archiveAcknowledged || options.acknowledgeArchive) {
    return { ...checked, archiveAcknowledged: true };
  }
  if (session.mode !== 'SYNC' || !CHECKED_STAGES.includes(session.stage)) {
    return { ...checked, archiveAcknowledged: false };
  }
  const count = await countArchive(db, session);
  if (exceedsArchiveLimit(count, options.limitPercent)) {
    throw new ArchiveLimitExceededError(count.archive, count.active, options.limitPercent);
  }
  return { ...checked, archiveAcknowledged: false };
}

/**
 * For the commit, in its transaction, once the users changed since continueImport checked the
 * limit: whether an unacknowledged SYNC now archives past the limit that was checked.
 */
export async function archiveLimitPassedSinceCheck(
  db: Database,
  target: SyncTarget & { archiveAcknowledged?: boolean; archiveLimitPercent?: number | null },
): Promise<boolean> {
  const limitPercent = target.archiveLimitPercent;
  if (target.mode !== 'SYNC' || target.archiveAcknowledged || limitPercent == null) return false;
  return exceedsArchiveLimit(await countArchive(db, target), limitPercent);
}

/** One page of the users a SYNC in review would archive, by email (keyset). */
export async function listUsersToArchivePage(
  db: Database,
  target: SyncTarget,
  options: { limit: number; after?: { email: string; id: string } | null },
): Promise<{ users: User[]; hasNextPage: boolean }> {
  const after = options.after;
  const rows = await queryRows<Record<string, unknown>>(
    db,
    sql`select u.id, u.company_id, u.email, u.user_name, u.reference, u.custom_values,
          u.training_group_id, u.status, u.archived_at, u.created_at, u.updated_at
        from users u
        where u.id in (${archiveCandidatesSql(target)})
          ${after ? sql`and (lower(u.email), u.id) > (${after.email}, ${after.id}::uuid)` : sql``}
        order by lower(u.email), u.id
        limit ${options.limit + 1}`,
  );
  return {
    users: rows.slice(0, options.limit).map(userOfRow),
    hasNextPage: rows.length > options.limit,
  };
}

/** A users row read by raw SQL, as Drizzle would map it. */
export function userOfRow(row: Record<string, unknown>): User {
  const date = (value: unknown) => (value === null ? null : new Date(value as string));
  return {
    id: row.id as string,
    companyId: row.company_id as string,
    email: row.email as string,
    userName: row.user_name as string,
    reference: row.reference as string,
    customValues: row.custom_values as Record<string, string>,
    trainingGroupId: row.training_group_id as string | null,
    status: row.status as User['status'],
    archivedAt: date(row.archived_at),
    createdAt: date(row.created_at) as Date,
    updatedAt: date(row.updated_at) as Date,
  };
}

/**
 * The commit's archiving, in its transaction: the users whose before-images keepBeforeImages
 * recorded as ARCHIVE, in one statement. Returns how many.
 */
export async function archiveLeavers(tx: Database, sessionId: string): Promise<number> {
  const archived = await queryRows<{ id: string }>(
    tx,
    sql`update users u set status = 'ARCHIVED', archived_at = now(), updated_at = now()
        from import_user_changes c
        where c.session_id = ${sessionId} and c.action = 'ARCHIVE' and c.user_id = u.id
          and u.status = 'ACTIVE'
        returning u.id`,
  );
  return archived.length;
}

export interface ActionCounts {
  create: number;
  update: number;
  unchanged: number;
  restore: number;
  skip: number;
  /** Users a SYNC archives (none before the review, nor in ADD_AND_UPDATE). */
  archive: number;
}

/**
 * The review's counts: the staged rows by action, beside the users a SYNC would archive. Once
 * committed, the archived count is the commit's (the users have changed since the review).
 */
export async function countActions(db: Database, session: ImportSession): Promise<ActionCounts> {
  const rows = await queryRows<{ action: string; count: number }>(
    db,
    sql`select action, count(*)::int as count from import_row_previews
        where session_id = ${session.id} group by action`,
  );
  const count = (action: string) => rows.find((row) => row.action === action)?.count ?? 0;
  const beforeCommit = CHECKED_STAGES.includes(session.stage) && !session.busy;
  return {
    create: count('CREATE'),
    update: count('UPDATE'),
    unchanged: count('UNCHANGED'),
    restore: count('RESTORE'),
    skip: count('SKIP'),
    archive: beforeCommit
      ? (await countArchive(db, session)).archive
      : (session.result?.archived ?? 0),
  };
}

/** A row of the imported-users report for a user a SYNC archives: in no row of the file. */
export interface ArchiveReportRow {
  rowNumber: null;
  cells: (string | null)[];
  action: 'ARCHIVE';
  trainingGroupId: string | null;
}

const REPORT_PAGE = 2_000;

/**
 * The users a SYNC archives, for the imported-users report: before the commit those it would
 * archive, once committed those it did (as they were), by keyset, a page at a time. Each
 * user's values are laid out under the file's columns.
 */
export async function* archiveReportRows(
  db: Database,
  session: ImportSession,
): AsyncGenerator<ArchiveReportRow> {
  if (session.mode !== 'SYNC') return;
  const width = Math.max(-1, ...session.columns.map((column) => column.columnIndex)) + 1;
  const toRow = (
    user: Pick<UserImage, 'email' | 'userName' | 'reference' | 'customValues' | 'trainingGroupId'>,
  ) => {
    const cells: (string | null)[] = Array.from({ length: width }, () => null);
    for (const column of session.columns) {
      if (!column.fieldKey || (column.status !== 'MATCHED' && column.status !== 'ADDED')) continue;
      const key = column.fieldKey;
      cells[column.columnIndex] =
        key === 'email'
          ? user.email
          : key === 'userName'
            ? user.userName
            : key === 'reference'
              ? user.reference
              : (user.customValues[key] ?? null);
    }
    return {
      rowNumber: null,
      cells,
      action: 'ARCHIVE' as const,
      trainingGroupId: user.trainingGroupId,
    };
  };
  if (CHECKED_STAGES.includes(session.stage)) {
    let after: { email: string; id: string } | null = null;
    for (;;) {
      const page = await listUsersToArchivePage(db, session, { limit: REPORT_PAGE, after });
      for (const user of page.users) yield toRow(user);
      const last = page.users.at(-1);
      if (!page.hasNextPage || !last) return;
      after = { email: last.email.toLowerCase(), id: last.id };
    }
  }
  let afterId: string | null = null;
  for (;;) {
    const rows: { user_id: string; before: UserImage }[] = await queryRows<{
      user_id: string;
      before: UserImage;
    }>(
      db,
      sql`select user_id, before from import_user_changes
          where session_id = ${session.id} and action = 'ARCHIVE'
            ${afterId ? sql`and user_id > ${afterId}::uuid` : sql``}
          order by user_id limit ${REPORT_PAGE}`,
    );
    for (const row of rows) yield toRow(row.before);
    const last = rows.at(-1);
    if (rows.length < REPORT_PAGE || !last) return;
    afterId = last.user_id;
  }
}
