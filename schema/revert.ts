import {
  type ImageFieldChange,
  imageChanges,
  listUserChangesPage,
  RevertConflictError,
  requestRevert,
  UndoExpiredError,
  type UserChange,
} from '../server/import/revert.js';
import { listTrainingGroups } from '../server/settings/training-groups.js';
import { findUsersByIds } from '../server/settings/users.js';
import { builder } from './builder.js';
import { ErrorInterface, sessionActionErrors } from './errors.js';
import { globalId, isUuid, localId } from './ids.js';
import { ImportSessionRef } from './import-session.js';
import { keysetConnection, pageArgs, pagedConnection } from './pagination.js';
import { UserRef } from './users.js';

const UserChangeActionEnum = builder.enumType('UserChangeAction', {
  description: 'What a committed import did to a user.',
  values: {
    CREATE: { description: 'Created the user (a revert removes it).' },
    UPDATE: { description: "Changed the user's values or group (a revert puts them back)." },
    ARCHIVE: { description: 'Archived the user: a SYNC leaver (a revert restores it).' },
    RESTORE: { description: 'Brought an archived user back (a revert archives it again).' },
  },
});

const RevertOutcomeEnum = builder.enumType('RevertOutcome', {
  description: "What a revert does or did with one user's change.",
  values: {
    REVERTED: { description: 'The change was undone.' },
    CONFLICT: {
      description:
        'The user changed after the import (a later import or a mutation): a revert leaves it as it is.',
    },
  },
});

const FieldChangeRef = builder.objectRef<ImageFieldChange>('UserFieldChange').implement({
  description: 'One field of a user, before and after an import.',
  fields: (t) => ({
    fieldKey: t.exposeString('fieldKey', {
      description:
        'email, userName, reference, a custom field key, trainingGroup (values are group names) or status.',
    }),
    before: t.exposeString('before', {
      nullable: true,
      description: 'The value before the import; null: none (or the user did not exist).',
    }),
    after: t.exposeString('after', {
      nullable: true,
      description: 'The value the import left; null: none.',
    }),
  }),
});

type ChangeShape = UserChange & { groupName: (id: string) => string };

const UserChangeRef = builder.objectRef<ChangeShape>('ImportUserChange').implement({
  description: 'What a committed import did to one user, field by field.',
  fields: (t) => ({
    userId: t.id({
      description: 'Global ID of the user (it may be gone: a reverted creation).',
      resolve: (change) => globalId('User', change.userId),
    }),
    user: t.field({
      type: UserRef,
      nullable: true,
      description: 'The user as it is now; null once removed.',
      resolve: async (change, _args, ctx) =>
        (await findUsersByIds(ctx.db, ctx.auth.companyId, [change.userId]))[0] ?? null,
    }),
    email: t.string({
      description: 'The email the import gave or found.',
      resolve: (change) => change.after?.email ?? change.before?.email ?? '',
    }),
    action: t.field({
      type: UserChangeActionEnum,
      description: 'What the import did.',
      resolve: (change) => change.action,
    }),
    fields: t.field({
      type: [FieldChangeRef],
      description: 'Each field that differs between before and after the import.',
      resolve: (change) => imageChanges(change.before, change.after, change.groupName),
    }),
    revertOutcome: t.field({
      type: RevertOutcomeEnum,
      nullable: true,
      description:
        'REVERTED or CONFLICT after a revert; before one, CONFLICT marks a user changed since (a revert would refuse it), null the others.',
      resolve: (change) => change.outcome,
    }),
  }),
});

const RevertResultRef = builder
  .objectRef<{
    removed: number;
    updated: number;
    unarchived: number;
    rearchived: number;
    conflicts: number;
  }>('RevertResult')
  .implement({
    description: 'What a revert changed back.',
    fields: (t) => ({
      removed: t.exposeInt('removed', { description: 'Users the import created, removed.' }),
      updated: t.exposeInt('updated', {
        description: 'Users the import updated, with their previous values and group back.',
      }),
      unarchived: t.exposeInt('unarchived', {
        description: 'Users the import archived, ACTIVE again.',
      }),
      rearchived: t.exposeInt('rearchived', {
        description: 'Users the import restored, archived again.',
      }),
      conflicts: t.exposeInt('conflicts', {
        description: 'Users changed after the import, left as they are (force).',
      }),
    }),
  });

const isChangeCursor = (value: unknown): value is { userId: string } =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as { userId: unknown }).userId === 'string' &&
  isUuid((value as { userId: string }).userId);

