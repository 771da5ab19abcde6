import type { PGlite } from '@electric-sql/pglite';
import type { Client } from '@urql/core';
import type { Logger as DrizzleLogger } from 'drizzle-orm';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateCustomFieldDocument,
  CreateDistributionRuleDocument,
  CreateTrainingGroupDocument,
  createMusterClient,
  ImportErrorsDocument,
  ImportRowsDocument,
  ImportSessionsDocument,
  importUsers,
  UsersDocument,
} from '../../client/index.js';
import type { Database } from '../../drizzle/client.js';
import { relations } from '../../drizzle/relations.js';
import { MAX_PAGE_SIZE } from '../../schema/pagination.js';
import { createApp } from '../../server/http/app.js';
import { createLogger } from '../../server/infrastructure/logger.js';
import { createInProcessImportEvents } from '../../server/infrastructure/pubsub.js';
import { createTokenAuthenticator } from '../../server/infrastructure/token-cache.js';
import { createTestApp, type TestApp, type TestCompany } from '../support/app.js';
import { workbookBytes } from '../support/tenant-fixtures.js';

/**
 * The statements one page of the client's documents runs do not grow with the page's size or
 * its columns: fields, groups and rules are loaded once per request for every row and cell.
 * They are counted at drizzle's logger, on an app of their own over the same database (the
 * test app's import worker polls the database meanwhile; its statements are not counted).
 */

let t: TestApp;
let company: TestCompany;
let client: Client;
let reviewId: string;
let counted: { client: Client; statements: string[]; close(): Promise<void> };

const HEADER = ['Email', 'userName', 'reference', 'Department', 'Site', 'Floor', 'Desk'];

function person(n: number, renamed: boolean): string[] {
  const email = n % 20 === 0 ? `bad-email-${n}` : `user${n}@example.com`;
  return [
    email,
    renamed ? `User ${n} renamed` : `User ${n}`,
    `R${n}`,
    n % 2 ? 'North' : 'South',
    `Site ${n % 3}`,
    `${n % 5}`,
    `D${n}`,
  ];
}

beforeAll(async () => {
  t = await createTestApp();
  company = await t.createTestCompany();
  const base = await t.listen();
  client = createMusterClient({ url: `${base}/graphql`, token: company.token });
  for (const name of ['North', 'South']) {
    const group = await client
      .mutation(CreateTrainingGroupDocument, { input: { name } })
      .toPromise();
    const created = group.data?.createTrainingGroup;
    if (created?.__typename !== 'TrainingGroup') throw new Error('no group');
    await client
      .mutation(CreateCustomFieldDocument, { input: { label: 'Department' } })
      .toPromise();
    await client
      .mutation(CreateDistributionRuleDocument, {
        input: {
          fieldKey: 'department',
          operator: 'EQUALS',
          value: name,
          trainingGroupId: created.id,
        },
      })
      .toPromise();
  }
  const first = Array.from({ length: 150 }, (_, i) => person(i + 1, false));
  await importUsers(client, await workbookBytes([HEADER, ...first]), {
    newColumns: 'all',
    onRowErrors: 'skip',
  });
  const second = Array.from({ length: 300 }, (_, i) => person(i + 1, (i + 1) % 2 === 0));
  const review = await importUsers(client, await workbookBytes([HEADER, ...second]), {
    onRowErrors: 'skip',
    stopAt: 'review',
  });
  reviewId = review.id;

  // The same app over a drizzle instance on the same connection, with a logger that counts.
  const statements: string[] = [];
  const logger: DrizzleLogger = { logQuery: (query) => statements.push(query) };
  const $client = (t.db as unknown as { $client: unknown }).$client;
  const db = (t.database.kind === 'pglite'
    ? drizzlePglite({ client: $client as PGlite, relations, logger })
    : drizzlePostgres({
        client: t.database.postgres as never,
        relations,
        logger,
      })) as unknown as Database;
  const events = createInProcessImportEvents();
  // Tokens are looked up outside the count (they are cached across requests anyway).
  const tokens = await createTokenAuthenticator({
    db: t.db,
    postgres: t.database.postgres,
    cacheSeconds: t.config.TOKEN_CACHE_SECONDS,
  });
  const app = createApp({
    db,
    config: t.config,
    logger: createLogger('silent'),
    events,
    importWorker: { wake: () => {} },
    tokens,
  });
  const fetchApp = ((input: RequestInfo | URL, init?: RequestInit) =>
    Promise.resolve(app.yoga.fetch(input as URL, init ?? {}))) as typeof globalThis.fetch;
  counted = {
    client: createMusterClient({
      url: 'http://muster.test/graphql',
      token: company.token,
      fetch: fetchApp,
    }),
    statements,
    close: async () => {
      await events.close();
      await tokens.close();
    },
  };
}, 300_000);

