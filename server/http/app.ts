import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { sql } from 'drizzle-orm';
import { GraphQLError } from 'graphql';
import { processRequest, UploadError } from 'graphql-upload-ts';
import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import type { Database } from '../../drizzle/client.js';
import { schema } from '../../schema/index.js';
import { bearerToken } from '../infrastructure/auth.js';
import type { Config } from '../infrastructure/config.js';
import type { Logger } from '../infrastructure/logger.js';
import type { ImportEvents } from '../infrastructure/pubsub.js';
import type { TokenAuthenticator } from '../infrastructure/token-cache.js';
import type { ImportWorker } from '../jobs/import-worker.js';
import type { Context } from './context.js';
import { DOWNLOAD_PATH, loadSigningSecret, serveDownload } from './download-route.js';
import { serveGraphiQL } from './graphiql.js';
import { CSRF_HEADER, graphqlProtectionPlugins } from './graphql-limits.js';
import { attachGraphQLWebSocket } from './graphql-ws.js';
import { useRequestObservation } from './observability.js';
import { createWorkRateLimiter } from './rate-limit.js';

export interface AppOptions {
  db: Database;
  config: Config;
  logger: Logger;
  events: ImportEvents;
  importWorker: Pick<ImportWorker, 'wake'>;
  /** Resolves every request's bearer token (cached on Postgres: server/infrastructure/token-cache.ts). */
  tokens: TokenAuthenticator;
}

export interface App {
  yoga: YogaServerInstance<Record<string, unknown>, Context>;
  /** The Node request listener: health check, downloads, uploads, then GraphQL. */
  handle(request: IncomingMessage, response: ServerResponse): void;
  /** Serves graphql-ws on the HTTP server's /graphql; returns the function that closes it. */
  attachWebSocket(server: Server): () => Promise<void>;
}

function isMultipart(request: IncomingMessage): boolean {
  return (
    request.method === 'POST' &&
    (request.headers['content-type'] ?? '').toLowerCase().startsWith('multipart/form-data')
  );
}

function authenticationError(message: string): GraphQLError {
  return new GraphQLError(message, {
    extensions: {
      code: 'UNAUTHENTICATED',
      http: { status: 401, headers: { 'WWW-Authenticate': 'Bearer' } },
    },
  });
}

