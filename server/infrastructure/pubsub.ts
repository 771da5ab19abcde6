import { EventEmitter, on } from 'node:events';
import { Redis } from 'ioredis';
import type { Sql } from 'postgres';
import type { ImportProgress } from '../../drizzle/tables.js';
import type { Logger } from './logger.js';

/**
 * Events about import sessions. Between processes the payload is only the session id: a
 * subscriber reloads what it shows, so the messages stay tiny. This module is the one place
 * that knows how events travel: in process (embedded database), through Postgres
 * LISTEN/NOTIFY, or through Redis when REDIS_URL is set.
 */
export interface ImportEvents {
  /**
   * The session changed. With `progress`, the change is only that progress, which could not be
   * written: the embedded database's commit holds its one connection, so a follower could not
   * reload the session either. Such an update reaches this process's followers only (no other
   * process opens an embedded database).
   */
  publishSessionUpdated(sessionId: string, progress?: ImportProgress): void;
  subscribeSessionUpdated(sessionId: string): AsyncIterable<SessionUpdate>;
  /** Ends every open subscription (they complete normally) and disconnects. */
  close(): Promise<void>;
}

/** One update a follower hears. */
export interface SessionUpdate {
  /** The session's progress when it came with the update (see publishSessionUpdated); null: reload. */
  progress: ImportProgress | null;
}

const CHANNEL = 'muster_import_session_updated';

/**
 * The updates heard in this process, by session id, and the subscriptions reading them.
 * `followed` and `unfollowed` say when a session gets its first subscriber here and loses its
 * last, for a transport that subscribes per session.
 */
function localEvents(
  hooks: { followed?(sessionId: string): void; unfollowed?(sessionId: string): void } = {},
) {
  const emitter = new EventEmitter();
  // Any number of followers per session (one per open subscription): no leak warning.
  emitter.setMaxListeners(0);
  // Tracked so shutdown can complete them instead of cutting them off.
  const open = new Set<AsyncIterator<unknown>>();
  return {
    deliver(sessionId: string, progress: ImportProgress | null = null): void {
      emitter.emit(sessionId, { progress } satisfies SessionUpdate);
    },
    subscribe(sessionId: string): AsyncIterable<SessionUpdate> {
      return {
        [Symbol.asyncIterator]: () => {
          if (emitter.listenerCount(sessionId) === 0) hooks.followed?.(sessionId);
          // Buffers what is delivered between two reads; return() settles a pending read as done.
          const updates = on(emitter, sessionId);
          open.add(updates);
          return {
            next: async () => {
              const update = await updates.next();
              return update.done
                ? update
                : { done: false, value: (update.value as [SessionUpdate])[0] };
            },
            return: async () => {
              if (open.delete(updates)) {
                await updates.return?.();
                if (emitter.listenerCount(sessionId) === 0) hooks.unfollowed?.(sessionId);
              }
              return { done: true, value: undefined };
            },
          };
        },
      };
    },
    async endAll(): Promise<void> {
      await Promise.all([...open].map((updates) => updates.return?.()));
      open.clear();
    },
  };
}

export function createInProcessImportEvents(): ImportEvents {
  const local = localEvents();
  return {
    publishSessionUpdated: (sessionId, progress) => local.deliver(sessionId, progress),
    subscribeSessionUpdated: (sessionId) => local.subscribe(sessionId),
    close: () => local.endAll(),
  };
}

/** Postgres LISTEN/NOTIFY: every process on the database hears every session's updates. */
export async function createPostgresImportEvents(sql: Sql, logger: Logger): Promise<ImportEvents> {
  const local = localEvents();
  const listening = await sql.listen(CHANNEL, (sessionId) => local.deliver(sessionId));
  return {
    publishSessionUpdated: (sessionId, progress) => {
      if (progress) return local.deliver(sessionId, progress);
      sql
        .notify(CHANNEL, sessionId)
        .catch((error: unknown) =>
          logger.warn('publishing an import update failed', { error: String(error) }),
        );
    },
    subscribeSessionUpdated: (sessionId) => local.subscribe(sessionId),
    close: async () => {
      await local.endAll();
      await listening.unlisten();
    },
  };
}

/**
 * Redis pub/sub (REDIS_URL): a channel per session, subscribed to while this process has a
 * subscriber for it, so a process hears only the sessions it follows.
 */
export function createRedisImportEvents(url: string, logger: Logger): ImportEvents {
  const publishClient = new Redis(url, { maxRetriesPerRequest: 3 });
  const subscribeClient = new Redis(url, { maxRetriesPerRequest: 3 });
  const prefix = 'importSession:updated:';
  let closing = false;
  const failed = (what: string) => (error: unknown) => {
    // Commands still in flight when the connections close fail: that is no news.
    if (!closing) logger.warn(`${what} import updates failed`, { error: String(error) });
  };
  const local = localEvents({
    followed: (sessionId) =>
      void subscribeClient.subscribe(prefix + sessionId).catch(failed('subscribing to')),
    unfollowed: (sessionId) =>
      void subscribeClient.unsubscribe(prefix + sessionId).catch(failed('unsubscribing from')),
  });
  subscribeClient.on('message', (channel: string) => {
    if (channel.startsWith(prefix)) local.deliver(channel.slice(prefix.length));
  });
  return {
    publishSessionUpdated: (sessionId, progress) => {
      if (progress) return local.deliver(sessionId, progress);
      // The id as JSON, as Yoga's Redis event target wrote it: a process still running the
      // version before reads it.
      publishClient
        .publish(prefix + sessionId, JSON.stringify(sessionId))
        .catch(failed('publishing'));
    },
    subscribeSessionUpdated: (sessionId) => local.subscribe(sessionId),
    close: async () => {
      await local.endAll();
      closing = true;
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
  if (options.redisUrl) return createRedisImportEvents(options.redisUrl, options.logger);
  if (options.postgres) return createPostgresImportEvents(options.postgres, options.logger);
  return createInProcessImportEvents();
}
