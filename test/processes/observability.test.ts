import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import ExcelJS from 'exceljs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMusterClient, importUsers } from '../../client/index.js';
import { loadConfig } from '../../server/infrastructure/config.js';
import { createLogger } from '../../server/infrastructure/logger.js';
import { checkReadiness } from '../../server/infrastructure/readiness.js';
import { type RunningServer, startServer } from '../../server/start.js';
import {
  createServerDatabase,
  createTestDatabase,
  type ServerDatabase,
} from '../support/database.js';

/**
 * The server as `npm start` builds it (startServer), in this process so that its log lines
 * can be read as they are written: what an operator's log collector and Prometheus see.
 */

const METRICS_TOKEN = 'metrics-token-for-the-test';

type LogLine = Record<string, unknown> & { level: string; msg: string; time: string };

let database: ServerDatabase;
let dataDir: string;
let server: RunningServer;
let token: string;
const lines: LogLine[] = [];

beforeAll(async () => {
  database = await createServerDatabase('muster-observability-');
  dataDir = await mkdtemp(join(tmpdir(), 'muster-observability-files-'));
  const config = loadConfig({
    ...database.env,
    NODE_ENV: 'test',
    PORT: '0',
    HOST: '127.0.0.1',
    METRICS_TOKEN,
  });
  const logger = createLogger('info', {
    destination: { write: (line) => lines.push(JSON.parse(line) as LogLine) },
  });
  server = await startServer(config, logger);
  token = server.bootstrapToken ?? '';
}, 60_000);

afterAll(async () => {
  await server?.close();
  await database?.remove();
  await rm(dataDir, { recursive: true, force: true });
});

async function workbook(rows: (string | null)[][]): Promise<Uint8Array> {
  const book = new ExcelJS.Workbook();
  const sheet = book.addWorksheet('Users');
  for (const row of rows) sheet.addRow(row);
  return new Uint8Array(await book.xlsx.writeBuffer());
}

/** A client whose every request carries `x-request-id: requestId`. */
function tracedClient(requestId: string) {
  return createMusterClient({
    url: `${server.url}/graphql`,
    token,
    fetch: (input, init) => {
      const headers = new Headers(init?.headers);
      headers.set('x-request-id', requestId);
      return fetch(input, { ...init, headers });
    },
  });
}

