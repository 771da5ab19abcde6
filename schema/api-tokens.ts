import { z } from 'zod';
import { NotFoundError } from '../server/errors.js';
import {
  type ApiToken,
  createApiToken,
  findApiToken,
  LastAdminTokenError,
  listApiTokens,
  revokeApiToken,
} from '../server/settings/api-tokens.js';
import { builder } from './builder.js';
import { TokenRoleEnum } from './company.js';
import { ErrorInterface, inputErrors } from './errors.js';
import { isUuid, localId } from './ids.js';

export const ApiTokenRef = builder.objectRef<ApiToken>('ApiToken');

builder.node(ApiTokenRef, {
  description:
    'An API token of the company, without its secret: only a hash of the secret is stored.',
  id: { resolve: (token) => token.id },
  loadOne: async (id, ctx) =>
    ctx.auth.role === 'ADMIN' && isUuid(id)
      ? ((await findApiToken(ctx.db, ctx.auth.companyId, id)) ?? null)
      : null,
  fields: (t) => ({
    role: t.field({
      type: TokenRoleEnum,
      description: 'What the token may do.',
      resolve: (token) => token.role,
    }),
    label: t.exposeString('label', {
      nullable: true,
      description: 'What the token is for, as given when it was made.',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When it was made.' }),
    lastUsedAt: t.expose('lastUsedAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When a request last used it, to the minute or so; null if it was never used.',
    }),
    revokedAt: t.expose('revokedAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When it was revoked; null while it works.',
    }),
  }),
});

const CreatedApiTokenRef = builder
  .objectRef<{ token: ApiToken; secret: string }>('CreatedApiToken')
  .implement({
    description: 'A new API token and its secret, which is shown this once and never again.',
    fields: (t) => ({
      secret: t.exposeString('secret', {
        description:
          'The token to send as "Authorization: Bearer <secret>". Copy it now: it cannot be shown again.',
      }),
      token: t.field({
        type: ApiTokenRef,
        description: 'The new token as apiTokens lists it.',
        resolve: (created) => created.token,
      }),
    }),
  });

builder.objectType(LastAdminTokenError, {
  name: 'LastAdminTokenError',
  description:
    'The token is the last ADMIN token of the company: revoking it would leave no one able to manage the company. Create another ADMIN token first.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof LastAdminTokenError,
  fields: () => ({}),
});

builder.queryFields((t) => ({
  apiTokens: t.field({
    type: [ApiTokenRef],
    description:
      'The API tokens of the company that still work, oldest first, without their secrets (ADMIN tokens only).',
    authScopes: { admin: true },
    resolve: (_root, _args, ctx) => listApiTokens(ctx.db, ctx.auth.companyId),
  }),
}));

builder.mutationFields((t) => ({
  createApiToken: t.fieldWithInput({
    type: CreatedApiTokenRef,
    description:
      'Makes an API token for the company and returns its secret, once. A VIEWER token can read everything but change nothing.',
    typeOptions: { description: 'The role and label of the new token.' },
    errors: { types: [...inputErrors] },
    input: {
      role: t.input.field({
        type: TokenRoleEnum,
        required: true,
        description: 'What the token may do.',
      }),
      label: t.input.string({
        required: true,
        description: 'What the token is for (who uses it, where), to recognise it later.',
        validate: z
          .string()
          .trim()
          .min(1, 'The label must not be empty.')
          .max(200, 'The label must be at most 200 characters.'),
      }),
    },
    resolve: (_root, { input }, ctx) =>
      createApiToken(ctx.db, ctx.auth.companyId, {
        role: input.role,
        label: input.label.trim(),
      }),
  }),
  revokeApiToken: t.fieldWithInput({
    type: ApiTokenRef,
    description:
      'Revokes an API token of the company: requests with it are refused from now on. The last ADMIN token cannot be revoked.',
    typeOptions: { description: 'The token to revoke.' },
    errors: { types: [NotFoundError, LastAdminTokenError] },
    input: {
      tokenId: t.input.id({
        required: true,
        description: 'The token, as apiTokens lists it (ApiToken.id).',
      }),
    },
    resolve: (_root, { input }, ctx) =>
      revokeApiToken(
        ctx.db,
        ctx.auth.companyId,
        localId(String(input.tokenId), 'ApiToken', 'API token'),
      ),
  }),
}));
