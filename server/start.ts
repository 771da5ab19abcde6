import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { createDatabase } from '../drizzle/client.js';
import { createApp } from './http/app.js';
import { createHttpServer } from './http/http-server.js';
import { removeStaleUploadTemp } from './http/request-guards.js';
import { keepReaderWarm } from './import/reader/reader-thread.js';
import { bootstrapDefaultCompany } from './infrastructure/bootstrap.js';
import type { Config } from './infrastructure/config.js';
import { lockDataDirectory } from './infrastructure/data-dir-lock.js';
import type { Logger } from './infrastructure/logger.js';
import { createImportEvents } from './infrastructure/pubsub.js';
import { createTokenAuthenticator } from './infrastructure/token-cache.js';
import { startImportWorker } from './jobs/import-worker.js';
import { purgeOldImports, scheduleRetention } from './jobs/retention.js';

export interface RunningServer {
  url: string;
  /** The default company's token when this start created it (first start only). */
  bootstrapToken: string | null;
  close(): Promise<void>;
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
    await database.migrate();
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
    const importWorker = startImportWorker({
      db: database.db,
      config,
      logger,
      events,
      leaseMs: config.WORK_LEASE_SECONDS * 1000,
    });
    // The embedded database is this process's alone: every upload no session names is what a
    // killed process left, however recent (on Postgres, retention waits until none can be live).
    if (!config.DATABASE_URL) {
      await purgeOldImports(database.db, config.IMPORT_RETENTION_DAYS, new Date(), 0);
    }
    const stopRetention = scheduleRetention(database.db, config.IMPORT_RETENTION_DAYS, (error) =>
      logger.error('purging old imports failed', { error: String(error) }),
    );
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
    const server = createHttpServer(app.handle);
    const closeWebSocket = app.attachWebSocket(server);
    await new Promise<void>((resolveListen, rejectListen) => {
      server.once('error', rejectListen);
      server.listen(config.PORT, config.HOST, () => resolveListen());
    });
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
