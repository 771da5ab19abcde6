import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServerDatabase, type ServerDatabase } from './database.js';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const tsx = join(repoRoot, 'node_modules', '.bin', 'tsx');
// A new PGlite data directory takes about 10 s to initialise, more on a busy machine.
const startTimeoutMs = 60_000;
const tokenPattern = /mst_[A-Za-z0-9_-]{43}/;
const viewerQuery = '{ viewer { role company { name } } }';

function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    ...extra,
  };
  // The child must use the database it is given, never one inherited from the test run.
  if (!extra.DATABASE_URL) delete env.DATABASE_URL;
  if (!extra.BOOTSTRAP_ADMIN_TOKEN) delete env.BOOTSTRAP_ADMIN_TOKEN;
  return env;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

interface RunningServer {
  url: string;
  stdout(): string;
  stderr(): string;
  /** Waits until stdout matches: it is written after the listening line, on another pipe. */
  waitForStdout(pattern: RegExp): Promise<string>;
  /** Sends SIGTERM (unless the process already ended) and waits for the exit. */
  stop(): Promise<Exit>;
}

/** Starts `tsx server/main.ts` and waits for its "Muster is listening on <url>" log line. */
async function startServer(env: Record<string, string>): Promise<RunningServer> {
  const child = spawn(tsx, ['server/main.ts'], { cwd: repoRoot, env: childEnv(env) });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<Exit>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  const waitForStdout = async (pattern: RegExp) => {
    const deadline = Date.now() + 10_000;
    while (!pattern.test(stdout)) {
      if (Date.now() > deadline) throw new Error(`stdout never matched ${pattern}:\n${stdout}`);
      await sleep(50);
    }
    return stdout;
  };
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    return exited;
  };

  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`The server did not listen within ${startTimeoutMs} ms:\n${stderr}`));
    }, startTimeoutMs);
    child.stderr.on('data', () => {
      const match = /Muster is listening on (http:\/\/\S+)/.exec(stderr);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    void exited.then((exit) => {
      clearTimeout(timer);
      reject(
        new Error(`The server exited (${exit.code ?? exit.signal}) before listening:\n${stderr}`),
      );
    });
  });
  return { url, stdout: () => stdout, stderr: () => stderr, waitForStdout, stop };
}

/** Runs `tsx <args>` to its end; never throws on a non-zero exit code. */
function runToExit(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      tsx,
      args,
      { cwd: repoRoot, env: childEnv(env), timeout: startTimeoutMs },
      (_error, stdout, stderr) => resolve({ code: child.exitCode, stdout, stderr }),
    );
  });
}

interface GraphQLBody {
  data?: { viewer: { role: string; company: { name: string } } } | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

async function queryViewer(url: string, token: string | null) {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query: viewerQuery }),
  });
  return { status: response.status, body: (await response.json()) as GraphQLBody };
}

async function expectAdminOfDefaultCompany(url: string, token: string) {
  const { status, body } = await queryViewer(url, token);
  expect(body.errors).toBeUndefined();
  expect(status).toBe(200);
  expect(body.data?.viewer).toEqual({ role: 'ADMIN', company: { name: 'Default company' } });
}

async function stopWithinTenSeconds(server: RunningServer) {
  const stoppingAt = Date.now();
  const exit = await server.stop();
  expect(exit).toEqual({ code: 0, signal: null });
  expect(Date.now() - stoppingAt).toBeLessThan(10_000);
}

describe('the server process on a fresh database', () => {
  let database: ServerDatabase;
  let server: RunningServer;
  let firstToken: string;

  beforeAll(async () => {
    database = await createServerDatabase('muster-server-');
    server = await startServer(database.env);
    firstToken = tokenPattern.exec(await server.waitForStdout(tokenPattern))?.[0] ?? '';
  });

  afterAll(async () => {
    await server?.stop();
    await database?.remove();
  });

  it('prints an ADMIN token on first start, answers /health and accepts that token', async () => {
    expect(firstToken).toMatch(tokenPattern);
    expect(server.stderr()).toContain(`${server.url}/graphql`);

    const health = await fetch(`${server.url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });

    await expectAdminOfDefaultCompany(server.url, firstToken);
  });

  it('answers 401 UNAUTHENTICATED without a token and with a wrong token', async () => {
    const withoutToken = await queryViewer(server.url, null);
    expect(withoutToken.status).toBe(401);
    expect(withoutToken.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');

    const wrongToken = await queryViewer(
      server.url,
      `mst_${randomBytes(32).toString('base64url')}`,
    );
    expect(wrongToken.status).toBe(401);
    expect(wrongToken.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('serves GraphiQL to a browser without a token', async () => {
    const response = await fetch(`${server.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/html');
    expect(await response.text()).toMatch(/graphiql/i);
  });

  it('handles a second process on the same database', async () => {
    if (process.env.DATABASE_URL) {
      // On Postgres a second server is fine: both serve the same data.
      const secondServer = await startServer(database.env);
      try {
        const health = await fetch(`${secondServer.url}/health`);
        expect(health.status).toBe(200);
        await expectAdminOfDefaultCompany(secondServer.url, firstToken);
        await expectAdminOfDefaultCompany(server.url, firstToken);
        expect(secondServer.stdout()).not.toMatch(tokenPattern);
      } finally {
        await secondServer.stop();
      }
      return;
    }

    // PGlite corrupts a data directory opened by two processes: both must refuse to start.
    const secondServer = await runToExit(['server/main.ts'], database.env);
    expect(secondServer.code).not.toBe(0);
    expect(secondServer.stderr).toContain('in use by a running Muster server');

    const adminCli = await runToExit(['server/cli/admin.ts', 'create-company', 'X'], database.env);
    expect(adminCli.code).not.toBe(0);
    expect(adminCli.stderr).toContain('in use by a running Muster server');
    expect(adminCli.stdout).toBe('');

    // The refused processes left the running server alone.
    await expectAdminOfDefaultCompany(server.url, firstToken);
  });

  it('exits with code 0 within 10 s on SIGTERM; a restart prints no token and keeps the first', async () => {
    await stopWithinTenSeconds(server);

    server = await startServer(database.env);
    // A token would be printed before the server answers any request.
    await expectAdminOfDefaultCompany(server.url, firstToken);
    expect(server.stdout()).not.toMatch(tokenPattern);
    expect(server.stdout()).not.toContain('Created the default company');

    await stopWithinTenSeconds(server);
  }, 120_000);
});

describe('the server process with BOOTSTRAP_ADMIN_TOKEN', () => {
  const bootstrapToken = `bootstrap-${randomBytes(32).toString('base64url')}`;
  let database: ServerDatabase;
  let server: RunningServer;

  beforeAll(async () => {
    database = await createServerDatabase('muster-server-');
    server = await startServer({ ...database.env, BOOTSTRAP_ADMIN_TOKEN: bootstrapToken });
  });

  afterAll(async () => {
    await server?.stop();
    await database?.remove();
  });

  it('makes that exact token the ADMIN token of a fresh database without printing it', async () => {
    await expectAdminOfDefaultCompany(server.url, bootstrapToken);
    await server.waitForStdout(/Created the default company/);
    expect(server.stdout()).not.toContain(bootstrapToken);
    expect(server.stderr()).not.toContain(bootstrapToken);
    expect(server.stdout()).not.toMatch(tokenPattern);
  });
});
