import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Auth,
  authenticate,
  createCompany,
  createToken,
} from '../../server/infrastructure/auth.js';
import { createTokenCache } from '../../server/infrastructure/token-cache.js';
import { createTestDatabase } from '../support/database.js';

/**
 * The token cache's own rules, over real token lookups (PGlite or Postgres). What makes a
 * process drop its cache on a real server (the api_tokens trigger's NOTIFY, a LISTEN made
 * anew) is in test/http/token-changes.postgres.test.ts.
 */

let database: Awaited<ReturnType<typeof createTestDatabase>>;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database.close();
});

/** The real lookup, counting how often the cache asked it. */
function countedLookup() {
  const counted = {
    calls: 0,
    lookup: (token: string) => {
      counted.calls += 1;
      return authenticate(database.db, token);
    },
  };
  return counted;
}

describe('the token cache', () => {
  it('answers for a valid token from memory until its time is up, then asks again', async () => {
    const company = await createCompany(database.db, 'Cached');
    const counted = countedLookup();
    let now = 1_000;
    const cache = createTokenCache(counted.lookup, { ttlMs: 10_000, now: () => now });

    const first = await cache.authenticate(company.token);
    expect(first).toEqual({
      companyId: company.companyId,
      role: 'ADMIN',
      tokenId: company.tokenId,
    });
    // The same object answers later requests: frozen, so no request can change it for another.
    expect(Object.isFrozen(first)).toBe(true);
    now += 9_999;
    expect(await cache.authenticate(company.token)).toEqual(first);
    expect(counted.calls).toBe(1);
    now += 1;
    expect(await cache.authenticate(company.token)).toEqual(first);
    expect(counted.calls).toBe(2);
  });

  it('never remembers an unknown token: one created after a refusal works at once', async () => {
    const company = await createCompany(database.db, 'Later token');
    const counted = countedLookup();
    const cache = createTokenCache(counted.lookup, { ttlMs: 60_000 });
    const token = 'mst_created-after-it-was-refused';

    expect(await cache.authenticate(token)).toBeNull();
    expect(await cache.authenticate(token)).toBeNull();
    expect(counted.calls).toBe(2);
    expect(cache.size).toBe(0);
    await createToken(database.db, { companyId: company.companyId, role: 'VIEWER', token });
    expect((await cache.authenticate(token))?.role).toBe('VIEWER');
  });

  it('forgets everything on invalidateAll, and does not keep a lookup that ran meanwhile', async () => {
    const company = await createCompany(database.db, 'Invalidated');
    const counted = countedLookup();
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let holdNext = false;
    const cache = createTokenCache(
      async (token) => {
        const auth = await counted.lookup(token);
        if (holdNext) await held;
        return auth;
      },
      { ttlMs: 60_000 },
    );

    await cache.authenticate(company.token);
    expect(cache.size).toBe(1);
    cache.invalidateAll();
    expect(cache.size).toBe(0);

    // A lookup reads the token, a change is notified before it returns: what it read may
    // predate the change, so it answers this request but is not remembered.
    holdNext = true;
    const running = cache.authenticate(company.token);
    await expect.poll(() => counted.calls).toBe(2);
    cache.invalidateAll();
    release();
    expect((await running)?.companyId).toBe(company.companyId);
    expect(cache.size).toBe(0);
    holdNext = false;
    await cache.authenticate(company.token);
    expect(cache.size).toBe(1);
    expect(counted.calls).toBe(3);
  });

  it('holds at most maxEntries tokens, dropping the oldest', async () => {
    const company = await createCompany(database.db, 'Many tokens');
    const tokens = await Promise.all(
      [1, 2, 3].map(() =>
        createToken(database.db, { companyId: company.companyId, role: 'VIEWER' }),
      ),
    );
    const counted = countedLookup();
    const cache = createTokenCache(counted.lookup, { ttlMs: 60_000, maxEntries: 2 });
    const answers: (Auth | null)[] = [];
    for (const { token } of tokens) answers.push(await cache.authenticate(token));
    expect(answers.map((auth) => auth?.tokenId)).toEqual(tokens.map((token) => token.id));
    expect(cache.size).toBe(2);

    await cache.authenticate(tokens[2]?.token as string);
    await cache.authenticate(tokens[1]?.token as string);
    expect(counted.calls).toBe(3);
    await cache.authenticate(tokens[0]?.token as string);
    expect(counted.calls).toBe(4);
  });
});
