import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, type DatabaseHandle } from '../../drizzle/client.js';
import { revokeToken } from '../../server/infrastructure/auth.js';
import { createTestApp, type TestApp } from '../support/app.js';

/**
 * On a real Postgres, every server process caches valid tokens (server/infrastructure/token-cache.ts) and
 * drops its cache when the trigger on api_tokens notifies a change, made by any connection:
 * here a second client stands for the admin CLI or another process. The cache time is an
 * hour in most of these tests, so only the notification can explain a refusal seen within
 * seconds. vitest.config.ts selects this file only when DATABASE_URL is set (PGlite does
 * not cache: it is one process, and a lookup there is no round trip).
 */

const viewerQuery = '{ viewer { role } }';
const soon = { timeout: 5_000, interval: 20 };

let t: TestApp;
let other: DatabaseHandle;
let otherSql: postgres.Sql;

beforeAll(async () => {
  t = await createTestApp({ TOKEN_CACHE_SECONDS: '3600' });
  const url = t.database.url as string;
  other = await createDatabase({ url });
  otherSql = postgres(url, { max: 1, onnotice: () => {} });
});
afterAll(async () => {
  await otherSql?.end();
  await other?.close();
  await t?.close();
});

/** The HTTP status of `{ viewer { role } }` with this token (`app`: the main one by default). */
async function status(token: string, app = t): Promise<number> {
  return (await app.request(token, viewerQuery)).status;
}

/**
 * Revokes a token in the app's database without the trigger firing (replica role): no
 * process hears of it.
 */
async function revokeUnnoticed(tokenId: string, app = t): Promise<void> {
  await (app.database.postgres as postgres.Sql).begin(async (tx) => {
    await tx`set local session_replication_role = replica`;
    await tx`update api_tokens set revoked_at = now() where id = ${tokenId}`;
  });
}

describe('token changes reach the token cache', () => {
  it('serves a token from the cache: a change nobody notified is not seen', async () => {
    const company = await t.createTestCompany();
    expect(await status(company.token)).toBe(200);
    await revokeUnnoticed(company.tokenId);
    // The database says revoked; the cache, told nothing, still answers for an hour.
    expect(await status(company.token)).toBe(200);
  });

  it('refuses a token revoked by another connection within moments', async () => {
    const company = await t.createTestCompany();
    expect(await status(company.token)).toBe(200);
    expect(await revokeToken(other.db, company.tokenId)).toBe(true);
    await expect.poll(() => status(company.token), soon).toBe(401);
  });

  it('sees a role changed and a company deleted elsewhere', async () => {
    const company = await t.createTestCompany();
    const role = async () => (await t.request(company.token, viewerQuery)).data?.viewer?.role;
    expect(await role()).toBe('ADMIN');
    await otherSql`update api_tokens set role = 'VIEWER' where id = ${company.tokenId}`;
    await expect.poll(role, soon).toBe('VIEWER');

    expect(await status(company.viewerToken)).toBe(200);
    await otherSql`delete from companies where id = ${company.companyId}`;
    await expect.poll(() => status(company.viewerToken), soon).toBe(401);
  });

  it('drops the cache when its LISTEN connection is made anew (changes may have been missed)', async () => {
    const company = await t.createTestCompany();
    expect(await status(company.token)).toBe(200);
    await revokeUnnoticed(company.tokenId);
    expect(await status(company.token)).toBe(200);
    const terminated = await otherSql<{ pid: number }[]>`
      select pid from pg_stat_activity
      where datname = current_database() and query ilike 'listen %' and pg_terminate_backend(pid)`;
    expect(terminated).toHaveLength(1);
    await expect.poll(() => status(company.token), soon).toBe(401);
  });
});

describe('the cache time', () => {
  let short: TestApp;
  beforeAll(async () => {
    short = await createTestApp({ TOKEN_CACHE_SECONDS: '2' });
  });
  afterAll(async () => {
    await short?.close();
  });

  it('bounds how long a change nobody notified is missed', async () => {
    const company = await short.createTestCompany();
    expect(await status(company.token, short)).toBe(200);
    await revokeUnnoticed(company.tokenId, short);
    expect(await status(company.token, short)).toBe(200);
    await expect
      .poll(() => status(company.token, short), { timeout: 6_000, interval: 100 })
      .toBe(401);
  });

  it('is no cache at 0: every request asks the database', async () => {
    const uncached = await createTestApp({ TOKEN_CACHE_SECONDS: '0' });
    try {
      const company = await uncached.createTestCompany();
      expect(await status(company.token, uncached)).toBe(200);
      await revokeUnnoticed(company.tokenId, uncached);
      expect(await status(company.token, uncached)).toBe(401);
    } finally {
      await uncached.close();
    }
  });
});
