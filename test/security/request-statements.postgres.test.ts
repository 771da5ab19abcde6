import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import postgres, { type Sql } from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { users } from '../../drizzle/tables.js';
import { MAX_STATEMENTS_PER_REQUEST } from '../../server/http/request-database.js';
import { createTestApp, type TestApp, type TestCompany } from '../support/app.js';

/**
 * Issue #24, on a real Postgres: a request's statements end when its client goes, and one
 * request cannot take the whole pool. The slow statement is a realistic one: `users(search:)`
 * with the longest search allowed (200 characters) over a company of many users, matching none,
 * so every user is read and compared three times.
 */

let t: TestApp;
let baseUrl: string;
/** A connection of the test's own, apart from the app's pool, to watch pg_stat_activity. */
let observer: Sql;
let large: TestCompany;
let medium: TestCompany;
let other: TestCompany;

// 200 characters, the most users(search:) takes, matching nobody.
const SEARCH = 'zq'.repeat(100);
const SEARCH_USERS = `query($search: String!) {
  users(first: 1, search: $search) { edges { node { id } } }
}`;

/** Adds `count` users to a company in one statement, as a large company would have. */
async function addUsers(company: TestCompany, count: number, domain: string): Promise<void> {
  await observer`
    insert into users (company_id, email, user_name, reference)
    select ${company.companyId}, 'user' || g || '@' || ${domain}, 'User number ' || g, 'REF-' || g
    from generate_series(1, ${count}::int) g`;
  await observer`analyze users`;
}

beforeAll(async () => {
  t = await createTestApp();
  baseUrl = await t.listen();
  const url = (t.database as { url?: string }).url;
  if (!url) throw new Error('these tests need DATABASE_URL');
  observer = postgres(url, { max: 1, onnotice: () => {} });
  large = await t.createTestCompany('Large');
  medium = await t.createTestCompany('Medium');
  other = await t.createTestCompany('Other');
  // The medium company has a third of the large one's users: its search takes a third as long.
  await addUsers(large, 600_000, 'large.example');
  await addUsers(medium, 200_000, 'medium.example');
  await t.db.insert(users).values({
    companyId: other.companyId,
    email: 'ann@other.example',
    userName: 'Ann',
    reference: 'A1',
  });
}, 300_000);

afterAll(async () => {
  await observer?.end();
  await t?.close();
});

interface Statement {
  pid: number;
  /** Start of the statement's transaction: the same through its Bind and Execute messages. */
  started: string;
}

/**
 * The app's statements running a users search (the observer's own excluded). With `executing`,
 * only those busy for 100 ms or more: past their Parse, Describe and Bind messages (each of
 * which resets query_start), so they are reading users.
 */
async function runningSearches({ executing = true } = {}): Promise<Statement[]> {
  const rows = await observer<{ pid: number; started: string }[]>`
    select pid, xact_start::text as started from pg_stat_activity
    where datname = current_database() and state = 'active' and pid <> pg_backend_pid()
      and query ilike '%ilike%'
      and (not ${executing} or clock_timestamp() - query_start >= interval '100 milliseconds')`;
  return rows.map((row) => ({ pid: row.pid, started: row.started }));
}

function sameStatement(a: Statement, b: Statement): boolean {
  return a.pid === b.pid && a.started === b.started;
}

/** Polls until `found` returns something, or fails after `what` was not seen for 60 s. */
async function waitFor<T>(what: string, found: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const value = await found();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`never saw: ${what}`);
    await sleep(10);
  }
}

/** A POST written on a raw socket: the test decides when the client goes. */
function rawPost(token: string, query: string, variables: Record<string, unknown>): Socket {
  const body = JSON.stringify({ query, variables });
  const url = new URL(baseUrl);
  const socket = connect(Number(url.port), url.hostname);
  socket.on('error', () => {});
  socket.write(
    [
      'POST /graphql HTTP/1.1',
      `Host: ${url.host}`,
      `Authorization: Bearer ${token}`,
      'Content-Type: application/json',
      `Content-Length: ${Buffer.byteLength(body)}`,
      '',
      body,
    ].join('\r\n'),
  );
  return socket;
}

