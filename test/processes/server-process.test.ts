import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServerDatabase, type ServerDatabase } from '../support/database.js';
import { childEnv, type ServerProcess, startServerProcess } from '../support/processes.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const tsx = join(repoRoot, 'node_modules', '.bin', 'tsx');
// A new PGlite data directory takes about 10 s to initialise, more on a busy machine.
const startTimeoutMs = 60_000;
const tokenPattern = /mst_[A-Za-z0-9_-]{43}/;
const viewerQuery = '{ viewer { role company { name } } }';

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

async function stopWithinTenSeconds(server: ServerProcess) {
  const stoppingAt = Date.now();
  const exit = await server.kill('SIGTERM');
  expect(exit).toEqual({ code: 0, signal: null });
  expect(Date.now() - stoppingAt).toBeLessThan(10_000);
}

describe('the server process on a fresh database', () => {
  let database: ServerDatabase;
  let server: ServerProcess;
  let firstToken: string;

  beforeAll(async () => {
    database = await createServerDatabase('muster-server-');
    server = await startServerProcess('server', database.env, { startTimeoutMs });
    firstToken = tokenPattern.exec(await server.waitForStdout(tokenPattern))?.[0] ?? '';
  });

  afterAll(async () => {
    await server?.kill('SIGTERM');
    await database?.remove();
  });

  it('prints an ADMIN token on first start, answers /health and accepts that token', async () => {
    expect(firstToken).toMatch(tokenPattern);
    expect(server.logs()).toContain(`${server.url}/graphql`);

    const health = await fetch(`${server.url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    // Its connections outlast what it advertises (server/http/http-server.ts); Node's own says 5.
    expect(health.headers.get('keep-alive')).toBe('timeout=60');

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
      const secondServer = await startServerProcess('server', database.env, { startTimeoutMs });
      try {
        const health = await fetch(`${secondServer.url}/health`);
        expect(health.status).toBe(200);
        await expectAdminOfDefaultCompany(secondServer.url, firstToken);
        await expectAdminOfDefaultCompany(server.url, firstToken);
        expect(secondServer.stdout()).not.toMatch(tokenPattern);
      } finally {
        await secondServer.kill('SIGTERM');
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

    server = await startServerProcess('server', database.env, { startTimeoutMs });
    // A token would be printed before the server answers any request.
    await expectAdminOfDefaultCompany(server.url, firstToken);
    expect(server.stdout()).not.toMatch(tokenPattern);
    expect(server.stdout()).not.toContain('Created the default company');

    await stopWithinTenSeconds(server);
  }, 120_000);
});

describe('npm start', () => {
  // A process manager (systemd, Docker running `npm start`) signals npm, not the server:
  // npm passes SIGTERM to its script's shell, which must have become the server (`exec`),
  // else the server lives on without a parent.
  it('passes a SIGTERM sent to npm on to the server, which shuts down and leaves nothing running', async () => {
    const database = await createServerDatabase('muster-npm-start-');
    try {
      const server = await startServerProcess('npm start', database.env, {
        startTimeoutMs,
        npmStart: true,
      });
      expect((await queryViewer(server.url, null)).status).toBe(401);
      expect(await server.kill('SIGTERM')).toEqual({ code: 0, signal: null });
      expect(server.logs()).toContain('SIGTERM: shutting down');
      expect(await server.processesInGroup()).toEqual([]);
    } finally {
      await database.remove();
    }
    // A new PGlite data directory alone may take most of the default minute to start.
  }, 120_000);
});

describe('the server process with BOOTSTRAP_ADMIN_TOKEN', () => {
  const bootstrapToken = `bootstrap-${randomBytes(32).toString('base64url')}`;
  let database: ServerDatabase;
  let server: ServerProcess;

  beforeAll(async () => {
    database = await createServerDatabase('muster-server-');
    server = await startServerProcess(
      'server',
      { ...database.env, BOOTSTRAP_ADMIN_TOKEN: bootstrapToken },
      { startTimeoutMs },
    );
  });

  afterAll(async () => {
    await server?.kill('SIGTERM');
    await database?.remove();
  });

  it('makes that exact token the ADMIN token of a fresh database without printing it', async () => {
    await expectAdminOfDefaultCompany(server.url, bootstrapToken);
    await server.waitForStdout(/Created the default company/);
    expect(server.stdout()).not.toContain(bootstrapToken);
    expect(server.logs()).not.toContain(bootstrapToken);
    expect(server.stdout()).not.toMatch(tokenPattern);
  });
});