/** A page of changes, with the company's group names read once for the page. */
function changesConnection(
  args: { first?: number | null; after?: string | null },
  ctx: { db: Parameters<typeof listUserChangesPage>[0]; auth: { companyId: string } },
  sessionId: string,
  onlyConflicts: boolean,
) {
  return keysetConnection(
    args,
    { isValid: isChangeCursor, of: (change: ChangeShape) => ({ userId: change.userId }) },
    async ({ limit, after }) => {
      const page = await listUserChangesPage(ctx.db, sessionId, {
        limit,
        after: after?.userId,
        onlyConflicts,
      });
      const groups = new Map(
        (await listTrainingGroups(ctx.db, ctx.auth.companyId)).map((group) => [
          group.id,
          group.name,
        ]),
      );
      const groupName = (id: string) => groups.get(id) ?? id;
      return {
        nodes: page.changes.map((change) => ({ ...change, groupName })),
        hasNextPage: page.hasNextPage,
      };
    },
  );
}

builder.objectType(UndoExpiredError, {
  name: 'UndoExpiredError',
  description:
    'The import was committed longer ago than IMPORT_UNDO_DAYS (or before undo existed): it cannot be reverted.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof UndoExpiredError,
  fields: (t) => ({
    undoDays: t.exposeInt('undoDays', { description: 'Days an import can be undone.' }),
  }),
});

const RevertConflictConnectionRef = pagedConnection(UserChangeRef, {
  name: 'RevertConflictConnection',
  description: 'A page of users changed since.',
  edgeName: 'RevertConflictEdge',
  edgeDescription: 'A user changed since and its cursor.',
});

const ImportUserChangeConnectionRef = pagedConnection(UserChangeRef, {
  name: 'ImportUserChangeConnection',
  description: 'A page of users an import changed.',
  edgeName: 'ImportUserChangeEdge',
  edgeDescription: "A user's change and its cursor.",
});

builder.objectType(RevertConflictError, {
  name: 'RevertConflictError',
  description:
    'Users were changed after the import: nothing was reverted. `conflicts` lists them; revert with force: true to undo the rest and leave them as they are.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof RevertConflictError,
  fields: (t) => ({
    conflictCount: t.exposeInt('conflictCount', { description: 'How many users changed since.' }),
    conflicts: t.field({
      type: RevertConflictConnectionRef,
      description: 'The users changed since, with what the import did to them (by keyset).',
      args: { ...pageArgs(t.arg) },
      resolve: (error, args, ctx) => changesConnection(args, ctx, error.sessionId, true),
    }),
  }),
});

builder.objectFields(ImportSessionRef, (t) => ({
  committedAt: t.expose('committedAt', {
    type: 'DateTime',
    nullable: true,
    description: 'When the commit ended; the undo period (IMPORT_UNDO_DAYS) counts from here.',
  }),
  revertResult: t.field({
    type: RevertResultRef,
    nullable: true,
    description: 'What the revert changed back, once REVERTED.',
    resolve: (session) => session.revertResult ?? null,
  }),
  changes: t.field({
    type: ImportUserChangeConnectionRef,
    description:
      'Once committed: each user the import created, updated, archived or restored, with every field before and after (by keyset on the user).',
    args: {
      ...pageArgs(t.arg),
      onlyConflicts: t.arg.boolean({
        description: 'true: only users changed since the import (what a revert would refuse).',
      }),
    },
    resolve: (session, args, ctx) =>
      changesConnection(args, ctx, session.id, args.onlyConflicts === true),
  }),
}));

builder.mutationFields((t) => ({
  revertImport: t.fieldWithInput({
    type: ImportSessionRef,
    description:
      'Undoes a COMPLETED import within IMPORT_UNDO_DAYS of its commit, in the background like the commit: users it created are removed, users it updated get their values and group back, users it archived are restored and users it restored archived again. Users changed since are refused (RevertConflictError) unless force. The session ends REVERTED with revertResult; follow it with importSessionUpdated.',
    typeOptions: { description: 'The import to undo.' },
    errors: {
      types: [...sessionActionErrors, UndoExpiredError, RevertConflictError],
    },
    input: {
      sessionId: t.input.id({ required: true, description: 'The COMPLETED import session.' }),
      force: t.input.boolean({
        defaultValue: false,
        description:
          'Revert the users without conflicts and leave those changed since as they are (reported in revertResult.conflicts).',
      }),
    },
    resolve: async (_root, { input }, ctx) => {
      const session = await requestRevert(
        ctx.db,
        ctx.auth.companyId,
        localId(input.sessionId, 'ImportSession', 'import session'),
        { force: input.force ?? false, undoDays: ctx.config.IMPORT_UNDO_DAYS },
      );
      ctx.events.publishSessionUpdated(session.id);
      ctx.importWorker.wake();
      return session;
    },
  }),
}));
