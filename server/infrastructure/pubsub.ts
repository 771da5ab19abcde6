import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import { createPubSub } from 'graphql-yoga';
import { Redis } from 'ioredis';
import type { Sql } from 'postgres';
import type { Logger } from './logger.js';

/**
 * Events about import sessions. The payload is only the session id: a subscriber reloads what
 * it shows, so the messages between processes stay tiny. This module is the one place that
 * knows how events travel: in process (embedded database), through Postgres LISTEN/NOTIFY, or
 * through Redis when REDIS_URL is set.
 */
export interface ImportEvents {
  publishSessionUpdated(sessionId: string): void;
  subscribeSessionUpdated(sessionId: string): AsyncIterable<string>;
  /** Ends every open subscription (they complete normally) and disconnects. */
  close(): Promise<void>;
}

type Topics = { 'importSession:updated': [sessionId: string, payload: string] };

const CHANNEL = 'muster_import_session_updated';

/** Tracks open subscriptions so shutdown can complete them instead of cutting them off. */
function trackSubscriptions(pubsub: ReturnType<typeof createPubSub<Topics>>) {
  const open = new Set<AsyncIterator<string>>();
  return {
    subscribe(sessionId: string): AsyncIterable<string> {
      const iterable = pubsub.subscribe('importSession:updated', sessionId);
      return {
        [Symbol.asyncIterator]: () => {
          const iterator = iterable[Symbol.asyncIterator]();
          open.add(iterator);
          return {
            next: () => iterator.next(),
            return: async (value?: unknown) => {
              open.delete(iterator);
              return iterator.return ? iterator.return(value) : { done: true, value: undefined };
            },
          };
        },
      };
    },
    async endAll() {
      await Promise.all([...open].map((iterator) => iterator.return?.()));
      open.clear();
    },
  };
}

export function createInProcessImportEvents(): ImportEvents {
  const pubsub = createPubSub<Topics>();
  const subscriptions = trackSubscriptions(pubsub);
  return {
    publishSessionUpdated: (sessionId) =>
      pubsub.publish('importSession:updated', sessionId, sessionId),
    subscribeSessionUpdated: (sessionId) => subscriptions.subscribe(sessionId),
    close: () => subscriptions.endAll(),
  };
}

/** Postgres LISTEN/NOTIFY: every process on the database hears every session's updates. */
export async function createPostgresImportEvents(sql: Sql, logger: Logger): Promise<ImportEvents> {
  const pubsub = createPubSub<Topics>();
  const subscriptions = trackSubscriptions(pubsub);
  const listening = await sql.listen(CHANNEL, (sessionId) =>
    pubsub.publish('importSession:updated', sessionId, sessionId),
  );
  return {
    publishSessionUpdated: (sessionId) => {
      sql
        .notify(CHANNEL, sessionId)
        .catch((error: unknown) =>
          logger.warn('publishing an import update failed', { error: String(error) }),
        );
    },
    subscribeSessionUpdated: (sessionId) => subscriptions.subscribe(sessionId),
    close: async () => {
      await subscriptions.endAll();
      await listening.unlisten();
    },
  };
}

/** Redis pub/sub through Yoga's Redis event target (REDIS_URL). */
export function createRedisImportEvents(url: string): ImportEvents {
  const publishClient = new Redis(url, { maxRetriesPerRequest: 3 });
  const subscribeClient = new Redis(url, { maxRetriesPerRequest: 3 });
  const pubsub = createPubSub<Topics>({
    eventTarget: createRedisEventTarget({ publishClient, subscribeClient }),
  });
  const subscriptions = trackSubscriptions(pubsub);
  return {
    publishSessionUpdated: (sessionId) =>
      pubsub.publish('importSession:updated', sessionId, sessionId),
    subscribeSessionUpdated: (sessionId) => subscriptions.subscribe(sessionId),
    close: async () => {
      await subscriptions.endAll();
      publishClient.disconnect();
      subscribeClient.disconnect();
    },
  };
}

/** The one choice of transport: Redis when configured, else Postgres, else in process. */
export async function createImportEvents(options: {
  redisUrl?: string;
  postgres: Sql | null;
  logger: Logger;
}): Promise<ImportEvents> {
  if (options.redisUrl) return createRedisImportEvents(options.redisUrl);
  if (options.postgres) return createPostgresImportEvents(options.postgres, options.logger);
  return createInProcessImportEvents();
}
