import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeGlobalID } from '@pothos/plugin-relay';
import ExcelJS from 'exceljs';
import { Redis } from 'ioredis';
import type { Sql } from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, type DatabaseHandle } from '../../drizzle/client.js';
import { createCompany } from '../../server/infrastructure/auth.js';
import { createEmptyPostgresDatabase } from '../support/database.js';
import { START_IMPORT, subscribeSse, uploadFile } from '../support/http.js';
import {
  killAllServerProcesses,
  runAdminCli,
  type ServerProcess,
  startServerProcess,
} from '../support/processes.js';

/**
 * Several real server processes (`tsx server/main.ts`) sharing ONE Postgres database: events
 * cross processes (Postgres LISTEN/NOTIFY, or Redis), background work is claimed by whichever
 * process is free and by one at a time, a killed worker's claim runs out and another process
 * redoes the step, and a stopped one hands its work back at once.
 *
 * It runs against the Postgres of DATABASE_URL: vitest.config.ts selects it only when that is
 * set (as in CI), since an embedded PGlite cannot be shared by processes. Run alone, it falls
 * back to postgres://postgres@127.0.0.1:5432/test. The Redis case needs Redis on
 * 127.0.0.1:6379 (or REDIS_URL). Nothing here is skipped: without them the file fails.
 *
 * Two sets of processes take turns, never both at once: a process works on any session of
 * the database but publishes only through its own transport, so a Redis process working on a
 * session would leave a Postgres process's subscriber deaf (and the other way round).
 */

const serverUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const bootstrapToken = randomBytes(32).toString('base64url');
/** Rows of the large file: reading, validating and committing it each take seconds. */
const BULK_ROWS = 20_000;

const FOLLOW = `subscription($id: ID!) { importSessionUpdated(id: $id) {
  stage busy rowCount validRowCount invalidRowCount
  progress { phase processed total }
  result { created updated unchanged skipped }
  failure { code message }
} }`;
const CONTINUE = `mutation($id: ID!, $stage: ImportStage!) {
  continueImport(input: { sessionId: $id, stage: $stage }) {
    __typename ... on ImportSession { stage busy } ... on Error { code message }
  }
}`;
const CONFIRM = `mutation($id: ID!, $add: [String!]!) {
  confirmCustomFields(input: { sessionId: $id, addToDatabase: $add }) {
    __typename ... on ImportSession { stage busy } ... on Error { code message }
  }
}`;

// ---------------------------------------------------------------------------------------------
// Workbooks, written once.

interface ImportFile {
  name: string;
  header: string[];
  rows: string[][];
  content: Uint8Array<ArrayBuffer>;
}

async function importFile(name: string, header: string[], rows: string[][]): Promise<ImportFile> {
  const workbook = new ExcelJS.Workbook();
  const sheet = workbook.addWorksheet('Users');
  sheet.addRow(header);
  for (const row of rows) sheet.addRow(row);
  return { name, header, rows, content: new Uint8Array(await workbook.xlsx.writeBuffer()) };
}

const BUILT_IN = ['Email', 'userName', 'reference'];
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
/** A valid user row: `<prefix><i>@example.com`, `<Prefix> <i>`, `<PREFIX><i>`. */
const person = (prefix: string, i: number): string[] => [
  `${prefix}${i}@example.com`,
  `${prefix[0]?.toUpperCase()}${prefix.slice(1)} ${i}`,
  `${prefix.toUpperCase()}${i}`,
];

