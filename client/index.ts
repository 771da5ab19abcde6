export {
  createMusterClient,
  type MusterClientOptions,
  type SubscriptionTransport,
} from './create-client.js';
export * from './gql/graphql.js';
export { graphql } from './gql/index.js';
export {
  type ColumnsPolicy,
  IMPORT_STOP_POINTS,
  type ImportSession,
  type ImportStopPoint,
  ImportUsersError,
  type ImportUsersFailureReason,
  type ImportUsersOptions,
  importUsers,
} from './import-users.js';
