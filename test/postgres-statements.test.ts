import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createDatabase,
  type Database,
  type DatabaseHandle,
  queryRows,
} from '../drizzle/client.js';
import { apiTokens } from '../drizzle/tables.js';
import { createEmptyPostgresDatabase } from './database.js';

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

  it('opens every connection of the pool with openPool, where queries alone open them one by one', async () => {
    const connections = async () => {
      const [row] = await queryRows<{ count: number }>(
        handle.db,
        sql`select count(*)::int as count from pg_stat_activity where datname = current_database()`,
      );
      return row?.count ?? 0;
    };
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
});