async function writeFiles() {
  const [wizard, plainA, plainB, withErrors, newColumn, bulk, first, second] = await Promise.all([
    // Stages 2 to 5: a column to add, three rows with a bad email.
    importFile(
      'wizard.xlsx',
      [...BUILT_IN, 'Department'],
      range(0, 2000).map((i) => {
        const [email, ...rest] = person('wiz', i);
        return [
          i % 600 === 599 ? `not-an-email-${i}` : (email as string),
          ...rest,
          `Dept ${i % 7}`,
        ];
      }),
    ),
    importFile(
      'plain-a.xlsx',
      BUILT_IN,
      range(0, 3000).map((i) => person('qa', i)),
    ),
    importFile(
      'plain-b.xlsx',
      BUILT_IN,
      range(0, 2500).map((i) => person('qb', i)),
    ),
    importFile(
      'with-errors.xlsx',
      BUILT_IN,
      range(0, 2000).map((i) =>
        i % 100 === 0 ? ['bad-email', `Qc ${i}`, `QC${i}`] : person('qc', i),
      ),
    ),
    importFile(
      'new-column.xlsx',
      [...BUILT_IN, 'Site'],
      range(0, 1500).map((i) => [...person('qd', i), `Site ${i % 3}`]),
    ),
    importFile(
      'bulk.xlsx',
      BUILT_IN,
      range(0, BULK_ROWS).map((i) => person('bulk', i)),
    ),
    // Two files sharing the users 1500..2999; the second renames half of those.
    importFile(
      'first.xlsx',
      BUILT_IN,
      range(0, 3000).map((i) => person('ov', i)),
    ),
    importFile(
      'second.xlsx',
      BUILT_IN,
      range(1500, 4500).map((i) => {
        const [email, name, reference] = person('ov', i) as [string, string, string];
        return [email, i < 2250 ? `${name} renamed` : name, reference];
      }),
    ),
  ]);
  return { wizard, plainA, plainB, withErrors, newColumn, bulk, first, second };
}

// ---------------------------------------------------------------------------------------------
// Processes, database, companies.

let database: { url: string; drop(): Promise<void> };
let files: Awaited<ReturnType<typeof writeFiles>>;
let testDb: DatabaseHandle | undefined;
let sql: Sql;
let redis: Redis | undefined;

type Transport = 'postgres' | 'redis';
let current: { transport: Transport; processes: ServerProcess[] } | null = null;

function serverEnv(transport: Transport): Record<string, string> {
  return {
    DATABASE_URL: database.url,
    BOOTSTRAP_ADMIN_TOKEN: bootstrapToken,
    WORK_LEASE_SECONDS: '2',
    // Valid tokens are cached an hour: only a notified change explains a refusal within seconds.
    TOKEN_CACHE_SECONDS: '3600',
    LOG_LEVEL: 'info',
    ...(transport === 'redis' ? { REDIS_URL: redisUrl } : {}),
  };
}

/**
 * The running processes of one transport: three on Postgres LISTEN/NOTIFY (A, B, C), two on
 * Redis (R1, R2). Started together the first time (the first start migrates the new database
 * from both at once); the other set is stopped first.
 */
async function processes(transport: Transport): Promise<ServerProcess[]> {
  if (current?.transport !== transport) {
    if (current) await Promise.all(current.processes.map((server) => server.kill('SIGTERM')));
    current = null;
    const names = transport === 'postgres' ? ['A', 'B', 'C'] : ['R1', 'R2'];
    const started = await Promise.all(
      names.map((name) => startServerProcess(name, serverEnv(transport))),
    );
    current = { transport, processes: started };
    if (!testDb) {
      testDb = await createDatabase({ url: database.url });
      sql = testDb.postgres as Sql;
    }
  }
  return current.processes.filter((server) => server.isRunning());
}

/** The running process whose import worker holds a lease (owner `host:pid:random`). */
async function processOf(leaseOwner: string): Promise<ServerProcess> {
  const pid = Number(leaseOwner.split(':').at(-2));
  for (const server of current?.processes ?? []) {
    if (server.isRunning() && (await server.runs(pid))) return server;
  }
  throw new Error(`no running server has the lease owner ${leaseOwner}`);
}

/** A company of its own for each case, so its users can be counted exactly. */
async function newCompany(
  name: string,
): Promise<{ companyId: string; token: string; tokenId: string }> {
  if (!testDb) throw new Error('no server started yet');
  const created = await createCompany(testDb.db, `${name} ${randomBytes(3).toString('hex')}`);
  return { companyId: created.companyId, token: created.token, tokenId: created.tokenId };
}

