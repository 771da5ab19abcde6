import type { Database } from '../../drizzle/client.js';
import type { Auth } from '../infrastructure/auth.js';
import type { Config } from '../infrastructure/config.js';
import type { Logger } from '../infrastructure/logger.js';
import type { ImportEvents } from '../infrastructure/pubsub.js';
import type { ImportWorker } from '../jobs/import-worker.js';
import type { MailBudget, WorkRateLimiter } from './rate-limit.js';

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
  /** The per-company budget of report emails. */
  mailBudget: MailBudget;
  /** Base of absolute links: PUBLIC_URL, else the origin of the request. */
  publicUrl: string;
  /** The secret that signs download links (shared by every process on the database). */
  signingSecret(): Promise<string>;
}
