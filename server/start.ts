import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { sql } from 'drizzle-orm';
import { createDatabase, type DatabaseHandle, POOL_SIZE, queryRows } from '../drizzle/client.js';
import { createApp } from './http/app.js';
import { createHttpServer } from './http/http-server.js';
import { observeRequests } from './http/observability.js';
import { removeStaleUploadTemp } from './http/request-guards.js';
import { keepReaderWarm } from './import/reader/reader-thread.js';
import { bootstrapDefaultCompany } from './infrastructure/bootstrap.js';
import type { Config } from './infrastructure/config.js';
import { lockDataDirectory } from './infrastructure/data-dir-lock.js';
import type { Logger } from './infrastructure/logger.js';
import { createMetrics, type Metrics } from './infrastructure/metrics.js';
import { createImportEvents } from './infrastructure/pubsub.js';
import { checkReadiness } from './infrastructure/readiness.js';
import { createTokenAuthenticator } from './infrastructure/token-cache.js';
import { startImportWorker } from './jobs/import-worker.js';
import { purgeOldImports, scheduleRetention } from './jobs/retention.js';

export interface RunningServer {
  url: string;
  /** The default company's token when this start created it (first start only). */
  bootstrapToken: string | null;
  close(): Promise<void>;
}

/** A start-up failure the operator can act on: its message alone says what to change. */
export class StartError extends Error {}

/**
 * A database that cannot be reached or used at start, named by its variable and location
 * (never its password).
 */
function databaseStartError(config: Config, error: unknown): unknown {
  if (!config.DATABASE_URL) return error;
  const url = new URL(config.DATABASE_URL);
  const code = (error as { code?: string }).code;
  const reason = error instanceof Error ? error.message : String(error);
  return new StartError(
    `cannot use the database at DATABASE_URL (${url.host}${url.pathname}): ${reason}${code && !reason.includes(code) ? ` (${code})` : ''}`,
  );
}

/** Metrics from the database, read when scraped. */
function databaseMetrics(database: DatabaseHandle): Metrics {
  const postgres = database.kind === 'postgres';
  return createMetrics({
    importsByStage: () =>
      queryRows<{ stage: string; busy: boolean; count: number }>(
        database.db,
        sql`select stage, busy, count(*)::int as count from import_sessions group by stage, busy`,
      ),
    pool: async () => ({
      max: postgres ? POOL_SIZE : 1,
      connections: postgres
        ? await queryRows<{ state: string; count: number }>(
            database.db,
            sql`select coalesce(state, 'unknown') as state, count(*)::int as count
                from pg_stat_activity where datname = current_database() group by 1`,
          )
        : [],
    }),
    ping: async () => {
      await database.db.execute(sql`select 1`);
    },
  });
}

