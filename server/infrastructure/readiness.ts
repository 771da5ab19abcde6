import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import { type Database, queryRows } from '../../drizzle/client.js';

const migrationsFolder = fileURLToPath(new URL('../../drizzle/migrations', import.meta.url));

export interface Readiness {
  ready: boolean;
  checks: {
    database: 'ok' | string;
    /** `ok`, or the migrations this build has that the database lacks. */
    migrations: 'ok' | string;
    worker: 'ok' | 'stopped';
  };
}

/**
 * Whether this process should get traffic: the database answers, has every migration this
 * build ships (another process, or a restored backup, may have left it behind), and the
 * import worker is taking work. /health says only that the process is up.
 */
export async function checkReadiness(
  db: Database,
  worker: { isRunning(): boolean },
): Promise<Readiness> {
  let database = 'ok';
  let migrations = 'ok';
  try {
    const applied = await queryRows<{ name: string | null }>(
      db,
      sql`select name from drizzle.__drizzle_migrations`,
    );
    const names = new Set(applied.map((row) => row.name));
    const shipped = (await readdir(migrationsFolder, { withFileTypes: true }))
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name);
    const missing = shipped.filter((name) => !names.has(name));
    if (missing.length > 0) migrations = `not applied: ${missing.join(', ')}`;
  } catch (error) {
    database = `unreachable: ${error instanceof Error ? error.message : String(error)}`;
    migrations = 'unknown';
  }
  const checks = {
    database,
    migrations,
    worker: worker.isRunning() ? ('ok' as const) : ('stopped' as const),
  };
  return {
    ready: checks.database === 'ok' && checks.migrations === 'ok' && checks.worker === 'ok',
    checks,
  };
}
