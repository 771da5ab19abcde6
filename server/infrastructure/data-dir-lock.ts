import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * PGlite has no lock between processes: two of them on one data directory corrupt it. The
 * server holds `DATA_DIR/muster.pid` while it runs; the admin CLI and a second server check it.
 */
export class DataDirectoryInUseError extends Error {
  constructor(
    readonly dataDir: string,
    readonly pid: number,
  ) {
    super(
      `The data directory ${dataDir} is in use by a running Muster server or admin command (pid ${pid}). ` +
        'Stop it first, or run both against Postgres with DATABASE_URL.',
    );
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function pidFile(dataDir: string): string {
  return join(dataDir, 'muster.pid');
}

/** Throws DataDirectoryInUseError when another live process holds the directory. */
export function assertDataDirectoryFree(dataDir: string): void {
  let pid: number;
  try {
    pid = Number.parseInt(readFileSync(pidFile(dataDir), 'utf8'), 10);
  } catch {
    return;
  }
  if (Number.isInteger(pid) && pid !== process.pid && isAlive(pid)) {
    throw new DataDirectoryInUseError(dataDir, pid);
  }
}

/** Claims the directory for this process; returns the release function. */
export function lockDataDirectory(dataDir: string): () => void {
  mkdirSync(dataDir, { recursive: true });
  assertDataDirectoryFree(dataDir);
  writeFileSync(pidFile(dataDir), String(process.pid));
  return () => rmSync(pidFile(dataDir), { force: true });
}