/** Opens the database, migrates, bootstraps, and listens. */
export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  const dataDir = resolve(config.DATA_DIR);
  const releaseDataDir = config.DATABASE_URL ? () => {} : lockDataDirectory(dataDir);
  const database = await createDatabase(
    config.DATABASE_URL ? { url: config.DATABASE_URL } : { dataDir: resolve(dataDir, 'pglite') },
  );
  let closeApiDatabase = (): Promise<void> => Promise.resolve();
  try {
    await database.migrate().catch((error: unknown) => {
      throw databaseStartError(config, error);
    });
    // Upload temp files of processes that were killed mid-upload.
    await removeStaleUploadTemp(dataDir);
    if (config.NODE_ENV === 'production' && !config.PUBLIC_URL) {
      logger.warn(
        'PUBLIC_URL is not set: download links use the address a request came in on; behind a proxy, set PUBLIC_URL.',
      );
    }
    await database.openPool();
    // Requests use a pool of their own on Postgres, whose statements are cancelled after
    // STATEMENT_TIMEOUT_MS: no request can hold a connection for long, and background work
    // (an import's statements over a million rows) keeps its pool and has no such limit.
    const apiDatabase = config.DATABASE_URL
      ? await createDatabase({
          url: config.DATABASE_URL,
          statementTimeoutMs: config.STATEMENT_TIMEOUT_MS,
        })
      : null;
    closeApiDatabase = () => apiDatabase?.close() ?? Promise.resolve();
    await apiDatabase?.openPool();
    const bootstrap = await bootstrapDefaultCompany(database.db, config.BOOTSTRAP_ADMIN_TOKEN);
    const events = await createImportEvents({
      redisUrl: config.REDIS_URL,
      postgres: database.postgres,
      logger,
    });
    const metrics = databaseMetrics(database);
    const importWorker = startImportWorker({
      db: database.db,
      config,
      logger,
      events,
      metrics,
      leaseMs: config.WORK_LEASE_SECONDS * 1000,
    });
    // The embedded database is this process's alone: every upload no session names is what a
    // killed process left, however recent (on Postgres, retention waits until none can be live).
    if (!config.DATABASE_URL) {
      await purgeOldImports(database.db, config.IMPORT_RETENTION_DAYS, new Date(), 0);
    }
    const tokens = await createTokenAuthenticator({
      db: database.db,
      postgres: database.postgres,
      cacheSeconds: config.TOKEN_CACHE_SECONDS,
    });
    const app = createApp({
      db: apiDatabase?.db ?? database.db,
      config,
      logger,
      events,
      importWorker,
      tokens,
    });
    const server = createHttpServer(
      observeRequests(app.handle, {
        logger,
        metrics,
        metricsToken: config.METRICS_TOKEN,
        readiness: () => checkReadiness(database.db, importWorker),
      }),
    );
    await new Promise<void>((resolveListen, rejectListen) => {
      server.once('error', (error: NodeJS.ErrnoException) =>
        rejectListen(
          error.code === 'EADDRINUSE' || error.code === 'EACCES' || error.code === 'EADDRNOTAVAIL'
            ? new StartError(
                `cannot listen on ${config.HOST}:${config.PORT} (PORT, HOST): ${error.code}${error.code === 'EADDRINUSE' ? ', the port is in use by another process' : ''}`,
              )
            : error,
        ),
      );
      server.listen(config.PORT, config.HOST, () => resolveListen());
    });
    // Started once listening: a start that fails (a port in use) must not leave a purge
    // running against the database it is closing.
    const stopRetention = scheduleRetention(database.db, config.IMPORT_RETENTION_DAYS, (error) =>
      logger.error('purging old imports failed', { error: String(error) }),
    );
    // Attached once listening: the WebSocket server re-emits the HTTP server's errors, and a
    // port in use would have been reported as its own internal error.
    const closeWebSocket = app.attachWebSocket(server);
    // The first import's read then starts at once (its worker is started and loaded).
    const stopWarmReader = keepReaderWarm();
    const { port } = server.address() as AddressInfo;
    const host =
      config.HOST === '0.0.0.0' || config.HOST === '::'
        ? 'localhost'
        : config.HOST.includes(':')
          ? `[${config.HOST}]`
          : config.HOST;
    return {
      url: `http://${host}:${port}`,
      bootstrapToken: bootstrap?.token ?? null,
      // Graceful: no new connections, background work finished or handed back, subscriptions
      // completed properly, then whatever is still open is cut and the database closed.
      close: async () => {
        stopRetention();
        const closed = new Promise<void>((resolveClose) => server.close(() => resolveClose()));
        server.closeIdleConnections();
        await importWorker.stop();
        await stopWarmReader();
        await events.close();
        await closeWebSocket();
        await tokens.close();
        const grace = new Promise<void>((resolveGrace) => setTimeout(resolveGrace, 2_000).unref());
        await Promise.race([closed, grace]);
        server.closeAllConnections();
        await closed;
        await closeApiDatabase();
        await database.close();
        releaseDataDir();
      },
    };
  } catch (error) {
    await closeApiDatabase();
    await database.close();
    releaseDataDir();
    throw error;
  }
}
