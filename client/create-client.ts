import { Client, type Exchange, fetchExchange, subscriptionExchange } from '@urql/core';
import { createClient as createWebSocketClient } from 'graphql-ws/client';

/** How `importSessionUpdated` and other subscriptions reach the server. */
export type SubscriptionTransport = 'sse' | 'graphql-ws';

/** A value, or a function giving it (possibly asynchronously), asked again for every request. */
export type Supplied<Value> = Value | (() => Value | Promise<Value>);

export interface MusterClientOptions {
  /** The GraphQL endpoint, e.g. http://localhost:4000/graphql */
  url: string;
  /**
   * An API token (ADMIN to change data, VIEWER to read), or a function returning it (it may
   * be async: read from storage, refreshed), called for every request and WebSocket.
   */
  token: Supplied<string>;
  /**
   * Headers sent with every request besides the token (a tracing id, a locale), or a
   * function returning them, called for every request. They cannot replace the token's
   * Authorization header.
   */
  headers?: Supplied<Record<string, string>>;
  /** A fetch implementation; the global one by default. */
  fetch?: typeof globalThis.fetch;
  /**
   * urql exchanges to run before the client's own transport, in order: a cacheExchange, a
   * retryExchange, an authExchange, devtools, … The client ends with the exchange that sends
   * requests (and, with `graphql-ws`, the subscription exchange).
   */
  exchanges?: readonly Exchange[];
  /**
   * `sse` (default): subscriptions are POSTs answered with Server-Sent Events, through the same
   * fetch as queries. `graphql-ws`: one WebSocket on the same path, opened while a
   * subscription runs.
   */
  subscriptionTransport?: SubscriptionTransport;
  /**
   * The WebSocket class for `graphql-ws`, where there is no global one (Node 20:
   * `import WebSocket from 'ws'`). Browsers and Node 22 need nothing.
   */
  webSocketImpl?: unknown;
  /** The graphql-ws URL; by default `url` with http(s) turned into ws(s). */
  webSocketUrl?: string;
}

function supplied<Value>(value: Supplied<Value>): Promise<Value> {
  return Promise.resolve(
    typeof value === 'function' ? (value as () => Value | Promise<Value>)() : value,
  );
}

/**
 * An urql Client for the Muster API: the bearer token on every request, POST always, file
 * variables (File or Blob) sent as GraphQL multipart requests, subscriptions over SSE or
 * graphql-ws. Use it with the generated typed documents, or as `urql`'s Provider value.
 */
export function createMusterClient(options: MusterClientOptions): Client {
  // No document cache unless one is passed in `exchanges`: import sessions change under the
  // client, and results keep exactly the shape of the generated types (urql's cacheExchange
  // adds __typename everywhere).
  const exchanges: Exchange[] = [...(options.exchanges ?? []), fetchExchange];
  const transport = options.subscriptionTransport ?? 'sse';
  if (transport === 'graphql-ws') exchanges.push(webSocketExchange(options));
  return new Client({
    url: options.url,
    exchanges,
    fetch: endingQuietlyOnAbort(authorizing(options, options.fetch ?? globalThis.fetch)),
    // fetchExchange runs subscriptions itself as SSE requests; with graphql-ws they pass it by.
    fetchSubscriptions: transport === 'sse',
    // POST always: GET requests need a CSRF-prevention header and leak into logs.
    preferGetMethod: false,
    fetchOptions: () => ({
      // Yoga's CSRF prevention accepts multipart uploads that carry this header.
      headers: { 'x-graphql-yoga-csrf': 'muster-client' },
    }),
  });
}

/**
 * Adds the headers and the token to each request. urql's fetchOptions are synchronous, so a
 * token or headers given by an async function are awaited here, just before the request.
 */
function authorizing(
  options: MusterClientOptions,
  fetchImpl: typeof globalThis.fetch,
): typeof globalThis.fetch {
  return async (input, init) => {
    const headers = new Headers(init?.headers);
    if (options.headers) {
      for (const [name, value] of Object.entries(await supplied(options.headers))) {
        headers.set(name, value);
      }
    }
    headers.set('authorization', `Bearer ${await supplied(options.token)}`);
    return fetchImpl(input, { ...init, headers });
  };
}

/**
 * urql ends an SSE subscription by aborting its request while its own iterator may still be
 * reading the body; the read then rejects with AbortError and urql (wonka's `return()`, not
 * awaited) leaves that rejection unhandled, which crashes strict Node processes and test
 * runners. Event streams are therefore handed to urql through a stream that simply ends when
 * the request was aborted; any other failure still errors.
 */
function endingQuietlyOnAbort(fetchImpl: typeof globalThis.fetch): typeof globalThis.fetch {
  return async (input, init) => {
    const response = await fetchImpl(input, init);
    const signal = init?.signal;
    const isEventStream = response.headers.get('content-type')?.includes('text/event-stream');
    if (!signal || !response.body || !isEventStream) return response;
    const reader = response.body.getReader();
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const chunk = await reader.read();
          if (chunk.done) controller.close();
          else controller.enqueue(chunk.value);
        } catch (error) {
          if (signal.aborted) controller.close();
          else controller.error(error);
        }
      },
      cancel: (reason) => reader.cancel(reason).catch(() => {}),
    });
    return new Response(body, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
}

function webSocketExchange(options: MusterClientOptions): Exchange {
  const webSocketImpl = options.webSocketImpl ?? (globalThis as { WebSocket?: unknown }).WebSocket;
  if (!webSocketImpl) {
    throw new TypeError(
      "subscriptionTransport 'graphql-ws' needs a WebSocket: pass webSocketImpl (on Node 20: import WebSocket from 'ws').",
    );
  }
  // Lazy: the socket opens with the first subscription and closes after the last one ends,
  // so a script using the client can exit.
  const socket = createWebSocketClient({
    url: options.webSocketUrl ?? options.url.replace(/^http/i, 'ws'),
    webSocketImpl,
    connectionParams: async () => ({ Authorization: `Bearer ${await supplied(options.token)}` }),
    lazy: true,
  });
  return subscriptionExchange({
    forwardSubscription: (request) => ({
      subscribe: (sink) => ({
        unsubscribe: socket.subscribe({ ...request, query: request.query ?? '' }, sink),
      }),
    }),
  });
}
