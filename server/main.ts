import { type Config, loadConfig } from './infrastructure/config.js';
import { createLogger } from './infrastructure/logger.js';
import { startServer } from './start.js';

/** A failed start is one line saying what to change, and a non-zero exit: no stack trace. */
function stop(logger: ReturnType<typeof createLogger>, error: unknown): never {
  logger.error(`Muster could not start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}

let config: Config;
try {
  config = loadConfig();
} catch (error) {
  stop(createLogger('error'), error);
}
const logger = createLogger(config.LOG_LEVEL);

try {
  const server = await startServer(config, logger);
  const database = config.DATABASE_URL
    ? 'Postgres (DATABASE_URL)'
    : `embedded PGlite in ${config.DATA_DIR}`;
  logger.info(`Muster is listening on ${server.url} with ${database}`);
  logger.info(`GraphiQL: ${server.url}/graphql  (health check: ${server.url}/health)`);
  if (server.bootstrapToken) {
    const shown = config.BOOTSTRAP_ADMIN_TOKEN
      ? '(from BOOTSTRAP_ADMIN_TOKEN)'
      : server.bootstrapToken;
    // The token goes to stdout once: it is not stored in clear anywhere.
    console.log(
      [
        '',
        'Created the default company with an ADMIN API token. It is shown only this once:',
        '',
        `  ${shown}`,
        '',
        `In GraphiQL (${server.url}/graphql), paste it when the page asks for a token.`,
        'With curl:',
        `  curl ${server.url}/graphql -H 'Authorization: Bearer ${shown}' -H 'Content-Type: application/json' -d '{"query":"{ viewer { role company { name } } }"}'`,
        '',
      ].join('\n'),
    );
  }
  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    logger.info(`${signal}: shutting down`);
    const timer = setTimeout(() => process.exit(1), 10_000);
    timer.unref();
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error('shutdown failed', { error: String(error) });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
} catch (error) {
  stop(logger, error);
}
