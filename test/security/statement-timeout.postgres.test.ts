import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createDatabase, type DatabaseHandle } from '../../drizzle/client.js';
import { createTestDatabase } from '../support/database.js';

/**
 * Issue #24: the server's requests run on a pool of their own whose statements Postgres
 * cancels after STATEMENT_TIMEOUT_MS (server/start.ts), so no request can hold a connection
 * (or a CPU) for long; background work keeps a pool without that limit.
 */

let base: DatabaseHandle & { url?: string };
let api: DatabaseHandle;

beforeAll(async () => {
  base = await createTestDatabase();
  api = await createDatabase({ url: base.url as string, statementTimeoutMs: 300 });
});

afterAll(async () => {
  await api?.close();
  await base?.close();
});

it('cancels a statement of the API pool that runs past its timeout, and not one of the other pool', async () => {
  await expect(api.db.execute(sql`select pg_sleep(2)`)).rejects.toMatchObject({
    cause: expect.objectContaining({ code: '57014' }),
  });
  // The connection is usable again at once.
  await expect(api.db.execute(sql`select 1 as one`)).resolves.toBeTruthy();
  await expect(base.db.execute(sql`select pg_sleep(0.5)`)).resolves.toBeTruthy();
});
