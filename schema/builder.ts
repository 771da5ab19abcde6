import SchemaBuilder from '@pothos/core';
import ErrorsPlugin from '@pothos/plugin-errors';
import RelayPlugin from '@pothos/plugin-relay';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import ValidationPlugin, { InputValidationError } from '@pothos/plugin-validation';
import WithInputPlugin from '@pothos/plugin-with-input';
import { GraphQLError } from 'graphql';
import type { FileUpload } from 'graphql-upload-ts';
import type { Context } from '../server/http/context.js';

function capitalize(name: string): string {
  return `${name.charAt(0).toUpperCase()}${name.slice(1)}`;
}

export const builder = new SchemaBuilder<{
  Context: Context;
  AuthScopes: { admin: boolean };
  DefaultFieldNullability: false;
  Scalars: {
    ID: { Input: string; Output: string };
    DateTime: { Input: Date; Output: Date | string };
    Upload: { Input: Promise<FileUpload>; Output: never };
  };
}>({
  // Scope auth first, so a refused call stops before validation or its resolver runs.
  plugins: [ScopeAuthPlugin, ErrorsPlugin, ValidationPlugin, WithInputPlugin, RelayPlugin],
  withInput: {
    // `createTrainingGroup(input: CreateTrainingGroupInput!)`, as docs/design.md §5 names them.
    typeOptions: { name: ({ fieldName }) => `${capitalize(fieldName)}Input` },
    argOptions: { description: 'Everything this mutation needs.' },
  },
  defaultFieldNullability: false,
  validation: {
    // On a field without a result union (a query argument such as `users(search:)`) the
    // failure is a GraphQL error: its code says what it is, as InvalidInputError's does.
    validationError: (failure) => {
      const error = new InputValidationError(failure);
      Object.assign(error.extensions, { code: 'INVALID_INPUT' });
      return error;
    },
  },
  scopeAuth: {
    authScopes: (ctx) => ({ admin: ctx.auth.role === 'ADMIN' }),
    unauthorizedError: () =>
      new GraphQLError('This token may read but not change data: use an ADMIN token.', {
        extensions: { code: 'FORBIDDEN' },
      }),
  },
  // No default error types: each field lists the narrow errors it can return, so nothing
  // unexpected (an SQL error, say) is ever shown as a typed error.
  errors: {
    defaultTypes: [],
    // The success member of a result union is the object itself (`TrainingGroup`), not a wrapper.
    directResult: true,
    // Input validation failures become InvalidInputError results. They are checked before
    // scope auth, so a VIEWER token learns only that its input was malformed: no data.
    unsafelyHandleInputErrors: true,
    defaultUnionOptions: {
      name: ({ fieldName }) => `${capitalize(fieldName)}Result`,
      description: 'The object on success, or a typed error saying what to fix.',
    },
    defaultResultOptions: {
      name: ({ fieldName }) => `${capitalize(fieldName)}Success`,
      description: 'What the mutation returns when it succeeds.',
    },
  },
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    nodeQueryOptions: {
      description: 'Fetches any object of your company by its global ID.',
      args: { id: { description: 'A global ID, as returned in any `id` field.' } },
    },
    nodesQueryOptions: false,
    nodeTypeOptions: { description: 'An object with a global ID.' },
    pageInfoTypeOptions: { description: 'Where a page sits in a paginated list.' },
    idFieldOptions: { description: 'Global ID of the object (use it with `node`).' },
    cursorFieldOptions: { description: 'Pass as `after` to get the items after this one.' },
    nodeFieldOptions: { description: 'The item.' },
    edgesFieldOptions: { description: 'The items of this page with their cursors.' },
    pageInfoFieldOptions: {
      description: 'Whether more pages follow, and the cursors to get them.',
    },
    hasNextPageFieldOptions: { description: 'True when more items follow this page.' },
    hasPreviousPageFieldOptions: { description: 'True when items precede this page.' },
    startCursorFieldOptions: { description: 'Cursor of the first item of the page.' },
    endCursorFieldOptions: {
      description: 'Cursor of the last item of the page: the next `after`.',
    },
    afterArgOptions: { description: 'Return the items after this cursor.' },
    firstArgOptions: { description: 'How many items to return (default 20, at most 100).' },
  },
});
