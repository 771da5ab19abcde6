import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServerDatabase, type ServerDatabase } from '../support/database.js';
import { childEnv } from '../support/processes.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** `node --import tsx server/main.ts` (as `npm start`) to its exit. */
function startToExit(
  env: Record<string, string>,
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', 'server/main.ts'],
      { cwd: repoRoot, env: childEnv(env), timeout: 140_000 },
      (_error, _stdout, stderr) => resolve({ code: child.exitCode, stderr }),
    );
  });
}

/** The lines written, each parsed: a failed start writes one JSON line and nothing else. */
function onlyLine(stderr: string): { level: string; msg: string } {
  const lines = stderr.split('\n').filter((line) => line.trim() !== '');
  expect(lines, stderr).toHaveLength(1);
  return JSON.parse(lines[0] as string) as { level: string; msg: string };
}

describe('a start that cannot succeed', () => {
  let database: ServerDatabase;
  let holder: Server;
  let heldPort: number;

  beforeAll(async () => {
    database = await createServerDatabase('muster-start-errors-');
    holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    heldPort = (holder.address() as { port: number }).port;
  });

  afterAll(async () => {
    await new Promise((resolve) => holder?.close(resolve));
    await database?.remove();
  });

  it('names the bad variable in one line and exits non-zero', async () => {
    const run = await startToExit({ ...database.env, PORT: '99999' });
    expect(run.code).toBe(1);
    const line = onlyLine(run.stderr);
    expect(line.level).toBe('error');
    expect(line.msg).toMatch(/^Muster could not start: Invalid configuration: PORT: /);
  }, 90_000);

  it('names the port in use in one line and exits non-zero', async () => {
    const run = await startToExit({ ...database.env, PORT: String(heldPort) });
    expect(run.code).toBe(1);
    const line = onlyLine(run.stderr);
    expect(line.msg).toBe(
      `Muster could not start: cannot listen on 127.0.0.1:${heldPort} (PORT, HOST): EADDRINUSE, the port is in use by another process`,
    );
    // It migrates a new database before listening: about 10 s on PGlite, more when busy.
  }, 150_000);
});
