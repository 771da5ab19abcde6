import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCompany } from '../../server/infrastructure/auth.js';
import {
  ENTITY_MARKER,
  EXTERNAL_ENTITY_LEAK,
  type HostileExpectation,
  hostileCases,
  writeHostileCorpus,
} from '../fixtures/hostile/generate.js';
import { createServerDatabase, type ServerDatabase } from '../support/database.js';
import { START_IMPORT, uploadFile } from '../support/http.js';
import {
  killAllServerProcesses,
  type ServerProcess,
  startServerProcess,
} from '../support/processes.js';

/**
 * Issue #8: every file of the hostile corpus (test/fixtures/hostile) is uploaded over real
 * HTTP to a real server process (`tsx server/main.ts`), one after the other, as an admin of
 * one company would. Each ends in a typed error or a FAILED session with a failure code (or,
 * for the files that are harmless after all, a session waiting at the stage its README
 * entry gives) within a bound; no entity is expanded and nothing is imported; meanwhile
 * another company's requests keep being answered and the server's memory stays bounded.
 *
 * The server runs with its default limits (50 MiB uploads, 2 GiB inflated, 500 columns,
 * 10,000 zip parts): the bombs are refused from their declared sizes, so no limit has to be
 * lowered to keep this fast. Only READ_TIME_LIMIT_MS is lowered, from 10 minutes to 10 s, so
 * that a file the reader chokes on fails here as TIME_LIMIT within its case's bound instead
 * of hanging the run.
 */

const onPostgres = Boolean(process.env.DATABASE_URL);
const databaseKind = onPostgres ? 'Postgres' : 'PGlite';
/** From the upload to the session's final state, including the worker thread's start. */
const CASE_TIME_LIMIT_MS = 15_000;
const READ_TIME_LIMIT_MS = 10_000;
/**
 * The server process's peak RSS (VmHWM). Measured: about 510–530 MiB on Postgres, the
 * reader's worker reading deep-nesting-xml being the largest step; 1,170–1,570 MiB on PGlite,
 * whose WASM heap grows by hundreds of MiB when a 3 MB upload is stored in it and never
 * shrinks (docs/security.md, known limits). Either bound is far below what the bombs would
 * take if read (3 GiB for one sheet).
 */
const PEAK_RSS_LIMIT_MIB = onPostgres ? 768 : 2048;
/**
 * The slowest `viewer` answer while the files are read. Measured: at most about 450 ms on Postgres;
 * up to 2 s on PGlite, which runs every query on the server's main thread, so storing a 3 MB
 * upload or a 10 MB cell holds every other request meanwhile.
 */
const VIEWER_LATENCY_LIMIT_MS = onPostgres ? 2_000 : 4_000;
const PING_INTERVAL_MS = 100;

const VIEWER = '{ viewer { role company { name } } }';
const SESSION = `query($id: ID!) { importSession(id: $id) {
  stage busy rowCount invalidRowCount
  failure { code message }
  columns { header status }
} }`;
const ROWS = `query($id: ID!) { importSession(id: $id) {
  rows(first: 100) { edges { node { rowNumber values { header value } errors { code } } } }
} }`;
const USERS = '{ users(first: 100) { edges { node { email } } } }';
const SESSIONS = '{ importSessions(first: 100) { edges { node { stage } } } }';

let workDir: string;
/** The corpus file of each case, by name. */
const files = new Map<string, string>();
let server: ServerProcess;
let serverDatabase: ServerDatabase | null = null;
const tokens = { uploader: '', bystander: '' };

/** A fresh database with two companies, made before the server starts (PGlite is one process's). */
async function createCompanies(): Promise<Record<string, string>> {
  serverDatabase = await createServerDatabase('muster-hostile-db-');
  const database = await serverDatabase.open();
  try {
    await database.migrate();
    tokens.uploader = (await createCompany(database.db, 'Uploads hostile files')).token;
    tokens.bystander = (await createCompany(database.db, 'Bystander')).token;
  } finally {
    await database.close();
  }
  return serverDatabase.env;
}

