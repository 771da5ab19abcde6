import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import postgres from 'postgres';
import {
  createDatabase,
  type Database,
  type DatabaseHandle,
  queryRows,
} from '../../drizzle/client.js';

/**
 * A fresh, migrated database for one test file: a new database on the server named by
 * DATABASE_URL (dropped afterwards), or PGlite in memory when it is unset.
 */
export async function createTestDatabase(): Promise<DatabaseHandle & { url?: string }> {
  const serverUrl = process.env.DATABASE_URL;
  if (!serverUrl) {
    const handle = await createDatabase({ memory: true });
    await handle.migrate();
    return handle;
  }
  const name = `muster_test_${randomBytes(6).toString('hex')}`;
  const admin = postgres(serverUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const handle = await createDatabase({ url: url.toString() });
  await handle.migrate();
  return {
    ...handle,
    url: url.toString(),
    close: async () => {
      await handle.close();
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}

/** A fresh empty database URL on the DATABASE_URL server, for a server process to migrate. */
export async function createEmptyPostgresDatabase(
  serverUrl: string,
): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `muster_test_${randomBytes(6).toString('hex')}`;
  const admin = postgres(serverUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}

export interface ServerDatabase {
  /** For a server process: DATA_DIR, plus DATABASE_URL when the tests run on Postgres. */
  env: Record<string, string>;
  /** Opens the database in the test's own process: on PGlite only while no server runs on it. */
  open(): Promise<DatabaseHandle>;
  /** Drops the Postgres database (if any) and deletes the DATA_DIR. */
  remove(): Promise<void>;
}

/**
 * An empty database for server processes under test: a temp DATA_DIR (PGlite inside it), or
 * also a fresh Postgres database when DATABASE_URL is set. The server migrates it at start.
 */
export async function createServerDatabase(prefix: string): Promise<ServerDatabase> {
  const dataDir = await mkdtemp(join(tmpdir(), prefix));
  const serverUrl = process.env.DATABASE_URL;
  const postgresDatabase = serverUrl ? await createEmptyPostgresDatabase(serverUrl) : null;
  return {
    env: postgresDatabase
      ? { DATA_DIR: dataDir, DATABASE_URL: postgresDatabase.url }
      : { DATA_DIR: dataDir },
    open: () =>
      createDatabase(
        postgresDatabase ? { url: postgresDatabase.url } : { dataDir: join(dataDir, 'pglite') },
      ),
    remove: async () => {
      await postgresDatabase?.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Runs `during` while a transaction opened with `begin` stays open, holding what `begin` locked
 * or wrote (on a real server: another connection sees it as in progress). The transaction
 * ends once `during` has, whatever `during` did.
 */
export async function whileInTransaction<T>(
  db: Database,
  begin: (tx: Database) => Promise<void>,
  during: () => Promise<T>,
): Promise<T> {
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  let begun!: () => void;
  const holding = new Promise<void>((resolve) => {
    begun = resolve;
  });
  const transaction = db.transaction(async (tx) => {
    await begin(tx);
    begun();
    await finished;
  });
  // A `begin` that fails ends the wait with its error.
  await Promise.race([holding, transaction]);
  try {
    return await during();
  } finally {
    finish();
    await transaction;
  }
}

/** How many connections to this database wait for a lock now (Postgres), e.g. on a row. */
export async function connectionsWaitingForLocks(db: Database): Promise<number> {
  const [waiting] = await queryRows<{ count: number }>(
    db,
    sql`select count(*)::int as count from pg_stat_activity
        where datname = current_database() and wait_event_type = 'Lock'`,
  );
  return waiting?.count ?? 0;
}
