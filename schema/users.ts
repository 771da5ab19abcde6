import {
  countUsers,
  findUsersByIds,
  listUsersPage,
  type User,
  type UserCursor,
} from '../server/settings/users.js';
import { builder } from './builder.js';
import { isUuid } from './ids.js';
import { customFields, loaders } from './loaders.js';
import { countedConnection, keysetConnection, pageArgs } from './pagination.js';
import { TrainingGroupRef } from './training-groups.js';
import { MAX_SEARCH_LENGTH, singleLineText } from './validation.js';

const isUserCursor = (value: unknown): value is UserCursor =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as UserCursor).email === 'string' &&
  typeof (value as UserCursor).id === 'string' &&
  /^[0-9a-f-]{36}$/i.test((value as UserCursor).id);

const FieldValue = builder
  .objectRef<{ fieldKey: string; label: string; value: string }>('UserFieldValue')
  .implement({
    description: 'The value of one custom field of a user.',
    fields: (t) => ({
      fieldKey: t.exposeString('fieldKey', { description: 'Key of the custom field.' }),
      label: t.exposeString('label', { description: 'Current label of the custom field.' }),
      value: t.exposeString('value', { description: 'The stored value.' }),
    }),
  });

export const UserStatusEnum = builder.enumType('UserStatus', {
  description: 'Whether a user takes part in the company.',
  values: {
    ACTIVE: { description: 'A current user: listed by default and counted in training groups.' },
    ARCHIVED: {
      description:
        'Archived (by a SYNC import or archiveUsers): keeps values, group and history, but is not listed by default nor counted in groups. A later file that contains the user restores it.',
    },
  },
});

export const UserRef = builder.objectRef<User>('User');

builder.node(UserRef, {
  description: 'A user of the training platform, keyed by email within the company.',
  id: { resolve: (user) => user.id },
  loadMany: async (ids, ctx) => {
    const found = await findUsersByIds(ctx.db, ctx.auth.companyId, ids.filter(isUuid));
    return ids.map((id) => found.find((user) => user.id === id) ?? null);
  },
  fields: (t) => ({
    email: t.exposeString('email', {
      description: 'Email address, unique in the company ignoring case.',
    }),
    userName: t.exposeString('userName', { description: 'The user name.' }),
    reference: t.exposeString('reference', {
      description: "The company's own reference, unique in the company.",
    }),
    customFieldValues: t.field({
      type: [FieldValue],
      description: "Values of the company's custom fields that this user has, in field order.",
      resolve: async (user, _args, ctx, info) => {
        const fields = await customFields(ctx, info);
        return fields.flatMap((field) => {
          const value = user.customValues[field.key];
          return value === undefined ? [] : [{ fieldKey: field.key, label: field.label, value }];
        });
      },
    }),
    trainingGroup: t.field({
      type: TrainingGroupRef,
      nullable: true,
      description: "The user's training group, if any.",
      resolve: (user, _args, ctx, info) =>
        user.trainingGroupId ? loaders(ctx, info).trainingGroups.load(user.trainingGroupId) : null,
    }),
    status: t.field({
      type: UserStatusEnum,
      description: 'ACTIVE or ARCHIVED.',
      resolve: (user) => user.status,
    }),
    archivedAt: t.expose('archivedAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When the user was archived; null while ACTIVE.',
    }),
    createdAt: t.expose('createdAt', {
      type: 'DateTime',
      description: 'When the user was created.',
    }),
    updatedAt: t.expose('updatedAt', {
      type: 'DateTime',
      description: 'When the user last changed.',
    }),
  }),
});

const UserConnectionRef = countedConnection(UserRef, {
  name: 'UserConnection',
  description: 'A page of users.',
  edgeName: 'UserEdge',
  edgeDescription: 'A user and its cursor.',
});

builder.queryFields((t) => ({
  users: t.field({
    type: UserConnectionRef,
    description:
      "The company's users ordered by email, a page at a time: the active ones unless `status` says otherwise.",
    args: {
      ...pageArgs(t.arg),
      status: t.arg({
        type: UserStatusEnum,
        defaultValue: 'ACTIVE',
        description: 'Only users in this status (default ACTIVE).',
      }),
      search: t.arg.string({
        description:
          'Only users whose email, userName or reference contains this text (ignoring case); at most 200 characters.',
        validate: singleLineText('The search', MAX_SEARCH_LENGTH),
      }),
    },
    resolve: (_root, args, ctx) =>
      keysetConnection(
        args,
        {
          isValid: isUserCursor,
          of: (user: User) => ({ email: user.email.toLowerCase(), id: user.id }),
        },
        async ({ limit, after }) => {
          const page = await listUsersPage(ctx.db, ctx.auth.companyId, {
            limit,
            after,
            search: args.search,
            status: args.status ?? 'ACTIVE',
          });
          return { nodes: page.users, hasNextPage: page.hasNextPage };
        },
        () => countUsers(ctx.db, ctx.auth.companyId, args.search, args.status ?? 'ACTIVE'),
      ),
  }),
}));
