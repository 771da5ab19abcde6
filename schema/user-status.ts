import { z } from 'zod';
import { NotFoundError } from '../server/errors.js';
import { archiveUsers, restoreUsers } from '../server/settings/user-status.js';
import { builder } from './builder.js';
import { inputErrors } from './errors.js';
import { localId } from './ids.js';
import { UserRef } from './users.js';

/** At most this many users per call: one statement, and a clear bound on a mistake. */
const MAX_USERS_PER_CALL = 1_000;

const userIds = z
  .array(z.string())
  .min(1, 'Name at least one user.')
  .max(MAX_USERS_PER_CALL, `At most ${MAX_USERS_PER_CALL} users at once.`);

const UsersStatusChanged = builder
  .objectRef<{ users: Awaited<ReturnType<typeof archiveUsers>> }>('UsersStatusChanged')
  .implement({
    description: 'The users named, in their status now.',
    fields: (t) => ({
      users: t.field({
        type: [UserRef],
        description: 'Each user named (once), as it is now.',
        resolve: (result) => result.users,
      }),
    }),
  });

const toLocalIds = (ids: string[]) => ids.map((id) => localId(id, 'User', 'user'));

builder.mutationFields((t) => ({
  archiveUsers: t.fieldWithInput({
    type: UsersStatusChanged,
    description:
      'Archives users: they keep their values, group and history, leave the default `users` list and the group counts, and come back with restoreUsers or a later import that contains them. All or nothing: an unknown ID changes nobody.',
    typeOptions: { description: 'The users to archive.' },
    errors: { types: [NotFoundError, ...inputErrors] },
    input: {
      userIds: t.input.idList({
        required: true,
        description: `Global IDs of the users (1 to ${MAX_USERS_PER_CALL}); already archived ones stay as they are.`,
        validate: userIds,
      }),
    },
    resolve: async (_root, { input }, ctx) => ({
      users: await archiveUsers(ctx.db, ctx.auth.companyId, toLocalIds(input.userIds)),
    }),
  }),
  restoreUsers: t.fieldWithInput({
    type: UsersStatusChanged,
    description:
      'Makes archived users ACTIVE again, with the values and group they had. All or nothing: an unknown ID changes nobody.',
    typeOptions: { description: 'The users to restore.' },
    errors: { types: [NotFoundError, ...inputErrors] },
    input: {
      userIds: t.input.idList({
        required: true,
        description: `Global IDs of the users (1 to ${MAX_USERS_PER_CALL}); active ones stay as they are.`,
        validate: userIds,
      }),
    },
    resolve: async (_root, { input }, ctx) => ({
      users: await restoreUsers(ctx.db, ctx.auth.companyId, toLocalIds(input.userIds)),
    }),
  }),
}));