async function graphql(token: string, query: string, variables: Record<string, unknown> = {}) {
  const result = await server.graphql(token, query, variables);
  expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
  return result.data;
}

// ---------------------------------------------------------------------------------------------
// Another company's requests while the files are read.

interface Ping {
  company: keyof typeof tokens;
  ms: number;
  ok: boolean;
  /** Whether a hostile file was being uploaded or read when the request was sent. */
  duringRead: boolean;
}

const pings: Ping[] = [];
let reading = false;
let pinging = true;

async function ping(company: keyof typeof tokens): Promise<Ping> {
  const duringRead = reading;
  const startedAt = Date.now();
  try {
    const result = await server.graphql(tokens[company], VIEWER);
    const ok = result.errors === undefined && result.data?.viewer?.role === 'ADMIN';
    return { company, ms: Date.now() - startedAt, ok, duringRead };
  } catch {
    return { company, ms: Date.now() - startedAt, ok: false, duringRead };
  }
}

async function keepPinging(): Promise<void> {
  while (pinging) {
    pings.push(await ping('bystander'), await ping('uploader'));
    await sleep(PING_INTERVAL_MS);
  }
}

// ---------------------------------------------------------------------------------------------
// Memory of the server process.

/** The pids of the server's process group (tsx and the node server it runs), from /proc. */
async function serverProcessGroup(): Promise<number[]> {
  const groups = new Map<number, number[]>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => null);
    if (!stat) continue;
    // Fields after "(comm)": state, ppid, pgrp.
    const pgrp = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
    groups.set(pgrp, [...(groups.get(pgrp) ?? []), Number(entry)]);
  }
  for (const [pgrp, pids] of groups) {
    const leader = await readFile(`/proc/${pgrp}/comm`, 'utf8').catch(() => '');
    if (leader.trim() === 'node' && (await server.runs(pgrp))) return pids;
  }
  throw new Error('the server process group was not found in /proc');
}

/** The largest peak resident set (VmHWM) of the group's processes, in MiB. */
async function peakRssMiB(): Promise<number> {
  let peakKiB = 0;
  for (const pid of await serverProcessGroup()) {
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    const kiB = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
    peakKiB = Math.max(peakKiB, kiB);
  }
  return peakKiB / 1024;
}

// ---------------------------------------------------------------------------------------------

let pinger: Promise<void>;

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'muster-hostile-'));
  for (const { name, file } of await writeHostileCorpus(join(workDir, 'corpus'))) {
    files.set(name, file);
  }
  const env = await createCompanies();
  server = await startServerProcess('hostile', {
    ...env,
    READ_TIME_LIMIT_MS: String(READ_TIME_LIMIT_MS),
  });
  pinger = keepPinging();
});

