import { randomUUID, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type DocumentNode, getOperationAST } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { type Logger, requestScope } from '../infrastructure/logger.js';
import type { Metrics } from '../infrastructure/metrics.js';
import type { Readiness } from '../infrastructure/readiness.js';
import { DOWNLOAD_PATH } from './download-route.js';

/** What is learnt about a request while it is served, for its access line and metrics. */
interface ObservedRequest {
  requestId: string;
  /** Bounded for metrics: a GraphQL operation's type and first root field ("mutation startImport"). */
  operation?: string;
  /** The name the client gave its operation (its own choice: logged, never a metric label). */
  operationName?: string;
  companyId?: string;
  errorCodes: string[];
}

export interface ObservabilityOptions {
  logger: Logger;
  metrics: Metrics;
  readiness(): Promise<Readiness>;
  /** When set, /metrics wants `Authorization: Bearer <token>`. */
  metricsToken?: string;
}

/** The request a response answers, while observeRequests serves it. */
const observedResponses = new WeakMap<ServerResponse, ObservedRequest>();

/**
 * Records an error code for the access line and metrics of a request answered outside Yoga
 * (a refusal from its headers or body, before any GraphQL runs).
 */
export function recordErrorCode(response: ServerResponse, code: string): void {
  observedResponses.get(response)?.errorCodes.push(code);
}

/** A caller's id is kept when it is short and plain (it goes into log lines as it is). */
const ACCEPTED_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Paths whose requests are logged at debug only: probes and scrapes come every few seconds. */
const PROBES = new Set(['/health', '/healthz', '/ready', '/metrics']);

/**
 * Wraps the app's request listener: gives each request an id (the caller's `x-request-id`,
 * else a new one, returned in the response's `x-request-id`), runs it inside the request
 * scope so every line it logs carries the id, serves /ready and /metrics, and writes one
 * access line and the request metrics when the response ends.
 */
export function observeRequests(
  handle: (request: IncomingMessage, response: ServerResponse) => void,
  options: ObservabilityOptions,
): (request: IncomingMessage, response: ServerResponse) => void {
  const { logger, metrics } = options;
  return (request, response) => {
    const offered = request.headers['x-request-id'];
    const requestId =
      typeof offered === 'string' && ACCEPTED_REQUEST_ID.test(offered) ? offered : randomUUID();
    response.setHeader('x-request-id', requestId);
    // The query string is never logged: download links carry their signature there.
    const path = (request.url ?? '/').split('?')[0] ?? '/';
    const observed: ObservedRequest = { requestId, errorCodes: [] };
    observedResponses.set(response, observed);
    const started = performance.now();
    response.once('close', () => {
      const seconds = (performance.now() - started) / 1000;
      const status = response.statusCode;
      const operation = observed.operation ?? routeOf(request.method, path);
      if (observed.errorCodes.length === 0 && status >= 400 && !path.startsWith('/graphql')) {
        observed.errorCodes.push(`HTTP_${status}`);
      }
      metrics.requests.inc({ operation, status: String(status) });
      metrics.requestDuration.observe({ operation }, seconds);
      for (const code of observed.errorCodes) metrics.errors.inc({ code });
      const line = {
        requestId,
        method: request.method,
        path,
        operation,
        ...(observed.operationName ? { operationName: observed.operationName } : {}),
        status,
        durationMs: Math.round(seconds * 1000),
        ...(observed.companyId ? { companyId: observed.companyId } : {}),
        ...(observed.errorCodes.length > 0 ? { errors: observed.errorCodes } : {}),
        ...(response.writableFinished ? {} : { aborted: true }),
      };
      if (PROBES.has(path)) logger.debug('request', line);
      else logger.info('request', line);
    });
    requestScope.run(observed, () => {
      if (path === '/metrics') {
        serveMetrics(request, response, options);
        return;
      }
      if (path === '/ready') {
        serveReadiness(response, options);
        return;
      }
      handle(request, response);
    });
  };
}

/**
 * Records a GraphQL request's operation, company and error codes on the request being
 * observed (see observeRequests); does nothing outside one.
 */
export function useRequestObservation(): Plugin {
  const current = () => requestScope.getStore() as ObservedRequest | undefined;
  return {
    onParams({ params }) {
      const observed = current();
      if (observed && typeof params.operationName === 'string') {
        observed.operationName = params.operationName.slice(0, 100);
      }
    },
    onExecute({ args }) {
      record(current(), args);
    },
    onSubscribe({ args }) {
      record(current(), args);
    },
    onResultProcess({ result }) {
      const observed = current();
      if (!observed) return;
      for (const one of Array.isArray(result) ? result : [result]) {
        if (!one || Symbol.asyncIterator in one) continue;
        for (const error of one.errors ?? []) {
          const code = error.extensions?.code;
          observed.errorCodes.push(typeof code === 'string' ? code : 'UNKNOWN');
        }
      }
    },
  };
}

function record(
  observed: ObservedRequest | undefined,
  args: { document: DocumentNode; operationName?: string | null; contextValue: unknown },
): void {
  if (!observed) return;
  observed.operation = operationLabel(args.document, args.operationName ?? undefined);
  const auth = (args.contextValue as { auth?: { companyId?: string } }).auth;
  if (auth?.companyId) observed.companyId = auth.companyId;
}

function operationLabel(document: DocumentNode, operationName: string | undefined): string {
  const operation = getOperationAST(document, operationName);
  if (!operation) return 'graphql';
  const first = operation.selectionSet.selections[0];
  return first?.kind === 'Field'
    ? `${operation.operation} ${first.name.value}`
    : operation.operation;
}

/** A bounded label for requests that ran no GraphQL operation. */
function routeOf(method: string | undefined, path: string): string {
  if (PROBES.has(path)) return path.slice(1);
  if (path.startsWith(DOWNLOAD_PATH)) return 'download';
  if (path === '/graphql') return method === 'GET' ? 'graphiql' : 'graphql';
  return 'other';
}

function serveMetrics(
  request: IncomingMessage,
  response: ServerResponse,
  { metrics, metricsToken, logger }: ObservabilityOptions,
): void {
  if (metricsToken && !sameSecret(request.headers.authorization, `Bearer ${metricsToken}`)) {
    response.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer' });
    response.end('Send METRICS_TOKEN: Authorization: Bearer <token>.\n');
    return;
  }
  metrics.registry.metrics().then(
    (text) => {
      response.writeHead(200, { 'content-type': metrics.registry.contentType });
      response.end(text);
    },
    (error: unknown) => {
      logger.error('collecting metrics failed', { error: String(error) });
      response.writeHead(503, { 'content-type': 'text/plain' });
      response.end('Metrics could not be collected; see the server log.\n');
    },
  );
}

function serveReadiness(response: ServerResponse, { readiness, logger }: ObservabilityOptions) {
  readiness().then(
    (report) => {
      if (!report.ready) logger.warn('not ready', report.checks);
      response.writeHead(report.ready ? 200 : 503, { 'content-type': 'application/json' });
      response.end(
        JSON.stringify({ status: report.ready ? 'ready' : 'unready', ...report.checks }),
      );
    },
    (error: unknown) => {
      logger.error('readiness check failed', { error: String(error) });
      response.writeHead(503, { 'content-type': 'application/json' });
      response.end('{"status":"unready"}');
    },
  );
}

function sameSecret(given: string | undefined, expected: string): boolean {
  const a = Buffer.from(given ?? '');
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
