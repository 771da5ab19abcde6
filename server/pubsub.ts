import { createPubSub } from 'graphql-yoga';

/**
 * Events about import sessions. The payload is only the session id: a subscriber reloads
 * what it shows, so a later transport (Postgres LISTEN/NOTIFY, Redis) carries tiny messages.
 * This module is the one place that knows how events travel.
 */
export interface ImportEvents {
  publishSessionUpdated(sessionId: string): void;
  subscribeSessionUpdated(sessionId: string): AsyncIterable<string>;
}

/** In-process events: enough for one server process (PGlite, or a single Postgres client). */
export function createInProcessImportEvents(): ImportEvents {
  const pubsub = createPubSub<{ 'importSession:updated': [sessionId: string, payload: string] }>();
  return {
    publishSessionUpdated: (sessionId) =>
      pubsub.publish('importSession:updated', sessionId, sessionId),
    subscribeSessionUpdated: (sessionId) => pubsub.subscribe('importSession:updated', sessionId),
  };
}
