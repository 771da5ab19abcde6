import { Client, fetchExchange } from '@urql/core';

export * from './gql/graphql.js';
export { graphql } from './gql/index.js';

export interface MusterClientOptions {
  /** The GraphQL endpoint, e.g. http://localhost:4000/graphql */
  url: string;
  /** An API token (ADMIN to change data, VIEWER to read). */
  token: string;
  /** A fetch implementation; the global one by default. */
  fetch?: typeof globalThis.fetch;
}

/** An urql Client that sends the bearer token with every request. */
export function createMusterClient(options: MusterClientOptions): Client {
  return new Client({
    url: options.url,
    exchanges: [fetchExchange],
    fetch: options.fetch,
    // POST always: GET requests must carry a CSRF-prevention header and leak into logs.
    preferGetMethod: false,
    fetchOptions: () => ({ headers: { authorization: `Bearer ${options.token}` } }),
  });
}