async function post(token: string, query: string, variables: Record<string, unknown> = {}) {
  const response = await fetch(`${baseUrl}/graphql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as { data?: any; errors?: unknown[] };
}

describe('a request whose client goes', () => {
  it('has its running statement cancelled, not run to its end', async () => {
    expect(await runningSearches({ executing: false })).toEqual([]);
    const leaving = rawPost(large.token, SEARCH_USERS, { search: SEARCH });
    const [left] = await waitFor('the large search running', async () => {
      const running = await runningSearches();
      return running.length === 1 ? running : undefined;
    });
    if (!left) throw new Error('unreachable');
    // The medium: the same search over a third of the users, started after the large one, so
    // that run to their ends the large one would end last.
    const mediumAnswer = post(medium.token, SEARCH_USERS, { search: SEARCH });
    const mediumStatement = await waitFor('the medium search running', async () =>
      (await runningSearches()).find((statement) => !sameStatement(statement, left)),
    );

    leaving.destroy();
    await waitFor('the large search gone', async () =>
      (await runningSearches({ executing: false })).some((statement) =>
        sameStatement(statement, left),
      )
        ? undefined
        : true,
    );
    // Gone while the shorter medium search still runs: cancelled, not finished.
    expect(
      (await runningSearches({ executing: false })).filter((statement) =>
        sameStatement(statement, mediumStatement),
      ),
    ).toEqual([mediumStatement]);

    expect((await mediumAnswer).data).toEqual({ users: { edges: [] } });
    // The large company's next request is answered on the same pool.
    const next = await post(large.token, '{ users(first: 1) { edges { node { email } } } }');
    expect(next.data?.users.edges).toHaveLength(1);
  }, 120_000);
});

describe('a request with many aliases', () => {
  it(`runs at most ${MAX_STATEMENTS_PER_REQUEST} statements at once, so another company gets a connection at once`, async () => {
    expect(await runningSearches({ executing: false })).toEqual([]);
    const aliases = Array.from(
      { length: 10 },
      (_, i) => `a${i}: users(first: 1, search: $search) { edges { node { id } } }`,
    );
    let attackDone = false;
    const attack = post(medium.token, `query($search: String!) { ${aliases.join(' ')} }`, {
      search: SEARCH,
    }).finally(() => {
      attackDone = true;
    });
    // The most of the attack's statements seen running at once, watched until it is answered.
    let mostAtOnce = 0;
    const watching = (async () => {
      while (!attackDone) {
        mostAtOnce = Math.max(mostAtOnce, (await runningSearches({ executing: false })).length);
      }
    })();

    const seen = await waitFor('the attack running', async () => {
      const running = await runningSearches();
      return running.length >= MAX_STATEMENTS_PER_REQUEST ? running : undefined;
    });
    const answer = await post(other.token, '{ users(first: 1) { edges { node { email } } } }');
    // Answered while every attack statement that ran when it was sent still runs: it did not
    // wait for one of them to free a connection.
    const stillRunning = await runningSearches({ executing: false });
    expect(answer.data).toEqual({ users: { edges: [{ node: { email: 'ann@other.example' } }] } });
    expect(
      seen.filter((statement) => stillRunning.some((now) => sameStatement(now, statement))),
    ).toEqual(seen);

    const attacked = await attack;
    await watching;
    expect(attacked.errors).toBeUndefined();
    expect(Object.values(attacked.data ?? {})).toEqual(
      Array.from({ length: 10 }, () => ({ edges: [] })),
    );
    expect(mostAtOnce).toBe(MAX_STATEMENTS_PER_REQUEST);
  }, 180_000);
});
