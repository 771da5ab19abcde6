// urql's public API that this package's own API uses or that extending the client needs.
export {
  type AnyVariables,
  Client,
  CombinedError,
  cacheExchange,
  debugExchange,
  type Exchange,
  mapExchange,
  type Operation,
  type OperationContext,
  type OperationResult,
  type OperationResultSource,
  type RequestPolicy,
  type TypedDocumentNode,
} from '@urql/core';
export {
  createMusterClient,
  type MusterClientOptions,
  type SubscriptionTransport,
  type Supplied,
} from './create-client.js';
export * from './gql/graphql.js';
export { graphql } from './graphql.js';
export {
  type ColumnsPolicy,
  IMPORT_STOP_POINTS,
  type ImportSession,
  type ImportStopPoint,
  ImportUsersError,
  type ImportUsersFailureReason,
  type ImportUsersOptions,
  importUsers,
  resumeImport,
} from './import-users.js';
export { RevertConflictsError, revertImport } from './revert-import.js';
