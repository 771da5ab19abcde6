import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createDatabase,
  type Database,
  type DatabaseHandle,
  queryRows,
} from '../../drizzle/client.js';
import { apiTokens } from '../../drizzle/tables.js';
import { loadConfig } from '../../server/infrastructure/config.js';
import { createLogger } from '../../server/infrastructure/logger.js';
import { startServer } from '../../server/start.js';
import { createEmptyPostgresDatabase } from '../support/database.js';

/**
 * How queries travel to a real Postgres (postgres.js under drizzle). A query that is not a
 * prepared statement costs postgres.js two round trips (Describe, to learn its parameters'
 * types, then Bind and Execute); a prepared one costs one from its second use on a
 * connection. A GraphQL request makes two or three queries (token, session, page), one after
 * the other: each extra round trip adds to its latency (docs/performance.md, item 5).
 *
 * It runs against the Postgres of DATABASE_URL: vitest.config.ts selects it only when that is
 * set (as in CI); PGlite has no connections to prepare statements on. Run alone, it falls back
 * to postgres://postgres@127.0.0.1:5432/test.
 */

const serverUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

let database: { url: string; drop(): Promise<void> };
let handle: DatabaseHandle;

beforeAll(async () => {
  database = await createEmptyPostgresDatabase(serverUrl);
  handle = await createDatabase({ url: database.url });
  await handle.migrate();
});

afterAll(async () => {
  await handle?.close();
  await database?.drop();
});

describe('queries on a real Postgres', () => {
  it('are prepared statements: a query lists itself among its connection’s prepared statements', async () => {
    // Whichever pooled connection runs it, the query sees its own connection's statements.
    const ownText = '%from pg_prepared_statements where statement like%';
    for (let run = 0; run < 2; run++) {
      const rows = await queryRows<{ statement: string }>(
        handle.db,
        sql`select statement from pg_prepared_statements where statement like ${ownText}`,
      );
      expect(rows.map((row) => row.statement)).toEqual([
        'select statement from pg_prepared_statements where statement like $1',
      ]);
    }
  });

  it('are prepared inside transactions too, and planned for their parameters on every run', async () => {
    const plans = await handle.db.transaction(async (tx) => {
      const lookup = (hash: string) =>
        tx.select({ id: apiTokens.id }).from(apiTokens).where(eq(apiTokens.tokenHash, hash));
      // Postgres tries a generic plan after five runs of a statement unless told not to.
      for (let run = 0; run < 8; run++) await lookup(`hash ${run}`);
      const text = lookup('').toSQL().sql;
      return queryRows<{ generic: number; custom: number }>(
        tx as unknown as Database,
        sql`select generic_plans::int as generic, custom_plans::int as custom
            from pg_prepared_statements where statement = ${text}`,
      );
    });
    expect(plans).toEqual([{ generic: 0, custom: 8 }]);
  });

  /** Connections to a database, counted from `handle` (another connection when it is its own). */
  async function connectionsTo(url: string) {
    const [row] = await queryRows<{ count: number }>(
      handle.db,
      sql`select count(*)::int as count from pg_stat_activity
          where datname = ${new URL(url).pathname.slice(1)} and pid <> pg_backend_pid()`,
    );
    return row?.count ?? 0;
  }

  it('opens every connection of the pool with openPool, where queries alone open them one by one', async () => {
    const connections = () => connectionsTo(database.url);
    const lazy = await createDatabase({ url: database.url });
    const opened = await createDatabase({ url: database.url });
    try {
      const before = await connections();
      await queryRows(lazy.db, sql`select 1`);
      expect(await connections()).toBe(before + 1);
      await opened.openPool();
      expect(await connections()).toBe(before + 1 + 10);
    } finally {
      await lazy.close();
      await opened.close();
    }
  });

  it('has the server open its pool at start, before any request', async () => {
    const serverDatabase = await createEmptyPostgresDatabase(serverUrl);
    const dataDir = await mkdtemp(join(tmpdir(), 'muster-pool-'));
    const config = loadConfig({
      NODE_ENV: 'test',
      DATABASE_URL: serverDatabase.url,
      DATA_DIR: dataDir,
      PORT: '0',
      HOST: '127.0.0.1',
    });
    const server = await startServer(config, createLogger('silent'));
    try {
      // The pool's 10, and the connection postgres.js keeps for LISTEN.
      expect(await connectionsTo(serverDatabase.url)).toBeGreaterThanOrEqual(11);
    } finally {
      await server.close();
      await serverDatabase.drop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
