import {
  ArchiveLimitExceededError,
  countActions,
  countArchive,
  exceedsArchiveLimit,
  listUsersToArchivePage,
} from '../server/import/sync-archive.js';
import type { UserCursor } from '../server/settings/users.js';
import { builder } from './builder.js';
import { ErrorInterface } from './errors.js';
import { isUuid } from './ids.js';
import { ImportModeEnum, ImportSessionRef } from './import-session.js';
import { keysetConnection, pageArgs, pagedConnection } from './pagination.js';
import { UserRef } from './users.js';

builder.objectType(ArchiveLimitExceededError, {
  name: 'ArchiveLimitExceededError',
  description:
    'A SYNC would archive more of the active users than SYNC_ARCHIVE_LIMIT_PERCENT allows: check `usersToArchive`, then continue with acknowledgeArchive: true. Nothing changed.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof ArchiveLimitExceededError,
  fields: (t) => ({
    archiveCount: t.exposeInt('archiveCount', { description: 'Users the SYNC would archive.' }),
    activeUserCount: t.exposeInt('activeUserCount', {
      description: 'Active users of the company now.',
    }),
    limitPercent: t.exposeFloat('limitPercent', {
      description: 'The share of active users a SYNC may archive without acknowledgement.',
    }),
  }),
});

const ActionCountsRef = builder
  .objectRef<Awaited<ReturnType<typeof countActions>>>('ImportActionCounts')
  .implement({
    description: 'How many users each action concerns.',
    fields: (t) => ({
      create: t.exposeInt('create', { description: 'Rows that create a user.' }),
      update: t.exposeInt('update', { description: 'Rows that change an existing user.' }),
      unchanged: t.exposeInt('unchanged', {
        description: 'Rows whose user already has these values.',
      }),
      restore: t.exposeInt('restore', { description: 'Rows that bring an archived user back.' }),
      skip: t.exposeInt('skip', { description: 'Rows with errors, not imported.' }),
      archive: t.exposeInt('archive', {
        description:
          'Active users a SYNC archives because the file does not contain them (once committed: those it archived).',
      }),
    }),
  });

const ArchiveWarningRef = builder
  .objectRef<{ archiveCount: number; activeUserCount: number; limitPercent: number }>(
    'ImportArchiveWarning',
  )
  .implement({
    description:
      'A SYNC past the archive limit: continueImport needs acknowledgeArchive: true to go on.',
    fields: (t) => ({
      archiveCount: t.exposeInt('archiveCount', { description: 'Users the SYNC would archive.' }),
      activeUserCount: t.exposeInt('activeUserCount', {
        description: 'Active users of the company now.',
      }),
      limitPercent: t.exposeFloat('limitPercent', {
        description: 'SYNC_ARCHIVE_LIMIT_PERCENT: the share allowed without acknowledgement.',
      }),
    }),
  });

const isUserCursor = (value: unknown): value is UserCursor =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as UserCursor).email === 'string' &&
  typeof (value as UserCursor).id === 'string' &&
  isUuid((value as UserCursor).id);

const beforeCommit = (stage: string, busy: boolean) =>
  (stage === 'REVIEW' || stage === 'GROUP_ASSIGNMENT') && !busy;

const UsersToArchiveConnectionRef = pagedConnection(UserRef, {
  name: 'UsersToArchiveConnection',
  description: 'A page of users a SYNC archives.',
  edgeName: 'UsersToArchiveEdge',
  edgeDescription: 'A user to archive and its cursor.',
});

builder.objectFields(ImportSessionRef, (t) => ({
  mode: t.field({
    type: ImportModeEnum,
    description: 'ADD_AND_UPDATE or SYNC, as chosen at startImport.',
    resolve: (session) => session.mode,
  }),
  archiveAcknowledged: t.exposeBoolean('archiveAcknowledged', {
    description: 'A SYNC past the archive limit was acknowledged (continueImport).',
  }),
  actionCounts: t.field({
    type: ActionCountsRef,
    description:
      'From REVIEW on: rows by action, and the users a SYNC archives, counted beside them.',
    resolve: (session, _args, ctx) => countActions(ctx.db, session),
  }),
  archiveWarning: t.field({
    type: ArchiveWarningRef,
    nullable: true,
    description:
      'At REVIEW and GROUP_ASSIGNMENT, for a SYNC that would archive more than SYNC_ARCHIVE_LIMIT_PERCENT of the active users and is not acknowledged yet; null otherwise. A commit that finds the users changed since so that the SYNC passes the limit commits nothing and comes back to GROUP_ASSIGNMENT with this warning.',
    resolve: async (session, _args, ctx) => {
      if (session.mode !== 'SYNC' || session.archiveAcknowledged) return null;
      if (!beforeCommit(session.stage, session.busy)) return null;
      const count = await countArchive(ctx.db, session);
      const limitPercent = ctx.config.SYNC_ARCHIVE_LIMIT_PERCENT;
      return exceedsArchiveLimit(count, limitPercent)
        ? { archiveCount: count.archive, activeUserCount: count.active, limitPercent }
        : null;
    },
  }),
  usersToArchive: t.field({
    type: UsersToArchiveConnectionRef,
    description:
      'At REVIEW and GROUP_ASSIGNMENT of a SYNC: the active users the file does not contain, which the commit archives, by email (empty otherwise; once committed, see `changes`).',
    args: { ...pageArgs(t.arg) },
    resolve: (session, args, ctx) =>
      keysetConnection(
        args,
        {
          isValid: isUserCursor,
          of: (user: { email: string; id: string }) => ({
            email: user.email.toLowerCase(),
            id: user.id,
          }),
        },
        async ({ limit, after }) => {
          if (!beforeCommit(session.stage, session.busy)) return { nodes: [], hasNextPage: false };
          const page = await listUsersToArchivePage(ctx.db, session, { limit, after });
          return { nodes: page.users, hasNextPage: page.hasNextPage };
        },
      ),
  }),
}));