/** Builds the HTTP application around a database; no port is opened here. */
export function createApp({ db, config, logger, events, importWorker, tokens }: AppOptions): App {
  const workRateLimiter = createWorkRateLimiter(db, config.WORK_RATE_LIMIT_PER_MINUTE);
  let secret: Promise<string> | null = null;
  const signingSecret = () => {
    secret ??= loadSigningSecret(db).catch((error: unknown) => {
      secret = null;
      throw error;
    });
    return secret;
  };

  const yoga = createYoga<Record<string, unknown>, Context>({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    // GraphiQL is served by serveGraphiQL (graphiql.ts) in `handle`, before Yoga.
    graphiql: false,
    plugins: [
      ...graphqlProtectionPlugins({ introspection: config.GRAPHQL_INTROSPECTION }),
      useRequestObservation(),
    ],
    // One operation per request: a batch would multiply every limit above.
    batching: false,
    // Unexpected errors become "Unexpected error." for callers (and are logged); only
    // NODE_ENV=development adds the original error to the response.
    maskedErrors: { isDev: config.NODE_ENV === 'development' },
    // Yoga refuses bodies over 25 MB by Content-Length, multipart uploads included (parsed
    // before Yoga): allow what MAX_UPLOAD_BYTES allows, plus the operations and map fields.
    maxRequestBodySize: Math.max(25_000_000, config.MAX_UPLOAD_BYTES + 2_000_000),
    logging: {
      debug: (...args) => logger.debug(args.map(String).join(' ')),
      info: (...args) => logger.info(args.map(String).join(' ')),
      warn: (...args) => logger.warn(args.map(String).join(' ')),
      error: (...args) => logger.error(args.map(String).join(' ')),
    },
    context: async (initial): Promise<Context> => {
      // Over HTTP and SSE the token is a header; over graphql-ws it is in connectionParams.
      const { request, connectionParams } = initial as {
        request?: Request;
        connectionParams?: Record<string, unknown>;
      };
      const header =
        request?.headers.get('authorization') ??
        (connectionParams?.Authorization as string | undefined) ??
        (connectionParams?.authorization as string | undefined);
      const token = bearerToken(header);
      if (!token) {
        throw authenticationError('Send an API token: Authorization: Bearer <token>.');
      }
      const auth = await tokens.authenticate(token);
      if (!auth) throw authenticationError('The API token is not valid or was revoked.');
      const origin = request
        ? new URL(request.url).origin
        : ((initial as { origin?: string }).origin ?? 'http://localhost');
      const publicUrl = config.PUBLIC_URL ?? origin;
      return {
        db,
        auth,
        config,
        logger,
        events,
        importWorker,
        workRateLimiter,
        publicUrl,
        signingSecret,
      };
    },
  });

  const graphiqlOptions = {
    graphqlEndpoint: '/graphql',
    title: 'Muster',
    onError: (error: unknown) => logger.error('GraphiQL failed', { error: String(error) }),
  };
  const handle = (request: IncomingMessage, response: ServerResponse) => {
    if (request.url === '/health' || request.url === '/healthz') {
      db.execute(sql`select 1`).then(
        () => {
          response.writeHead(200, { 'content-type': 'application/json' });
          response.end('{"status":"ok"}');
        },
        (error: unknown) => {
          logger.error('health check failed', { error: String(error) });
          response.writeHead(503, { 'content-type': 'application/json' });
          response.end('{"status":"unavailable"}');
        },
      );
      return;
    }
    if (request.method === 'GET' && request.url?.startsWith(DOWNLOAD_PATH)) {
      signingSecret()
        .then((key) => serveDownload(db, key, request.url as string, response, logger))
        .catch((error: unknown) => {
          logger.error('download failed', { error: String(error) });
          if (!response.headersSent) response.writeHead(500);
          response.end();
        });
      return;
    }
    // GraphiQL needs introspection: with GRAPHQL_INTROSPECTION=false both are off.
    if (config.GRAPHQL_INTROSPECTION && serveGraphiQL(request, response, graphiqlOptions)) return;
    if (isMultipart(request)) {
      handleUpload(request, response);
      return;
    }
    void yoga.requestListener(request, response);
  };

  /**
   * Multipart requests (GraphQL multipart request spec) are parsed by graphql-upload-ts before
   * Yoga: it streams the file to a temporary file with the limits enforced while streaming,
   * and hands resolvers an Upload. Yoga then sees the parsed operation as a JSON body, so its
   * own multipart parsing never runs on these requests.
   */
  const handleUpload = (request: IncomingMessage, response: ServerResponse) => {
    // Refused before a byte of the file is read: a form on another site can post multipart.
    if (request.headers[CSRF_HEADER] === undefined) {
      response.writeHead(403, { 'content-type': 'application/json', connection: 'close' });
      response.end(
        JSON.stringify({
          errors: [
            {
              message: `Multipart requests must carry the header ${CSRF_HEADER} (any value), which a browser form cannot send.`,
              extensions: { code: 'CSRF_HEADER_REQUIRED' },
            },
          ],
        }),
      );
      return;
    }
    processRequest(request, response, {
      maxFileSize: config.MAX_UPLOAD_BYTES,
      maxFiles: 1,
      maxFieldSize: 1_000_000,
    }).then(
      (operations) => {
        (request as IncomingMessage & { body?: unknown }).body = operations;
        void yoga.requestListener(request, response);
      },
      (error: unknown) => {
        const status = error instanceof UploadError ? error.status : 400;
        const message =
          error instanceof UploadError ? error.message : 'The multipart request could not be read.';
        const code = error instanceof UploadError ? error.code : 'INVALID_MULTIPART';
        if (!response.headersSent) {
          response.writeHead(status, { 'content-type': 'application/json' });
        }
        response.end(JSON.stringify({ errors: [{ message, extensions: { code } }] }));
      },
    );
  };

  return {
    yoga,
    handle,
    attachWebSocket: (server) => attachGraphQLWebSocket(server, yoga, tokens),
  };
}
