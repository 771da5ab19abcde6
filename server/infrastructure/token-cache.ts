import type { Sql } from 'postgres';
import type { Database } from '../../drizzle/client.js';
import { type Auth, authenticate, createTokenUseRecorder, hashToken } from './auth.js';

/** What the trigger on api_tokens notifies on any change to a token (its id as payload). */
export const TOKEN_CHANGES_CHANNEL = 'muster_api_token_changed';

/** Who a request's bearer token belongs to: the one question every request asks first. */
export interface TokenAuthenticator {
  /** The token's company and role; null when it is unknown or revoked. */
  authenticate(token: string): Promise<Auth | null>;
  /** Stops listening for token changes (the cache, if any, is then no longer used). */
  close(): Promise<void>;
}

/**
 * Valid tokens remembered for `ttlMs`, keyed by their SHA-256. Unknown and revoked tokens are
 * never remembered: a token created a moment ago works at once, and made-up tokens take no
 * memory. `invalidateAll` forgets everything, and a lookup that was running meanwhile is not
 * kept either, since it may have read the token before the change.
 */
export function createTokenCache(
  lookup: (token: string) => Promise<Auth | null>,
  options: { ttlMs: number; maxEntries?: number; now?: () => number },
) {
  const maxEntries = options.maxEntries ?? 10_000;
  const now = options.now ?? Date.now;
  const entries = new Map<string, { auth: Auth; expiresAt: number }>();
  let generation = 0;
  return {
    async authenticate(token: string): Promise<Auth | null> {
      const key = hashToken(token);
      const cached = entries.get(key);
      if (cached && cached.expiresAt > now()) return cached.auth;
      if (cached) entries.delete(key);
      const lookedUpIn = generation;
      const auth = await lookup(token);
      if (auth && lookedUpIn === generation) {
        // Full: the oldest entry goes (a Map keeps insertion order).
        if (entries.size >= maxEntries) entries.delete(entries.keys().next().value as string);
        // One object serves many requests: none may change it for the others.
        entries.set(key, { auth: Object.freeze(auth), expiresAt: now() + options.ttlMs });
      }
      return auth;
    },
    invalidateAll(): void {
      generation += 1;
      entries.clear();
    },
    get size(): number {
      return entries.size;
    },
  };
}

/**
 * On a real Postgres server, tokens are cached for `cacheSeconds` and every process drops its
 * cache when the api_tokens trigger notifies a change (a revocation made anywhere reaches every
 * process in milliseconds), and again whenever its LISTEN connection is made anew (it may have
 * missed a change while it was down); `cacheSeconds` only bounds a change that was missed still.
 * On PGlite (one process, where a lookup is no round trip) or with `cacheSeconds` 0, every
 * request looks its token up.
 */
export async function createTokenAuthenticator(options: {
  db: Database;
  postgres: Sql | null;
  cacheSeconds: number;
}): Promise<TokenAuthenticator> {
  const recordUse = createTokenUseRecorder(options.db);
  const lookup = async (token: string) => {
    const auth = await authenticate(options.db, token);
    if (auth) recordUse(auth.tokenId);
    return auth;
  };
  if (!options.postgres || options.cacheSeconds === 0) {
    return { authenticate: lookup, close: async () => {} };
  }
  const cache = createTokenCache(lookup, { ttlMs: options.cacheSeconds * 1000 });
  const listening = await options.postgres.listen(
    TOKEN_CHANGES_CHANNEL,
    () => cache.invalidateAll(),
    () => cache.invalidateAll(),
  );
  let closed = false;
  return {
    authenticate: (token) => (closed ? lookup(token) : cache.authenticate(token)),
    close: async () => {
      closed = true;
      cache.invalidateAll();
      await listening.unlisten();
    },
  };
}
