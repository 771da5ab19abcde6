import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ExcelJS from 'exceljs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CommandRun, REPOSITORY_ROOT, runMusterCli, TSX } from '../support/client-fixtures.js';
import { createServerDatabase, type ServerDatabase } from '../support/database.js';
import {
  killAllServerProcesses,
  type ServerProcess,
  startServerProcess,
} from '../support/processes.js';

/**
 * The CLI against real server processes: a server that goes away mid-import, comes back,
 * and the import resumed from where it stands with the policies it was started with.
 */

const tokenPattern = /mst_[A-Za-z0-9_-]{43}/;
const ROWS = 20_000;

let database: ServerDatabase;
let dir: string;
let server: ServerProcess;
let token: string;
/** Short leases: the restarted server takes the killed one's session over at once. */
const serverEnv = () => ({ ...database.env, WORK_LEASE_SECONDS: '2' });

beforeAll(async () => {
  database = await createServerDatabase('muster-cli-resume-');
  dir = await mkdtemp(join(tmpdir(), 'muster-cli-resume-files-'));
  server = await startServerProcess('server', serverEnv(), { startTimeoutMs: 180_000 });
  token = tokenPattern.exec(await server.waitForStdout(tokenPattern))?.[0] ?? '';
}, 240_000);

afterAll(async () => {
  await killAllServerProcesses();
  await database?.remove();
  await rm(dir, { recursive: true, force: true });
});

/** The CLI's environment: this test's state directory, and a short retry budget. */
function cliEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    MUSTER_URL: server.url,
    MUSTER_TOKEN: token,
    XDG_STATE_HOME: join(dir, 'state'),
    MUSTER_RETRY_SECONDS: '1',
    ...extra,
  };
}

function muster(args: string[], env: Record<string, string> = cliEnv()): Promise<CommandRun> {
  return runMusterCli(args, env, { timeout: 120_000 });
}

describe('muster resume', () => {
  it('prints the session first, gives up on a server that went away, and resumes once it is back', async () => {
    const book = new ExcelJS.Workbook();
    const sheet = book.addWorksheet('Users');
    sheet.addRow(['Email', 'userName', 'reference', 'Site']);
    sheet.addRow(['not-an-email', 'Nobody', 'R0', 'Paris']);
    for (let row = 1; row < ROWS; row++) {
      sheet.addRow([`user${row}@example.com`, `User ${row}`, `R${row}`, 'Lyon']);
    }
    const path = join(dir, 'users.xlsx');
    await book.xlsx.writeFile(path);

    const env = { ...process.env, ...cliEnv() };
    delete env.MUSTER_TOKEN;
    const cli = spawn(
      TSX,
      ['client/cli.ts', 'import', path, '--new-columns', 'Site', '--on-row-errors', 'skip'],
      { cwd: REPOSITORY_ROOT, env: { ...env, MUSTER_TOKEN: token } },
    );
    let stderr = '';
    let stdout = '';
    cli.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    cli.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    const exited = new Promise<number | null>((resolve) => cli.once('close', resolve));
    for (let waited = 0; !/^Session: \S+$/m.test(stderr); waited += 20) {
      if (waited > 90_000 || cli.exitCode !== null) throw new Error(`no session id:\n${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    // The server goes away while it reads the file (a crash, a redeploy).
    await server.kill('SIGKILL');
    const code = await exited;

    const sessionId = /^Session: (\S+)$/m.exec(stderr)?.[1] as string;
    expect(stderr.split('\n')[0]).toBe(`Session: ${sessionId}`);
    expect(code, stderr).toBe(6);
    expect(stdout).toBe('');
    expect(stderr).toContain(`muster resume ${sessionId}`);

    server = await startServerProcess('server', serverEnv(), { startTimeoutMs: 180_000 });
    // No policy given again: the ones the import was started with apply.
    const resumed = await muster(['resume', sessionId]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain(
      `Imported users.xlsx (${ROWS.toLocaleString('en-US')} rows, 1 with errors).`,
    );
    expect(resumed.stdout).toMatch(/^ {2}created\s+19,999$/m);
    expect(resumed.stdout).toMatch(/^ {2}skipped\s+1$/m);
    const fields = await server.graphql(token, '{ userFields { key label } }');
    expect(JSON.stringify(fields.data)).toContain('Site');
  }, 600_000);
});

describe('errors an integrator can act on', () => {
  it('tells a server that answers 404 from one that cannot be reached', async () => {
    const wrongPath = await muster(
      ['status', 'x', '--json'],
      cliEnv({ MUSTER_URL: `${server.url}/nope` }),
    );
    expect(wrongPath.code).toBe(1);
    expect(JSON.parse(wrongPath.stdout)).toMatchObject({
      error: { reason: 'http', code: 'HTTP_404' },
    });
    expect(wrongPath.stderr).not.toContain('could not be reached');

    const closed = await muster(
      ['status', 'x', '--json'],
      cliEnv({ MUSTER_URL: 'http://127.0.0.1:9' }),
    );
    expect(closed.code).toBe(6);
    expect(JSON.parse(closed.stdout)).toMatchObject({
      error: { reason: 'network', code: 'NETWORK_ERROR' },
    });
  }, 240_000);

  it('reports errors as JSON on stdout with --json', async () => {
    const bogus = await muster(['status', 'bogus', '--json']);
    expect(bogus.code).toBe(1);
    expect(JSON.parse(bogus.stdout).error).toMatchObject({ code: expect.any(String) });

    const usage = await muster(['status', '--json']);
    expect(usage.code).toBe(2);
    expect(JSON.parse(usage.stdout)).toMatchObject({ error: { reason: 'usage' } });
  }, 240_000);
});