beforeAll(async () => {
  database = await createEmptyPostgresDatabase(serverUrl);
  redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true });
  await redis.connect();
  // The Redis case runs first: start its processes while the workbooks are written.
  [files] = await Promise.all([writeFiles(), processes('redis')]);
}, 90_000);

afterAll(async () => {
  for (const server of current?.processes ?? []) server.resume();
  await killAllServerProcesses();
  await testDb?.close();
  redis?.disconnect();
  await database?.drop();
}, 60_000);

// ---------------------------------------------------------------------------------------------
// Driving imports over HTTP.

async function startImport(server: ServerProcess, token: string, file: ImportFile) {
  const { status, body } = await uploadFile(
    server.url,
    token,
    START_IMPORT,
    { input: { file: null } },
    { name: file.name, content: file.content },
  );
  expect(status, JSON.stringify(body)).toBe(200);
  const started = body.data?.startImport;
  expect(started, JSON.stringify(body)).toMatchObject({ __typename: 'ImportSession' });
  return { id: started.id as string, sessionId: decodeGlobalID(started.id).id };
}

/** A mutation's session; a GraphQL or domain error fails the test. */
async function mutate(
  server: ServerProcess,
  token: string,
  mutation: string,
  variables: Record<string, unknown>,
) {
  const result = await server.graphql(token, mutation, variables);
  expect(result.errors, server.logs()).toBeUndefined();
  const payload = Object.values(result.data ?? {})[0] as any;
  expect(payload?.__typename, JSON.stringify(payload)).toBe('ImportSession');
  return payload;
}

interface Follower {
  /** Every state pushed so far. */
  states: any[];
  /** Every state once the stream ended; rejects on a network error or after the timeout. */
  ended: Promise<any[]>;
  /** The first state, pushed already or to come, that matches; rejects if the stream ends. */
  until(what: string, match: (state: any) => boolean, timeoutMs?: number): Promise<any>;
}

/** Follows a session on one process over SSE until the stream ends (or `timeoutMs`). */
function follow(server: ServerProcess, token: string, id: string, timeoutMs = 90_000): Follower {
  const states: any[] = [];
  const waiters = new Set<{ match(state: any): boolean; done(state?: any, why?: string): void }>();
  const ended = subscribeSse(
    server.url,
    token,
    FOLLOW,
    { id },
    (payload) => {
      const state = payload.data?.importSessionUpdated ?? { errors: payload.errors };
      states.push(state);
      for (const waiter of waiters) if (waiter.match(state)) waiter.done(state);
      return false;
    },
    timeoutMs,
  ).then(() => states);
  ended.then(
    () => {
      for (const waiter of waiters) waiter.done(undefined, 'the stream ended');
    },
    (error: unknown) => {
      for (const waiter of waiters) waiter.done(undefined, `the stream failed: ${error}`);
    },
  );
  return {
    states,
    ended,
    until: (what, match, waitMs = 60_000) => {
      const seen = states.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const waiter = {
          match,
          done: (state?: any, why?: string) => {
            clearTimeout(timer);
            waiters.delete(waiter);
            if (why === undefined) resolve(state);
            else {
              const last = JSON.stringify(states.slice(-3));
              reject(new Error(`${what} on ${server.name}: ${why}; last states ${last}`));
            }
          },
        };
        const timer = setTimeout(() => waiter.done(undefined, `not within ${waitMs} ms`), waitMs);
        waiters.add(waiter);
      });
    },
  };
}

const idleAt = (stage: string) => (state: any) => state.stage === stage && state.busy === false;

