import { setImmediate as nextTurn } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { PGlite, type QueryOptions, type Transaction } from '@electric-sql/pglite';
import type { SQL } from 'drizzle-orm';
import type { PgAsyncDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator';
import postgres, { type Sql } from 'postgres';
import { relations } from './relations.js';

/** One database type for both drivers: services and resolvers never know which one runs. */
export type Database = PgAsyncDatabase<PgQueryResultHKT, typeof relations>;

export interface DatabaseHandle {
  db: Database;
  kind: 'pglite' | 'postgres';
  /** The postgres.js client on a real server (LISTEN/NOTIFY needs it); null on PGlite. */
  postgres: Sql | null;
  /** Applies the committed migrations under drizzle/migrations. */
  migrate(): Promise<void>;
  /**
   * Opens every connection of the pool now (on Postgres; PGlite has one). postgres.js opens
   * them one at a time as queries need them, and opening one took 60-110 ms with both cores
   * busy: when an import first ran statements side by side (validation's first ranges), a
   * follower's reload of the session waited that long for a new connection, and heard
   * nothing for up to 280 ms. The server opens them at start.
   */
  openPool(): Promise<void>;
  close(): Promise<void>;
}

const migrationsFolder = fileURLToPath(new URL('./migrations', import.meta.url));

/** Connections a process keeps to a real Postgres server. */
export const POOL_SIZE = 10;

export type DatabaseTarget =
  /** `statementTimeoutMs`: Postgres cancels any statement of this pool that runs longer. */
  { url: string; statementTimeoutMs?: number } | { dataDir: string } | { memory: true };

/** Opens PGlite (a data directory, or in memory) or a real Postgres through postgres.js. */
export async function createDatabase(target: DatabaseTarget): Promise<DatabaseHandle> {
  if ('url' in target) {
    const client = postgres(target.url, {
      max: POOL_SIZE,
      onnotice: () => {},
      // A statement that is not prepared costs postgres.js two round trips (Describe for the
      // parameters' types, then Bind and Execute); a prepared one costs one, from its second
      // use on a connection. Drizzle only honours this option with patches/drizzle-orm+*.patch.
      prepare: true,
      connection: {
        // JIT compiles a statement whose estimated cost is high: an import's range statements
        // (10,000 rows, a lookup each) then spent ~1 s each in LLVM, for a 0.2 s query.
        jit: 'off',
        // Prepared statements are still planned for their parameters, as unnamed ones were:
        // a generic plan (Postgres's choice after five runs) would plan a range of a
        // million-row session like any other.
        plan_cache_mode: 'force_custom_plan',
        ...(target.statementTimeoutMs ? { statement_timeout: target.statementTimeoutMs } : {}),
      },
    });
    const db = drizzlePostgres({ client, relations });
    return {
      db: db as unknown as Database,
      kind: 'postgres',
      postgres: client,
      migrate: async () => {
        // Processes starting at once on a new database would each apply the migrations, and
        // all but one fail: they take turns under a session advisory lock, held on a
        // connection of its own while the migrator uses the others.
        const lock = await client.reserve();
        try {
          await lock`select pg_advisory_lock(hashtext('muster.migrate'))`;
          await migratePostgres(db, { migrationsFolder });
        } finally {
          await lock`select pg_advisory_unlock(hashtext('muster.migrate'))`.catch(() => {});
          lock.release();
        }
      },
      // Queries issued together each take a connection of their own while one is closed.
      openPool: async () => {
        await Promise.all(Array.from({ length: POOL_SIZE }, () => client`select 1`));
      },
      close: () => client.end({ timeout: 5 }),
    };
  }
  const client =
    'dataDir' in target ? new TurnTakingPGlite(target.dataDir) : new TurnTakingPGlite();
  await client.waitReady;
  const db = drizzlePglite({ client, relations });
  return {
    db: db as unknown as Database,
    kind: 'pglite',
    postgres: null,
    migrate: async () => {
      await migratePglite(db, { migrationsFolder });
    },
    openPool: async () => {},
    close: () => client.close(),
  };
}

/**
 * PGlite, giving the event loop a turn before each statement. The embedded database runs a
 * statement on this thread and settles it with promises alone: a background step's
 * statements issued one after the other (validation's ranges, the commit's) never let timers
 * or sockets run, so every request and subscription waited for the whole step (a 100k
 * validation's events all arrived at its end, 2.4 s late). Before each statement the
 * requests that came meanwhile are read and queue their own statements, taken in turn.
 */
class TurnTakingPGlite extends PGlite {
  override async query<T>(query: string, params?: unknown[], options?: QueryOptions) {
    await nextTurn();
    return super.query<T>(query, params, options);
  }

  override async exec(query: string, options?: QueryOptions) {
    await nextTurn();
    return super.exec(query, options);
  }

  override async transaction<T>(callback: (tx: Transaction) => Promise<T>): Promise<T> {
    await nextTurn();
    return super.transaction((tx) => callback(turnTaking(tx)));
  }
}

/** A transaction whose statements each wait for the event loop's next turn, as above. */
function turnTaking(tx: Transaction): Transaction {
  return Object.assign(Object.create(tx) as Transaction, {
    query: async <T>(query: string, params?: unknown[], options?: QueryOptions) => {
      await nextTurn();
      return tx.query<T>(query, params, options);
    },
    exec: async (query: string, options?: QueryOptions) => {
      await nextTurn();
      return tx.exec(query, options);
    },
  });
}

/** Rows of a raw SQL query: PGlite answers `{ rows }`, postgres.js an array of rows. */
export async function queryRows<Row>(db: Database, query: SQL): Promise<Row[]> {
  const result: unknown = await db.execute(query);
  if (Array.isArray(result)) return result as Row[];
  return (result as { rows: Row[] }).rows;
}

/**
 * True on the embedded database: one connection, so a write made outside a running
 * transaction waits for it to end (awaiting one inside the transaction never returns).
 */
export function isEmbedded(db: Database): boolean {
  return (db as unknown as { $client: unknown }).$client instanceof PGlite;
}