async function waitForLine(match: (line: LogLine) => boolean): Promise<LogLine> {
  for (let waited = 0; waited < 10_000; waited += 20) {
    const found = lines.find(match);
    if (found) return found;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no such log line among:\n${lines.map((l) => JSON.stringify(l)).join('\n')}`);
}

describe('structured logs', () => {
  it('logs an import from its session to its completion, each line with the request id that caused it', async () => {
    const requestId = 'trace-import-0001';
    const session = await importUsers(
      tracedClient(requestId),
      await workbook([
        ['Email', 'userName', 'reference'],
        ['ann@example.com', 'Ann', 'R1'],
        ['bob@example.com', 'Bob', 'R2'],
        ['not-an-email', 'Nobody', 'R3'],
      ]),
      { onRowErrors: 'skip' },
    );
    expect(session.stage).toBe('COMPLETED');
    await waitForLine((line) => line.msg === 'import completed');

    // Every line is JSON with a time, a level and a message.
    for (const line of lines) {
      expect(Date.parse(line.time)).not.toBeNaN();
      expect(['debug', 'info', 'warn', 'error']).toContain(line.level);
    }
    const ofImport = lines.filter((line) => line.requestId === requestId);
    const created = ofImport.find((line) => line.msg === 'import session created');
    expect(created).toMatchObject({ level: 'info', fileName: 'users.xlsx' });
    const internalId = created?.sessionId as string;
    expect(internalId).toMatch(/^[0-9a-f-]{36}$/);

    const steps = ofImport.filter((line) => line.sessionId === internalId);
    const started = steps.filter((line) => line.msg === 'import step started').map((l) => l.step);
    const ended = steps.filter((line) => line.msg === 'import step ended');
    expect(started).toEqual(['READ', 'VALIDATE', 'REVIEW', 'ASSIGN', 'COMMIT']);
    expect(ended.map((line) => line.step)).toEqual(started);
    for (const line of ended) {
      expect(line).toMatchObject({ outcome: 'completed', rows: 3 });
      expect(typeof line.durationMs).toBe('number');
      expect(typeof line.rowsPerSecond).toBe('number');
    }
    expect(steps.find((line) => line.msg === 'import completed')).toMatchObject({
      rows: 3,
      created: 2,
      updated: 0,
      unchanged: 0,
      skipped: 1,
    });

    // One access line per request: the operation, status, duration, company; never the token.
    const access = ofImport.filter((line) => line.msg === 'request');
    expect(access.map((line) => line.operation)).toContain('mutation startImport');
    for (const line of access) {
      expect(line).toMatchObject({ status: 200, companyId: created?.companyId });
      expect(typeof line.durationMs).toBe('number');
    }
    expect(JSON.stringify(lines)).not.toContain(token);
  });

  it('logs a failed import with its failure code', async () => {
    const requestId = 'trace-failed-read';
    const failure = await importUsers(
      tracedClient(requestId),
      // A title and no header row: nothing can be mapped, so the read fails.
      await workbook([['Quarterly report'], ['A']]),
    ).catch((error: unknown) => error);
    expect(failure).toMatchObject({ reason: 'failed', code: 'NO_DATA_SHEET' });
    const failed = await waitForLine(
      (line) => line.requestId === requestId && line.msg === 'import failed',
    );
    expect(failed).toMatchObject({ level: 'warn', step: 'READ', code: 'NO_DATA_SHEET' });
    expect(
      lines.find((line) => line.requestId === requestId && line.msg === 'import step ended'),
    ).toMatchObject({ step: 'READ', outcome: 'failed', stage: 'FAILED' });
  });

  it('makes a request id when none is sent, and returns it', async () => {
    const response = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer wrong' },
      body: JSON.stringify({ query: '{ viewer { role } }' }),
    });
    const requestId = response.headers.get('x-request-id');
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    const line = await waitForLine((l) => l.requestId === requestId && l.msg === 'request');
    expect(line).toMatchObject({ status: 401, errors: ['UNAUTHENTICATED'] });

    // A header that would break a log line or run on forever is not taken as an id.
    const hostile = await fetch(`${server.url}/health`, {
      headers: { 'x-request-id': `a"b ${'x'.repeat(200)}` },
    });
    expect(hostile.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('/metrics', () => {
  it('wants METRICS_TOKEN when set', async () => {
    expect((await fetch(`${server.url}/metrics`)).status).toBe(401);
    const wrong = await fetch(`${server.url}/metrics`, {
      headers: { authorization: 'Bearer not-the-metrics-token' },
    });
    expect(wrong.status).toBe(401);
  });

  it('serves requests, errors, imports, rows, steps, lease losses, pool and event-loop lag in Prometheus format', async () => {
    const response = await fetch(`${server.url}/metrics`, {
      headers: { authorization: `Bearer ${METRICS_TOKEN}` },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const text = await response.text();
    const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1]);
    expect(
      value(/^muster_http_requests_total\{operation="mutation startImport",status="200"\} (\d+)$/m),
    ).toBeGreaterThanOrEqual(2);
    expect(text).toMatch(
      /^muster_http_request_duration_seconds_bucket\{le="\+Inf",operation="mutation startImport"\} \d+$/m,
    );
    expect(value(/^muster_errors_total\{code="UNAUTHENTICATED"\} (\d+)$/m)).toBeGreaterThanOrEqual(
      1,
    );
    expect(value(/^muster_import_sessions\{stage="COMPLETED",busy="false"\} (\d+)$/m)).toBe(1);
    expect(value(/^muster_import_rows_processed_total\{step="COMMIT"\} (\d+)$/m)).toBe(3);
    expect(
      value(
        /^muster_import_step_duration_seconds_count\{step="READ",outcome="completed"\} (\d+)$/m,
      ),
    ).toBe(1);
    expect(
      value(/^muster_import_step_duration_seconds_count\{step="READ",outcome="failed"\} (\d+)$/m),
    ).toBe(1);
    expect(value(/^muster_import_failures_total\{code="NO_DATA_SHEET"\} (\d+)$/m)).toBe(1);
    expect(value(/^muster_import_sessions\{stage="FAILED",busy="false"\} (\d+)$/m)).toBe(1);
    expect(value(/^muster_import_lease_losses_total (\d+)$/m)).toBe(0);
    expect(value(/^muster_db_pool_max_connections (\d+)$/m)).toBeGreaterThanOrEqual(1);
    expect(text).toMatch(/^muster_db_ping_seconds \d/m);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds \d/m);
  });
});

describe('/ready and /health', () => {
  it('is ready when migrated, reachable and working, and says what it checked', async () => {
    const response = await fetch(`${server.url}/ready`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      status: 'ready',
      database: 'ok',
      migrations: 'ok',
      worker: 'ok',
    });
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
  });
});

describe('readiness checks', () => {
  it('is not ready when a shipped migration is missing from the database, or the worker stopped', async () => {
    const db = await createTestDatabase();
    try {
      const running = { isRunning: () => true };
      expect(await checkReadiness(db.db, running)).toEqual({
        ready: true,
        checks: { database: 'ok', migrations: 'ok', worker: 'ok' },
      });
      await db.db.execute(
        sql`delete from drizzle.__drizzle_migrations where name = '20261125142700_init'`,
      );
      expect(await checkReadiness(db.db, { isRunning: () => false })).toEqual({
        ready: false,
        checks: {
          database: 'ok',
          migrations: 'not applied: 20261125142700_init',
          worker: 'stopped',
        },
      });
    } finally {
      await db.close();
    }
  });
});