/** Stage, busy flag, claim and counts of sessions, straight from the database. */
async function sessionRows(ids: string[]) {
  return sql<
    {
      id: string;
      stage: string;
      busy: boolean;
      attempt: number;
      lease_owner: string | null;
      lease_expires_at: Date | null;
      row_count: number;
      valid_row_count: number;
      invalid_row_count: number;
      result: unknown;
    }[]
  >`select id, stage, busy, attempt, lease_owner, lease_expires_at, row_count, valid_row_count,
           invalid_row_count, result
    from import_sessions where id = any(${ids}::uuid[]) order by id`;
}

/**
 * Polls the sessions' claims (every 20 ms) until `done`; returns the lease owners seen for
 * each claim (`<session>#<attempt>`).
 */
async function watchClaims(
  ids: string[],
  done: (rows: Awaited<ReturnType<typeof sessionRows>>) => boolean,
  timeoutMs = 60_000,
): Promise<Map<string, Set<string>>> {
  const owners = new Map<string, Set<string>>();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await sessionRows(ids);
    for (const row of rows) {
      if (!row.lease_owner) continue;
      const claim = `${row.id}#${row.attempt}`;
      owners.set(claim, (owners.get(claim) ?? new Set()).add(row.lease_owner));
    }
    if (done(rows)) return owners;
    if (Date.now() > deadline) {
      throw new Error(`sessions still busy after ${timeoutMs} ms: ${JSON.stringify(rows)}`);
    }
    await sleep(20);
  }
}

/** The staged rows of a session, in row order, as the reader stored them. */
async function stagedCells(sessionId: string): Promise<unknown[]> {
  const rows = await sql<{ row_number: number; cells: unknown }[]>`
    select row_number, cells from import_rows where session_id = ${sessionId} order by row_number`;
  return rows.map((row) => [row.row_number, row.cells]);
}
const fileCells = (file: ImportFile) => file.rows.map((cells, index) => [index + 2, cells]);

/** Every user of a company, as the file's cells (email, userName, reference), by email. */
async function usersOf(companyId: string): Promise<string[][]> {
  const rows = await sql<{ email: string; user_name: string; reference: string }[]>`
    select email, user_name, reference from users where company_id = ${companyId}
    order by email collate "C"`;
  return rows.map((row) => [row.email, row.user_name, row.reference]);
}
const byEmail = (rows: string[][]) =>
  [...rows].sort((a, b) => ((a[0] as string) < (b[0] as string) ? -1 : 1));

/**
 * The whole wizard for `files.wizard`, driven on `driver` only as fast as `watcher`'s
 * subscription reports each stage: it cannot finish unless every event crosses over.
 */
async function wizardAcrossProcesses(
  driver: ServerProcess,
  watcher: ServerProcess,
  token: string,
  whileFollowing: (sessionId: string) => Promise<void>,
) {
  const { id, sessionId } = await startImport(driver, token, files.wizard);
  const onWatcher = follow(watcher, token, id);
  await onWatcher.until('stage 2 (new columns)', idleAt('CUSTOM_FIELDS'));
  await whileFollowing(sessionId);
  expect(await mutate(driver, token, CONFIRM, { id, add: ['Department'] })).toMatchObject({
    stage: 'VALIDATION',
    busy: true,
  });
  expect(await onWatcher.until('stage 3', idleAt('VALIDATION'))).toMatchObject({
    rowCount: 2000,
    validRowCount: 1997,
    invalidRowCount: 3,
  });
  expect(await mutate(driver, token, CONTINUE, { id, stage: 'VALIDATION' })).toMatchObject({
    stage: 'REVIEW',
    busy: true,
  });
  await onWatcher.until('stage 4', idleAt('REVIEW'));
  expect(await mutate(driver, token, CONTINUE, { id, stage: 'REVIEW' })).toMatchObject({
    stage: 'GROUP_ASSIGNMENT',
    busy: true,
  });
  await onWatcher.until('stage 5', idleAt('GROUP_ASSIGNMENT'));
  expect(await mutate(driver, token, CONTINUE, { id, stage: 'GROUP_ASSIGNMENT' })).toMatchObject({
    stage: 'GROUP_ASSIGNMENT',
    busy: true,
  });
  // The subscription ends by itself after COMPLETED.
  const states = await onWatcher.ended;
  expect(states.at(-1)).toMatchObject({
    stage: 'COMPLETED',
    busy: false,
    result: { created: 1997, updated: 0, unchanged: 0, skipped: 3 },
    failure: null,
  });
  const stages = states
    .map((state) => state.stage)
    .filter((stage, index, all) => stage !== all[index - 1] && stage !== 'UPLOAD');
  expect(stages).toEqual([
    'CUSTOM_FIELDS',
    'VALIDATION',
    'REVIEW',
    'GROUP_ASSIGNMENT',
    'COMPLETED',
  ]);
  // Work in progress was pushed too, not only the stages the driver's mutations set.
  expect(states.some((state) => state.busy && state.progress.phase !== 'QUEUED')).toBe(true);
  return sessionId;
}

