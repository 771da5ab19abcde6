import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { sql } from 'drizzle-orm';
import { GraphQLError } from 'graphql';
import { processRequest, Upload, UploadError } from 'graphql-upload-ts';
import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import type { Database } from '../../drizzle/client.js';
import { schema } from '../../schema/index.js';
import { bearerToken } from '../infrastructure/auth.js';
import type { Config } from '../infrastructure/config.js';
import type { Logger } from '../infrastructure/logger.js';
import type { ImportEvents } from '../infrastructure/pubsub.js';
import type { TokenAuthenticator } from '../infrastructure/token-cache.js';
import type { ImportWorker } from '../jobs/import-worker.js';
import { useCompiledQueries } from './compiled-queries.js';
import type { Context } from './context.js';
import { DOWNLOAD_PATH, loadSigningSecret, serveDownload } from './download-route.js';
import { serveGraphiQL } from './graphiql.js';
import { CSRF_HEADER, graphqlProtectionPlugins } from './graphql-limits.js';
import { attachGraphQLWebSocket } from './graphql-ws.js';
import { useRequestObservation } from './observability.js';
import { createMailBudget, createWorkRateLimiter } from './rate-limit.js';
import { RequestScope, requestDatabase, useRequestScope } from './request-database.js';
import {
  authenticateHeaders,
  BodyTooLargeError,
  boundedMaskError,
  originOfRequest,
  readBody,
  refuse,
  requestAuth,
  UNAUTHENTICATED,
  uploadTempDirectory,
} from './request-guards.js';
import { createSubscriptionRegistry, subscriptionLimitPlugin } from './subscription-limits.js';

/** What a request refused for its token is told: the same words as Yoga's refusals. */
function unauthenticatedMessage(request: IncomingMessage): string {
  return bearerToken(request.headers.authorization)
    ? 'The API token is not valid or was revoked.'
    : 'Send an API token: Authorization: Bearer <token>.';
}

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

/** Fails every file of a multipart request's operations, deleting its temporary file. */
function abandonUploads(value: unknown, depth = 0): void {
  if (value instanceof Upload) {
    value.promise.then(
      (file) => {
        const capacitor = (file as unknown as { capacitor?: { destroy(error: Error): void } })
          .capacitor;
        capacitor?.destroy(new Error('The client closed the request during the upload.'));
      },
      () => {},
    );
    return;
  }
  if (typeof value === 'object' && value !== null && depth < 8) {
    for (const entry of Object.values(value)) abandonUploads(entry, depth + 1);
  }
}

function authenticationError(message: string): GraphQLError {
  return new GraphQLError(message, {
    extensions: {
      code: 'UNAUTHENTICATED',
      http: { status: 401, headers: { 'WWW-Authenticate': 'Bearer' } },
    },
  });
}

/**
 * Aborted when the client goes before its answer is written: the response closes unfinished.
 * In process (`yoga.fetch`, no response) the request's own signal.
 */
function clientLeft(response: ServerResponse | undefined, request: Request | undefined) {
  if (!response) return request?.signal ?? new AbortController().signal;
  const left = new AbortController();
  if (response.destroyed && !response.writableFinished) left.abort();
  response.once('close', () => {
    if (!response.writableFinished) left.abort();
  });
  return left.signal;
}