afterAll(async () => {
  pinging = false;
  await pinger;
  await killAllServerProcesses();
  await serverDatabase?.remove();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

function outcome(expectation: HostileExpectation): string {
  if (expectation.code === 'READ') {
    const rows = `${expectation.rowCount} row${expectation.rowCount === 1 ? '' : 's'}`;
    return `read, waits at ${expectation.stage} with ${rows}`;
  }
  if (expectation.rejectedBy === 'startImport') return `startImport answers ${expectation.code}`;
  return `FAILED with ${expectation.code}`;
}

async function waitUntilIdle(id: string, deadline: number) {
  for (;;) {
    const { importSession } = await graphql(tokens.uploader, SESSION, { id });
    if (!importSession.busy) return importSession;
    if (Date.now() > deadline) {
      throw new Error(
        `still busy after ${CASE_TIME_LIMIT_MS} ms: ${JSON.stringify(importSession)}`,
      );
    }
    await sleep(100);
  }
}

function expectNoEntityExpanded(...values: unknown[]) {
  const text = JSON.stringify(values);
  expect(text).not.toContain(ENTITY_MARKER);
  expect(text).not.toContain(EXTERNAL_ENTITY_LEAK);
}

async function upload(hostile: (typeof hostileCases)[number]) {
  const file = files.get(hostile.name);
  if (!file) throw new Error(`no corpus file for ${hostile.name}`);
  const { status, body } = await uploadFile(
    server.url,
    tokens.uploader,
    START_IMPORT,
    { input: { file: null, comment: hostile.name } },
    { name: `${hostile.name}.xlsx`, content: new Uint8Array(await readFile(file)) },
  );
  expect(status, JSON.stringify(body)).toBe(200);
  expect(body.errors, JSON.stringify(body)).toBeUndefined();
  return body.data.startImport;
}

describe('hostile uploads to a server process', () => {
  for (const hostile of hostileCases) {
    it(
      `${hostile.name}: ${outcome(hostile.expect)}, within ${CASE_TIME_LIMIT_MS / 1000} s`,
      async () => {
        const expected = hostile.expect;
        const startedAt = Date.now();
        reading = true;
        try {
          const started = await upload(hostile);
          if (expected.code !== 'READ' && expected.rejectedBy === 'startImport') {
            expect(started.__typename).not.toBe('ImportSession');
            expect(started.code).toBe(expected.code);
            expect(started.message).toMatch(/\w/);
            return;
          }
          expect(started.__typename, JSON.stringify(started)).toBe('ImportSession');
          const session = await waitUntilIdle(started.id, startedAt + CASE_TIME_LIMIT_MS);
          const { importSession } = await graphql(tokens.uploader, ROWS, { id: started.id });
          const rows = importSession.rows.edges.map((edge: any) => edge.node);
          expectNoEntityExpanded(session, rows);

          if (expected.code === 'READ') {
            expect(session).toMatchObject({
              stage: expected.stage,
              rowCount: expected.rowCount,
              invalidRowCount: expected.invalidRowCount,
              failure: null,
            });
            const newColumns = session.columns
              .filter((column: any) => column.status === 'NEW')
              .map((column: any) => column.header);
            expect(newColumns).toEqual(expected.newColumns);
            expect(rows).toHaveLength(expected.rowCount);
            const invalid = rows.filter((row: any) => row.errors.length > 0);
            expect(invalid).toHaveLength(expected.invalidRowCount);
          } else {
            expect(session).toMatchObject({
              stage: 'FAILED',
              rowCount: 0,
              failure: { code: expected.code },
            });
            expect(session.failure.message).toMatch(/\w/);
            expect(rows).toEqual([]);
          }
        } finally {
          reading = false;
        }
        expect(Date.now() - startedAt).toBeLessThan(CASE_TIME_LIMIT_MS);
      },
      CASE_TIME_LIMIT_MS + 10_000,
    );
  }

  it('imported nothing: neither company has a user, no import completed, the server runs', async () => {
    for (const token of [tokens.uploader, tokens.bystander]) {
      const { users } = await graphql(token, USERS);
      expect(users.edges).toEqual([]);
    }
    const { importSessions } = await graphql(tokens.uploader, SESSIONS);
    const stages = importSessions.edges.map((edge: any) => edge.node.stage);
    expect(stages).not.toContain('COMPLETED');
    const stored = hostileCases.filter(
      (hostile) => hostile.expect.code === 'READ' || hostile.expect.rejectedBy === 'reader',
    );
    expect(stages).toHaveLength(stored.length);
    expect(server.isRunning()).toBe(true);
    expectNoEntityExpanded(server.logs());
  });

  it(`kept answering both companies' viewer queries within ${VIEWER_LATENCY_LIMIT_MS} ms while reading (${databaseKind})`, () => {
    const duringRead = pings.filter((result) => result.duringRead);
    expect(duringRead.filter((result) => result.company === 'bystander').length).toBeGreaterThan(
      20,
    );
    expect(duringRead.filter((result) => !result.ok)).toEqual([]);
    expect(Math.max(...duringRead.map((result) => result.ms))).toBeLessThan(
      VIEWER_LATENCY_LIMIT_MS,
    );
  });

  it(`kept the server's peak RSS under ${PEAK_RSS_LIMIT_MIB} MiB (${databaseKind})`, async () => {
    expect(await peakRssMiB()).toBeLessThan(PEAK_RSS_LIMIT_MIB);
  });
});
