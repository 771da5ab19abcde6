import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import { createApp } from '../../server/http/app.js';
import { createHttpServer } from '../../server/http/http-server.js';
import { createCompany, createToken } from '../../server/infrastructure/auth.js';
import { loadConfig } from '../../server/infrastructure/config.js';
import { createLogger } from '../../server/infrastructure/logger.js';
import { createInProcessImportEvents } from '../../server/infrastructure/pubsub.js';
import { createTokenAuthenticator } from '../../server/infrastructure/token-cache.js';
import { startImportWorker } from '../../server/jobs/import-worker.js';
import { createTestDatabase } from './database.js';

export interface GraphQLResponse<T = Record<string, any>> {
  status: number;
  data?: T;
  errors?: { message: string; extensions?: Record<string, unknown> }[];
}

export interface TestCompany {
  companyId: string;
  /** ADMIN token */
  token: string;
  /** The ADMIN token's id (what the admin CLI revokes by) */
  tokenId: string;
  viewerToken: string;
}

/**
 * The app over a fresh database, called through `yoga.fetch` (no port needed), or over real
 * HTTP on an ephemeral port with `listen()` (uploads, downloads, subscriptions).
 */
export async function createTestApp(env: Record<string, string> = {}) {
  const database = await createTestDatabase();
  // Mail outboxes and other files go to a directory of the test's own.
  const dataDir = await mkdtemp(join(tmpdir(), 'muster-test-'));
  const config = loadConfig({ NODE_ENV: 'test', DATA_DIR: dataDir, ...env });
  const logger = createLogger('silent');
  const events = createInProcessImportEvents();
  const importWorker = startImportWorker({
    db: database.db,
    config,
    logger,
    events,
    pollIntervalMs: 100,
  });
  // As the server does: tokens cached on Postgres, dropped when the api_tokens trigger notifies.
  const tokens = await createTokenAuthenticator({
    db: database.db,
    postgres: database.postgres,
    cacheSeconds: config.TOKEN_CACHE_SECONDS,
  });
  const app = createApp({ db: database.db, config, logger, events, importWorker, tokens });

  async function request<T = Record<string, any>>(
    token: string | null,
    query: string,
    variables?: Record<string, unknown>,
  ): Promise<GraphQLResponse<T>> {
    const response = await app.yoga.fetch('http://muster.test/graphql', {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await response.json()) as Omit<GraphQLResponse<T>, 'status'>;
    return { status: response.status, ...body };
  }

  /**
   * Sends one of the client's typed documents (client/gql) as the client would, so a test
   * breaks when the client's operations and the schema drift apart.
   */
  async function send<Result, Variables extends Record<string, unknown>>(
    token: string | null,
    document: TypedDocumentNode<Result, Variables>,
    ...variables: Variables extends Record<string, never> ? [] : [Variables]
  ): Promise<GraphQLResponse<Result>> {
    return request<Result>(token, print(document), variables[0]);
  }

  /** A new company with an ADMIN and a VIEWER token: each test works in its own company. */
  async function createTestCompany(name = `Company ${randomBytes(3).toString('hex')}`) {
    const created = await createCompany(database.db, name);
    const viewer = await createToken(database.db, { companyId: created.companyId, role: 'VIEWER' });
    return {
      companyId: created.companyId,
      token: created.token,
      tokenId: created.tokenId,
      viewerToken: viewer.token,
    };
  }

  /** A fetch that reaches the app in process, for clients under test. */
  const fetchApp = ((input: RequestInfo | URL, init?: RequestInit) =>
    Promise.resolve(app.yoga.fetch(input as URL, init ?? {}))) as typeof globalThis.fetch;

  let server: Server | null = null;
  let closeWebSocket: (() => Promise<void>) | null = null;
  /** Serves the app over HTTP on 127.0.0.1 and an ephemeral port; returns its base URL. */
  async function listen(): Promise<string> {
    if (!server) {
      server = createHttpServer(app.handle);
      closeWebSocket = app.attachWebSocket(server);
    }
    const listening = server;
    if (!listening.listening) {
      await new Promise<void>((resolve) => listening.listen(0, '127.0.0.1', resolve));
    }
    return `http://127.0.0.1:${(listening.address() as AddressInfo).port}`;
  }

  return {
    database,
    config,
    listen,
    db: database.db,
    app,
    fetch: fetchApp,
    request,
    send,
    createTestCompany,
    close: async () => {
      await closeWebSocket?.();
      if (server?.listening) {
        const listening = server;
        await new Promise<void>((resolve) => {
          listening.close(() => resolve());
          listening.closeAllConnections();
        });
      }
      await importWorker.stop();
      await events.close();
      await tokens.close();
      await database.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export type TestApp = Awaited<ReturnType<typeof createTestApp>>;