/** Builds the HTTP application around a database; no port is opened here. */
export function createApp({ db, config, logger, events, importWorker, tokens }: AppOptions): App {
  const uploadTemp = uploadTempDirectory(config.DATA_DIR);
  const subscriptions = createSubscriptionRegistry({
    db,
    maxPerToken: config.MAX_SUBSCRIPTIONS_PER_TOKEN,
    logger,
  });
  const workRateLimiter = createWorkRateLimiter(db, config.WORK_RATE_LIMIT_PER_MINUTE);
  const mailBudget = createMailBudget(db, config.MAIL_PER_COMPANY_PER_HOUR);
  let secret: Promise<string> | null = null;
  const signingSecret = () => {
    secret ??= loadSigningSecret(db).catch((error: unknown) => {
      secret = null;
      throw error;
    });
    return secret;
  };

  /** Each request's database scope, by the request's database (see useRequestScope). */
  const scopes = new WeakMap<Database, RequestScope>();

  const yoga = createYoga<Record<string, unknown>, Context>({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    // GraphiQL is served by serveGraphiQL (graphiql.ts) in `handle`, before Yoga.
    graphiql: false,
    plugins: [
      ...graphqlProtectionPlugins({ introspection: config.GRAPHQL_INTROSPECTION }),
      subscriptionLimitPlugin(subscriptions),
      useRequestObservation(),
      useRequestScope(scopes),
      useCompiledQueries(),
    ],
    // Browsers may call the API only from the origins of CORS_ORIGINS; none by default.
    cors:
      config.CORS_ORIGINS.length > 0
        ? {
            origin: config.CORS_ORIGINS,
            credentials: true,
            methods: ['GET', 'POST'],
            allowedHeaders: ['authorization', 'content-type', CSRF_HEADER],
          }
        : false,
    // One operation per request: a batch would multiply every limit above.
    batching: false,
    // Unexpected errors become "Unexpected error." for callers (and are logged); only
    // NODE_ENV=development adds the original error to the response.
    // No message is longer than a few hundred characters, so none can echo a request back.
    maskedErrors: { isDev: config.NODE_ENV === 'development', maskError: boundedMaskError },
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
      const { request, connectionParams, req, res, socketClosed } = initial as {
        request?: Request;
        req?: IncomingMessage;
        res?: ServerResponse;
        connectionParams?: Record<string, unknown>;
        /** graphql-ws: aborted when the operation's socket closes. */
        socketClosed?: AbortSignal;
      };
      const checked = requestAuth(req);
      const header =
        request?.headers.get('authorization') ??
        (connectionParams?.Authorization as string | undefined) ??
        (connectionParams?.authorization as string | undefined);
      const token = bearerToken(header);
      if (!token && !checked) {
        throw authenticationError('Send an API token: Authorization: Bearer <token>.');
      }
      const auth = checked ?? (token ? await tokens.authenticate(token) : null);
      if (!auth) throw authenticationError('The API token is not valid or was revoked.');
      // Over HTTP, from the Host only when it names this server; `yoga.fetch` in process
      // (no socket) keeps its URL's origin, graphql-ws passes the one it checked.
      const origin = req
        ? originOfRequest(req.headers.host, req.socket)
        : request
          ? new URL(request.url).origin
          : ((initial as { origin?: string }).origin ?? 'http://localhost');
      const publicUrl = config.PUBLIC_URL ?? origin;
      const scope = new RequestScope(socketClosed ?? clientLeft(res, request));
      const context: Context = {
        db: requestDatabase(db, scope),
        auth,
        config,
        logger,
        events,
        importWorker,
        workRateLimiter,
        mailBudget,
        publicUrl,
        signingSecret,
      };
      scopes.set(context.db, scope);
      return context;
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
      void handleUpload(request, response);
      return;
    }
    if (request.method === 'POST') {
      void handlePost(request, response);
      return;
    }
    void yoga.requestListener(request, response);
  };

  /**
   * A POST is answered 401 from its headers when its token is not valid, and its body is read
   * by the byte count (MAX_REQUEST_BYTES) before anything parses it; JSON is parsed here, so a
   * malformed body gets a short answer that does not quote it.
   */
  const handlePost = async (request: IncomingMessage, response: ServerResponse) => {
    try {
      if (!(await authenticateHeaders(request, tokens))) {
        const { status, code, headers } = UNAUTHENTICATED;
        refuse(response, status, code, unauthenticatedMessage(request), headers);
        return;
      }
      const body = await readBody(request, config.MAX_REQUEST_BYTES);
      if ((request.headers['content-type'] ?? '').toLowerCase().includes('json')) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(body.toString('utf8'));
        } catch {
          parsed = undefined;
        }
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
          refuse(response, 400, 'BAD_REQUEST', 'The request body must be one JSON object.');
          return;
        }
        (request as IncomingMessage & { body?: unknown }).body = parsed;
      } else {
        (request as IncomingMessage & { body?: unknown }).body = body;
      }
      void yoga.requestListener(request, response);
    } catch (error) {
      if (error instanceof BodyTooLargeError) {
        refuse(response, 413, 'REQUEST_TOO_LARGE', error.message);
      } else if (!response.writableEnded) {
        // The client went away, or its token could not be looked up: nothing more to read.
        logger.debug('request abandoned', { error: String(error) });
        response.destroy();
      }
    }
  };

  /**
   * Multipart requests (GraphQL multipart request spec) are parsed by graphql-upload-ts before
   * Yoga: it streams the file to a temporary file with the limits enforced while streaming,
   * and hands resolvers an Upload. Yoga then sees the parsed operation as a JSON body, so its
   * own multipart parsing never runs on these requests.
   */
  const handleUpload = async (request: IncomingMessage, response: ServerResponse) => {
    // Refused before a byte of the file is read: a form on another site can post multipart.
    if (request.headers[CSRF_HEADER] === undefined) {
      refuse(
        response,
        403,
        'CSRF_HEADER_REQUIRED',
        `Multipart requests must carry the header ${CSRF_HEADER} (any value), which a browser form cannot send.`,
      );
      return;
    }
    // Only ADMIN tokens may upload (uploads only start imports): anyone else is refused from
    // the headers, and nothing of the file is read or written.
    let auth: Awaited<ReturnType<typeof authenticateHeaders>>;
    try {
      auth = await authenticateHeaders(request, tokens);
    } catch (error) {
      logger.error('token lookup failed', { error: String(error) });
      refuse(response, 503, 'UNAVAILABLE', 'The server cannot check tokens right now.');
      return;
    }
    if (!auth) {
      const { status, code, headers } = UNAUTHENTICATED;
      refuse(response, status, code, unauthenticatedMessage(request), headers);
      return;
    }
    if (auth.role !== 'ADMIN') {
      refuse(
        response,
        403,
        'FORBIDDEN',
        'This token may read but not change data: use an ADMIN token.',
      );
      return;
    }
    processRequest(request, response, {
      maxFileSize: config.MAX_UPLOAD_BYTES,
      maxFiles: 1,
      maxFieldSize: 1_000_000,
      tmpdir: uploadTemp,
    }).then(
      (operations) => {
        // A client that goes before its answer leaves the resolver waiting for bytes that
        // never come, and graphql-upload-ts keeps the temporary file while it waits: fail
        // the file instead (the import stores nothing), which deletes the file.
        response.once('close', () => {
          if (!response.writableFinished) abandonUploads(operations);
        });
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