describe('server processes sharing one Postgres database', () => {
  it('with Redis, a subscriber on one process follows an import driven on another', async () => {
    const [driver, watcher] = await processes('redis');
    if (!driver || !watcher) throw new Error('two Redis processes expected');
    const company = await newCompany('Redis events');
    // No process LISTENs for import events on Postgres: they can only travel through Redis.
    // Each LISTENs for token changes, and for nothing else (server/infrastructure/token-cache.ts).
    const listens = await sql<{ query: string }[]>`
      select query from pg_stat_activity
      where datname = current_database() and query ilike 'listen %'`;
    expect(listens.map((listen) => listen.query)).toEqual([
      'listen "muster_api_token_changed"',
      'listen "muster_api_token_changed"',
    ]);

    await wizardAcrossProcesses(driver, watcher, company.token, async (sessionId) => {
      // The watcher's subscription is a Redis subscription to the session's own channel.
      const channel = `importSession:updated:${sessionId}`;
      expect(await redis?.call('PUBSUB', 'NUMSUB', channel)).toEqual([channel, 1]);
    });
    const [users] = await sql<{ count: number; with_department: number }[]>`
      select count(*)::int as count, count(*) filter (where custom_values <> '{}')::int as with_department
      from users where company_id = ${company.companyId}`;
    expect(users).toEqual({ count: 1997, with_department: 1997 });

    // Both stop gracefully (and so make way for the Postgres processes).
    expect(await Promise.all([driver.kill('SIGTERM'), watcher.kill('SIGTERM')])).toEqual([
      { code: 0, signal: null },
      { code: 0, signal: null },
    ]);
    for (const server of [driver, watcher])
      expect(server.logs()).not.toMatch(/"level":"(warn|error)"/);
  }, 90_000);

  it('over Postgres LISTEN/NOTIFY, a subscriber on B follows an import driven on A', async () => {
    const running = await processes('postgres');
    const [driver, watcher] = running;
    if (!driver || !watcher) throw new Error('two Postgres processes expected');
    const company = await newCompany('Postgres events');
    // Every process listens on the one channel (postgres.js keeps a connection for it).
    const [listeners] = await sql<{ count: number }[]>`
      select count(*)::int as count from pg_stat_activity
      where datname = current_database() and query ilike 'listen %'`;
    expect(listeners?.count).toBe(running.length);

    await wizardAcrossProcesses(driver, watcher, company.token, async () => {});
    const [users] = await sql<{ count: number; with_department: number }[]>`
      select count(*)::int as count, count(*) filter (where custom_values <> '{}')::int as with_department
      from users where company_id = ${company.companyId}`;
    expect(users).toEqual({ count: 1997, with_department: 1997 });
  }, 90_000);

  it('a token revoked with the admin CLI is refused by every process within moments', async () => {
    // Each process has cached the token (for an hour here, see serverEnv); the revocation
    // reaches them through the api_tokens trigger's NOTIFY.
    const running = await processes('postgres');
    const company = await newCompany('Revoked');
    const viewerOf = (server: ServerProcess) =>
      server.graphql(company.token, '{ viewer { role } }');
    for (const server of running) {
      expect((await viewerOf(server)).data?.viewer.role).toBe('ADMIN');
    }
    const revoked = await runAdminCli(['revoke-token', company.tokenId], {
      DATABASE_URL: database.url,
    });
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(JSON.parse(revoked.stdout)).toEqual({ tokenId: company.tokenId, revoked: true });
    for (const server of running) {
      await expect
        .poll(async () => (await viewerOf(server)).errors?.[0]?.extensions?.code, {
          timeout: 5_000,
          interval: 20,
        })
        .toBe('UNAUTHENTICATED');
    }
  }, 60_000);

  it('hands background work to whichever process is free, each step to one process', async () => {
    const running = await processes('postgres');
    const [target] = running;
    if (!target || running.length < 2) throw new Error('two Postgres processes expected');
    const company = await newCompany('Queue');
    const queue = [
      { file: files.plainA, stage: 'REVIEW', invalid: 0, claims: 2 },
      { file: files.plainB, stage: 'REVIEW', invalid: 0, claims: 2 },
      { file: files.withErrors, stage: 'VALIDATION', invalid: 20, claims: 2 },
      { file: files.newColumn, stage: 'CUSTOM_FIELDS', invalid: 0, claims: 1 },
    ];
    // All four uploaded to one process; the others are running too.
    const started = await Promise.all(
      queue.map(({ file }) => startImport(target, company.token, file)),
    );
    const ids = started.map((session) => session.sessionId);
    const owners = await watchClaims(ids, (rows) => rows.every((row) => !row.busy));

    const byId = new Map((await sessionRows(ids)).map((row) => [row.id, row]));
    for (const [index, expected] of queue.entries()) {
      const id = ids[index] as string;
      const rows = expected.file.rows.length;
      // A claim is the attempt it set: READ, then VALIDATE when there is no column to confirm.
      expect(byId.get(id), expected.file.name).toMatchObject({
        stage: expected.stage,
        busy: false,
        attempt: expected.claims,
        lease_owner: null,
        row_count: rows,
        valid_row_count: expected.stage === 'CUSTOM_FIELDS' ? 0 : rows - expected.invalid,
        invalid_row_count: expected.invalid,
      });
      // Every row staged once, exactly as in the file (the primary key forbids doubles).
      expect(await stagedCells(id), expected.file.name).toEqual(fileCells(expected.file));
    }
    // No claim was ever held by two processes; more than one process took part.
    for (const [claim, holders] of owners) expect([...holders], claim).toHaveLength(1);
    const processesSeen = new Set([...owners.values()].flatMap((holders) => [...holders]));
    expect(processesSeen.size).toBeGreaterThanOrEqual(2);
    for (const server of running) expect(server.logs()).not.toMatch(/"level":"(warn|error)"/);
  }, 90_000);

  it('redoes a commit whose process was killed, once the lease ran out, on another process', async () => {
    const running = await processes('postgres');
    const [driver, watcher] = running;
    if (!driver || !watcher) throw new Error('two Postgres processes expected');
    const company = await newCompany('Killed commit');
    const { id, sessionId } = await startImport(driver, company.token, files.bulk);
    const onWatcher = follow(watcher, company.token, id);
    await onWatcher.until('stage 4', idleAt('REVIEW'), 60_000);
    await mutate(driver, company.token, CONTINUE, { id, stage: 'REVIEW' });
    await onWatcher.until('stage 5', idleAt('GROUP_ASSIGNMENT'));
    await mutate(driver, company.token, CONTINUE, { id, stage: 'GROUP_ASSIGNMENT' });
    await onWatcher.until(
      'the commit',
      (state) => state.busy && state.progress.phase === 'COMMITTING',
    );

    // Kill whichever process holds the commit, as soon as it has started.
    const [claim] = await sessionRows([sessionId]);
    expect(claim).toMatchObject({ stage: 'GROUP_ASSIGNMENT', busy: true, attempt: 4 });
    const victim = await processOf(claim?.lease_owner as string);
    expect(await victim.kill('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
    // The kill landed before the commit did: nothing of it is visible.
    const [killed] = await sessionRows([sessionId]);
    expect(killed).toMatchObject({ stage: 'GROUP_ASSIGNMENT', busy: true, attempt: 4 });
    const [before] = await sql<{ count: number }[]>`
      select count(*)::int as count from users where company_id = ${company.companyId}`;
    expect(before?.count).toBe(0);

    const survivor = running.find((server) => server !== victim && server.isRunning());
    if (!survivor) throw new Error('no process left');
    const states = await follow(survivor, company.token, id).ended;
    expect(states.at(-1)).toMatchObject({
      stage: 'COMPLETED',
      busy: false,
      result: { created: BULK_ROWS, updated: 0, unchanged: 0, skipped: 0 },
      failure: null,
    });
    // One more claim: the one that committed.
    expect((await sessionRows([sessionId]))[0]).toMatchObject({ attempt: 5, lease_owner: null });
    // Exactly the file's users, each once.
    expect(await usersOf(company.companyId)).toEqual(byEmail(files.bulk.rows));
    // The watcher's stream ended with COMPLETED too, unless the watcher was the one killed.
    if (victim !== watcher) expect((await onWatcher.ended).at(-1)?.stage).toBe('COMPLETED');
    else await expect(onWatcher.ended).rejects.toThrow();
  }, 90_000);

  it('commits two overlapping imports at once on two processes, the second seeing the first', async () => {
    const running = await processes('postgres');
    const [p, q] = running;
    if (!p || !q) throw new Error('two Postgres processes expected');
    const company = await newCompany('Overlap');
    const imports = [
      { server: p, file: files.first, ...(await startImport(p, company.token, files.first)) },
      { server: q, file: files.second, ...(await startImport(q, company.token, files.second)) },
    ];
    const advance = async (from: string, to: string) => {
      await Promise.all(
        imports.map(async ({ server, id }) => {
          if (from !== 'UPLOAD') await mutate(server, company.token, CONTINUE, { id, stage: from });
          await follow(server, company.token, id).until(to, idleAt(to));
        }),
      );
    };
    await advance('UPLOAD', 'REVIEW');
    // Both previews were made before either commit: every row is new.
    for (const { sessionId, file } of imports) {
      const actions = await sql<{ action: string; count: number }[]>`
        select action, count(*)::int as count from import_row_previews
        where session_id = ${sessionId} group by action`;
      expect(actions).toEqual([{ action: 'CREATE', count: file.rows.length }]);
    }
    await advance('REVIEW', 'GROUP_ASSIGNMENT');

    // Both commits asked for at the same moment, each on its own process.
    const ids = imports.map(({ sessionId }) => sessionId);
    const claims = watchClaims(ids, (rows) => rows.every((row) => row.stage === 'COMPLETED'));
    const followers = imports.map(({ server, id }) => follow(server, company.token, id));
    await Promise.all(
      imports.map(({ server, id }) =>
        mutate(server, company.token, CONTINUE, { id, stage: 'GROUP_ASSIGNMENT' }),
      ),
    );
    const owners = await claims;
    const results = await Promise.all(
      followers.map(async (follower) => {
        const last = (await follower.ended).at(-1);
        expect(last).toMatchObject({ stage: 'COMPLETED', busy: false, failure: null });
        return last.result;
      }),
    );
    // Both commits were claimed at once, so by two processes (each works on one at a time).
    const commitOwners = ids.map((id) => [...(owners.get(`${id}#4`) ?? [])]);
    expect(commitOwners.map((holders) => holders.length)).toEqual([1, 1]);
    expect(commitOwners[0]?.[0]).not.toBe(commitOwners[1]?.[0]);

    // One after the other (the company's commit lock): the second found the first's users.
    const firstDone = results[0].created === 3000 ? 0 : 1;
    const secondDone = 1 - firstDone;
    expect(results[firstDone]).toEqual({ created: 3000, updated: 0, unchanged: 0, skipped: 0 });
    expect(results[secondDone]).toEqual({
      created: 1500,
      updated: 750,
      unchanged: 750,
      skipped: 0,
    });
    // The union, each user once, with the values of whichever committed last.
    const expected = new Map<string, string[]>();
    for (const index of [firstDone, secondDone]) {
      for (const row of imports[index]?.file.rows ?? []) expected.set(row[0] as string, row);
    }
    expect(await usersOf(company.companyId)).toEqual(byEmail([...expected.values()]));
    expect(expected.size).toBe(4500);
  }, 90_000);

  it('on SIGTERM mid-read, ends its subscriptions, exits 0 and hands the work back at once', async () => {
    const running = await processes('postgres');
    const [target] = running;
    if (!target || running.length < 2) throw new Error('two Postgres processes expected');
    const company = await newCompany('Stopped read');
    const { id, sessionId } = await startImport(target, company.token, files.bulk);
    // Whoever claimed the read: follow it there.
    let owner: string | null = null;
    for (const deadline = Date.now() + 30_000; !owner && Date.now() < deadline; await sleep(20)) {
      owner = (await sessionRows([sessionId]))[0]?.lease_owner ?? null;
    }
    if (!owner) throw new Error('nobody claimed the read');
    const worker = await processOf(owner);
    const onWorker = follow(worker, company.token, id);
    await onWorker.until(
      'reading well under way',
      (state) => state.progress.phase === 'READING' && state.progress.processed >= 4_000,
    );

    // The other processes are frozen while the worker stops: the session must be free for
    // them when they wake, though its 2 s lease could not have run out.
    const others = running.filter((server) => server !== worker);
    for (const server of others) server.pause();
    try {
      expect(await worker.kill('SIGTERM', 12_000), worker.logs()).toEqual({
        code: 0,
        signal: null,
      });
      // The subscription was completed, not cut: the stream ended without an error, while
      // the import was still reading.
      const states = await onWorker.ended;
      expect(states.at(-1)).toMatchObject({ stage: 'UPLOAD', busy: true });
      expect(worker.logs()).toContain('SIGTERM: shutting down');
      expect(worker.logs()).toMatch(/"outcome":"handed_back".*"msg":"import step ended"/);
      expect(worker.logs()).not.toMatch(/"level":"(warn|error)"/);
      // Handed back: still the first claim, but nobody's, and free now.
      expect((await sessionRows([sessionId]))[0]).toMatchObject({
        stage: 'UPLOAD',
        busy: true,
        attempt: 1,
        lease_owner: null,
        lease_expires_at: null,
      });
    } finally {
      for (const server of others) server.resume();
    }

    // Another process reads the file again from the start and the import goes on to the end.
    const [next] = others;
    if (!next) throw new Error('no process left');
    const onNext = follow(next, company.token, id);
    expect(await onNext.until('stage 4', idleAt('REVIEW'))).toMatchObject({
      rowCount: BULK_ROWS,
      validRowCount: BULK_ROWS,
      invalidRowCount: 0,
    });
    expect(await stagedCells(sessionId)).toEqual(fileCells(files.bulk));
    await mutate(next, company.token, CONTINUE, { id, stage: 'REVIEW' });
    await onNext.until('stage 5', idleAt('GROUP_ASSIGNMENT'));
    await mutate(next, company.token, CONTINUE, { id, stage: 'GROUP_ASSIGNMENT' });
    expect((await onNext.ended).at(-1)).toMatchObject({
      stage: 'COMPLETED',
      result: { created: BULK_ROWS, updated: 0, unchanged: 0, skipped: 0 },
    });
    // The read claimed twice (stopped, redone), then validation, groups, commit once each.
    expect((await sessionRows([sessionId]))[0]).toMatchObject({ attempt: 5 });
    expect(await usersOf(company.companyId)).toEqual(byEmail(files.bulk.rows));
  }, 90_000);
});
