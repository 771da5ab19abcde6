import type { Database } from '../drizzle/client.js';
import type { Auth } from './auth.js';
import type { Config } from './config.js';
import type { ImportWorker } from './jobs/import-worker.js';
import type { Logger } from './logger.js';
import type { ImportEvents } from './pubsub.js';
import type { WorkRateLimiter } from './rate-limit.js';

/** What every resolver gets: the caller, the database, configuration and background work. */
export interface Context {
  db: Database;
  auth: Auth;
  config: Config;
  logger: Logger;
  events: ImportEvents;
  importWorker: Pick<ImportWorker, 'wake'>;
  /** The per-token budget of mutations that start work or send mail. */
  workRateLimiter: WorkRateLimiter;
  /** Base of absolute links: PUBLIC_URL, else the origin of the request. */
  publicUrl: string;
  /** The secret that signs download links (shared by every process on the database). */
  signingSecret(): Promise<string>;
}
