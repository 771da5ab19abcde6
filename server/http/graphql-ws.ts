import type { Server } from 'node:http';
import type { ExecutionArgs } from 'graphql';
import type { OperationResult } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import type { YogaServerInstance } from 'graphql-yoga';
import { type WebSocket, WebSocketServer } from 'ws';
import { bearerToken } from '../infrastructure/auth.js';
import type { TokenAuthenticator } from '../infrastructure/token-cache.js';
import type { Context } from './context.js';
import { originOfRequest } from './request-guards.js';

/**
 * Largest graphql-ws frame: ws closes the socket (1009) past it, while reading the frame, so
 * no message bigger than this is ever held; every operation the client sends is far smaller.
 */
export const MAX_WS_FRAME_BYTES = 1024 * 1024;
/** Time a socket has to send a valid connection_init before it is closed (4408). */
export const CONNECTION_INIT_TIMEOUT_MS = 3_000;

type Yoga = YogaServerInstance<Record<string, unknown>, Context>;

interface Executors {
  execute(args: ExecutionArgs): OperationResult;
  subscribe(args: ExecutionArgs): OperationResult;
}

const closedSignals = new WeakMap<WebSocket, AbortSignal>();

/** Aborted when the socket closes: one listener per socket, however many operations it runs. */
function closedSignal(socket: WebSocket): AbortSignal {
  let signal = closedSignals.get(socket);
  if (!signal) {
    const closed = new AbortController();
    if (socket.readyState >= socket.CLOSING) closed.abort();
    else socket.once('close', () => closed.abort());
    signal = closed.signal;
    closedSignals.set(socket, signal);
  }
  return signal;
}

/**
 * graphql-ws on the same path as HTTP (/graphql), through Yoga's envelop so it gets the same
 * schema, plugins and context. The token travels in connectionParams
 * (`{ "Authorization": "Bearer …" }`); a missing or wrong one closes the socket with 4403.
 */
export function attachGraphQLWebSocket(
  server: Server,
  yoga: Yoga,
  tokens: TokenAuthenticator,
): () => Promise<void> {
  const wsServer = new WebSocketServer({
    server,
    path: yoga.graphqlEndpoint,
    maxPayload: MAX_WS_FRAME_BYTES,
  });
  const cleanup = useServer(
    {
      connectionInitWaitTimeout: CONNECTION_INIT_TIMEOUT_MS,
      onConnect: async (ctx) => {
        const params = ctx.connectionParams ?? {};
        const token = bearerToken(
          (params.Authorization as string | undefined) ??
            (params.authorization as string | undefined),
        );
        return token ? (await tokens.authenticate(token)) !== null : false;
      },
      execute: (args) => (args.rootValue as Executors).execute(args),
      subscribe: (args) => (args.rootValue as Executors).subscribe(args),
      onSubscribe: async (ctx, _id, params) => {
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          // An operation's statements are cancelled, if it only reads, when its socket closes.
          socketClosed: closedSignal(ctx.extra.socket),
          connectionParams: ctx.connectionParams,
          origin: originOfRequest(ctx.extra.request.headers.host, ctx.extra.request.socket),
          params,
        });
        const document = parse(params.query);
        const errors = validate(schema, document);
        if (errors.length > 0) return errors;
        return {
          schema,
          document,
          operationName: params.operationName,
          variableValues: params.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe } as Executors,
        };
      },
    },
    wsServer,
  );
  return async () => {
    await cleanup.dispose();
    await new Promise<void>((resolve) => wsServer.close(() => resolve()));
  };
}