afterAll(async () => {
  await counted?.close();
  await t?.close();
});

/** The statements one run of a query makes, and its data. */
async function statementsOf<Data>(
  run: (client: Client) => Promise<{ data?: Data; error?: unknown }>,
) {
  counted.statements.length = 0;
  const result = await run(counted.client);
  expect(result.error).toBeUndefined();
  return { count: counted.statements.length, data: result.data as Data };
}

describe('statements per page of the client documents', () => {
  it('ImportRows: the same at 1, 10 and 100 rows, with every cell, change, group and rule', async () => {
    const page = (first: number) =>
      statementsOf((c) => c.query(ImportRowsDocument, { id: reviewId, first }).toPromise());
    const one = await page(1);
    const ten = await page(10);
    const full = await page(MAX_PAGE_SIZE);
    const rows = full.data.importSession?.rows.edges.map((edge) => edge.node) ?? [];
    expect(rows).toHaveLength(MAX_PAGE_SIZE);
    expect(rows[0]?.values).toHaveLength(HEADER.length);
    expect(rows.some((row) => row.changes.length > 0)).toBe(true);
    expect(rows.some((row) => row.trainingGroup && row.matchedRule)).toBe(true);
    expect(full.data.importSession?.rows.totalCount).toBe(300);
    expect([ten.count, full.count]).toEqual([one.count, one.count]);
    // The token's session, the page, its count, the fields, the groups and the rules.
    expect(full.count).toBeLessThanOrEqual(6);
  });

  it('ImportErrors: the same at 1 and 100 errors', async () => {
    const page = (first: number) =>
      statementsOf((c) => c.query(ImportErrorsDocument, { id: reviewId, first }).toPromise());
    const one = await page(1);
    const full = await page(MAX_PAGE_SIZE);
    expect(full.data.importSession?.errors.totalCount).toBe(15);
    expect(full.count).toBe(one.count);
    expect(full.count).toBeLessThanOrEqual(3);
  });

  it('users with custom values and groups: the same at 1 and 100 users', async () => {
    const page = (first: number) =>
      statementsOf((c) => c.query(UsersDocument, { first }).toPromise());
    const one = await page(1);
    const full = await page(MAX_PAGE_SIZE);
    const users = full.data.users.edges.map((edge) => edge.node);
    expect(users).toHaveLength(MAX_PAGE_SIZE);
    expect(users.every((user) => user.customFieldValues.length >= 4)).toBe(true);
    expect(users.some((user) => user.trainingGroup)).toBe(true);
    expect(full.count).toBe(one.count);
    expect(full.count).toBeLessThanOrEqual(4);
  });

  it('importSessions: the same at 1 session and all of them, with their columns', async () => {
    const page = (first: number) =>
      statementsOf((c) => c.query(ImportSessionsDocument, { first }).toPromise());
    const one = await page(1);
    const all = await page(MAX_PAGE_SIZE);
    expect(all.data.importSessions.edges).toHaveLength(2);
    expect(all.data.importSessions.totalCount).toBe(2);
    expect(all.count).toBe(one.count);
    expect(all.count).toBeLessThanOrEqual(3);
  });
});
