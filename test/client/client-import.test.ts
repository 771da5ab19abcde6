import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ExcelJS from 'exceljs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  createMusterClient,
  type ImportSession,
  type ImportStage,
  ImportUsersError,
  importUsers,
  type SubscriptionTransport,
  UserFieldsDocument,
  UsersDocument,
} from '../../client/index.js';
import { importStage } from '../../drizzle/tables.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { CLIENT_TEST_FILE, companyWithSalesRule } from '../support/client-fixtures.js';

let t: TestApp;
let url: string;
let dir: string;
beforeAll(async () => {
  t = await createTestApp();
  url = `${await t.listen()}/graphql`;
  dir = await mkdtemp(join(tmpdir(), 'muster-client-import-'));
});
afterAll(async () => {
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

async function workbook(rows: (string | null)[][]): Promise<Buffer> {
  const book = new ExcelJS.Workbook();
  const sheet = book.addWorksheet('Users');
  for (const row of rows) sheet.addRow(row);
  return Buffer.from(await book.xlsx.writeBuffer());
}

/** A client on the real HTTP server that records whether it opened SSE streams. */
function clientFor(
  token: string,
  subscriptionTransport: SubscriptionTransport = 'sse',
): { client: ReturnType<typeof createMusterClient>; sseRequests: () => number } {
  let sse = 0;
  const client = createMusterClient({
    url,
    token,
    subscriptionTransport,
    webSocketImpl: WebSocket,
    fetch: (input, init) => {
      if (new Headers(init?.headers).get('accept')?.startsWith('text/event-stream')) sse++;
      return fetch(input, init);
    },
  });
  return { client, sseRequests: () => sse };
}

async function companyUsers(token: string) {
  const { client } = clientFor(token);
  const result = await client.query(UsersDocument, { first: 50 }).toPromise();
  return (result.data?.users.edges ?? [])
    .map(({ node }) => ({
      email: node.email,
      userName: node.userName,
      group: node.trainingGroup?.name ?? null,
      values: Object.fromEntries(node.customFieldValues.map((v) => [v.label, v.value])),
    }))
    .sort((a, b) => a.email.localeCompare(b.email));
}

async function customFieldLabels(token: string): Promise<string[]> {
  const { client } = clientFor(token);
  const result = await client
    .query(UserFieldsDocument, {}, { requestPolicy: 'network-only' })
    .toPromise();
  return (result.data?.userFields ?? [])
    .filter((f) => !f.builtIn)
    .map((f) => f.label)
    .sort();
}

async function expectImportError(promise: Promise<unknown>): Promise<ImportUsersError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ImportUsersError);
  return error as ImportUsersError;
}

/** The stages of a whole import, in order: the schema's, but for the other endings. */
const STAGE_INDEX: ImportStage[] = importStage.enumValues.filter(
  (stage) => stage !== 'CANCELLED' && stage !== 'FAILED' && stage !== 'REVERTED',
);

describe('importUsers', () => {
  it.each([
    ['sse', 'a file path'],
    ['graphql-ws', 'a Buffer'],
  ] as const)('drives a full import with progress over %s, from %s', async (transport, input) => {
    const company = await companyWithSalesRule(t, url);
    const { client, sseRequests } = clientFor(company.token, transport);
    const bytes = await workbook(CLIENT_TEST_FILE);
    const path = join(dir, `users-${transport}.xlsx`);
    await writeFile(path, bytes);
    const seen: ImportSession[] = [];

    const session = await importUsers(client, input === 'a file path' ? path : bytes, {
      newColumns: 'all',
      onRowErrors: 'skip',
      comment: `over ${transport}`,
      onProgress: (update) => seen.push(update),
    });

    expect(session).toMatchObject({
      stage: 'COMPLETED',
      busy: false,
      fileName: input === 'a file path' ? `users-${transport}.xlsx` : 'users.xlsx',
      comment: `over ${transport}`,
      rowCount: 4,
      invalidRowCount: 1,
      result: { created: 2, updated: 1, unchanged: 0, skipped: 1 },
    });
    // Progress only moves forward: no stage reported again once the import has left it.
    const order = seen.map((update) => STAGE_INDEX.indexOf(update.stage));
    expect(order).toEqual([...order].sort((a, b) => a - b));
    const stages = new Set<ImportStage>(seen.map((update) => update.stage));
    expect([...stages]).toEqual(STAGE_INDEX);
    // Busy at every stage with background work: the answers to the upload and to each step.
    const busyStages = new Set(seen.filter((update) => update.busy).map((update) => update.stage));
    expect([...busyStages]).toEqual(['UPLOAD', 'VALIDATION', 'REVIEW', 'GROUP_ASSIGNMENT']);
    expect(seen[0]).toMatchObject({ stage: 'UPLOAD', busy: true });
    // The updates came over the transport asked for.
    if (transport === 'sse') expect(sseRequests()).toBeGreaterThan(0);
    else expect(sseRequests()).toBe(0);

    expect(await customFieldLabels(company.token)).toEqual(['Department']);
    expect(await companyUsers(company.token)).toEqual([
      {
        email: 'ann@sales.example',
        userName: 'Ann',
        group: 'Sales',
        values: { Department: 'North' },
      },
      { email: 'bob@example.com', userName: 'Bob', group: null, values: { Department: 'South' } },
      { email: 'old@example.com', userName: 'Old Renamed', group: null, values: {} },
    ]);
  });

  it('adds all, none or the listed new columns as custom fields', async () => {
    const file = await workbook([
      ['Email', 'userName', 'reference', 'Department', 'Site', 'Badge Number'],
      ['a@example.com', 'A', 'R1', 'North', 'Paris', '17'],
    ]);
    const run = async (newColumns: 'all' | 'none' | string[]) => {
      const company = await t.createTestCompany();
      const { client } = clientFor(company.token);
      const session = await importUsers(client, file, { newColumns });
      const statuses = Object.fromEntries(session.columns.map((c) => [c.header, c.status]));
      return { session, statuses, fields: await customFieldLabels(company.token) };
    };
    const [all, none, listed] = await Promise.all([
      run('all'),
      run('none'),
      run([' site ', 'Floor']),
    ]);

    expect(all.fields).toEqual(['Badge Number', 'Department', 'Site']);
    expect(all.statuses).toMatchObject({
      Department: 'ADDED',
      Site: 'ADDED',
      'Badge Number': 'ADDED',
    });
    expect(none.fields).toEqual([]);
    expect(none.statuses).toMatchObject({
      Department: 'IGNORED',
      Site: 'IGNORED',
      'Badge Number': 'IGNORED',
    });
    expect(listed.fields).toEqual(['Site']);
    expect(listed.statuses).toMatchObject({ Department: 'IGNORED', Site: 'ADDED' });
    for (const { session } of [all, none, listed]) {
      expect(session.result).toEqual({
        created: 1,
        updated: 0,
        unchanged: 0,
        skipped: 0,
        archived: 0,
        restored: 0,
      });
    }
  });

  it('stops at VALIDATION with the first row errors when onRowErrors is stop', async () => {
    const company = await t.createTestCompany();
    const { client } = clientFor(company.token);
    const file = await workbook([
      ['Email', 'userName', 'reference'],
      ['ok@example.com', 'Ok', 'R1'],
      ['bad', 'Bad', 'R2'],
      ['ok@example.com', 'Twice', 'R3'],
      [null, 'No Mail', 'R4'],
    ]);

    const error = await expectImportError(
      importUsers(client, file, { onRowErrors: 'stop', maxErrors: 2 }),
    );
    expect(error).toMatchObject({
      reason: 'row-errors',
      code: 'ROW_ERRORS',
      stage: 'VALIDATION',
      session: { stage: 'VALIDATION', busy: false, rowCount: 4, invalidRowCount: 3 },
    });
    expect(error.message).toBe('3 of 4 rows have errors; nothing was imported.');
    // Capped at maxErrors, in row order.
    expect(error.errors.map((e) => [e.rowNumber, e.column, e.code])).toEqual([
      [3, 'Email', 'INVALID_EMAIL'],
      [4, 'Email', 'DUPLICATE_IN_FILE'],
    ]);
    expect(await companyUsers(company.token)).toEqual([]);

    // The same file with skip imports the valid row.
    const skipped = await importUsers(client, file, { onRowErrors: 'skip' });
    expect(skipped.result).toEqual({
      created: 1,
      updated: 0,
      unchanged: 0,
      skipped: 3,
      archived: 0,
      restored: 0,
    });
    expect((await companyUsers(company.token)).map((u) => u.email)).toEqual(['ok@example.com']);
  });

  it('stops at the stage asked for, committing nothing', async () => {
    const company = await companyWithSalesRule(t, url);
    const { client } = clientFor(company.token);
    const file = await workbook(CLIENT_TEST_FILE);
    const clean = await workbook([
      ['Email', 'userName', 'reference'],
      ['ann@sales.example', 'Ann', 'R1'],
    ]);
    const [upload, customFields, validation, review, groups, cleanAtValidation] = await Promise.all(
      [
        importUsers(client, file, { stopAt: 'upload' }),
        importUsers(client, file, { stopAt: 'custom-fields' }),
        importUsers(client, file, { stopAt: 'validation', onRowErrors: 'skip' }),
        importUsers(client, file, { stopAt: 'review', onRowErrors: 'skip' }),
        importUsers(client, file, { stopAt: 'group-assignment', onRowErrors: 'skip' }),
        // Without row errors validation passes on its own: the first stop is REVIEW.
        importUsers(client, clean, { stopAt: 'validation' }),
      ],
    );

    expect(upload).toMatchObject({ stage: 'UPLOAD', busy: true });
    expect(customFields).toMatchObject({ stage: 'CUSTOM_FIELDS', busy: false });
    expect(customFields.columns.find((c) => c.header === 'Department')?.status).toBe('NEW');
    expect(validation).toMatchObject({ stage: 'VALIDATION', busy: false, invalidRowCount: 1 });
    expect(review).toMatchObject({ stage: 'REVIEW', busy: false });
    expect(groups).toMatchObject({ stage: 'GROUP_ASSIGNMENT', busy: false, result: null });
    expect(cleanAtValidation).toMatchObject({ stage: 'REVIEW', busy: false });
    expect((await companyUsers(company.token)).map((u) => u.email)).toEqual(['old@example.com']);
    expect(await customFieldLabels(company.token)).toEqual([]);
  });

  it('throws typed errors for a refused file, a failed import, bad tokens and no server', async () => {
    const company = await t.createTestCompany();
    const { client } = clientFor(company.token);

    const csv = await expectImportError(
      importUsers(client, Buffer.from('Email,userName,reference\na@x.com,A,R1\n'), {
        fileName: 'users.xlsx',
      }),
    );
    expect(csv).toMatchObject({
      reason: 'bad-file',
      code: 'NOT_A_WORKBOOK',
      stage: 'UPLOAD',
      session: null,
    });

    const noColumns = await expectImportError(
      importUsers(
        client,
        await workbook([
          ['Phone', 'City'],
          ['555-0100', 'Springfield'],
        ]),
      ),
    );
    expect(noColumns).toMatchObject({ reason: 'failed', stage: 'FAILED' });
    expect(noColumns.code).toMatch(/^(NO_DATA_SHEET|MISSING_COLUMNS)$/);
    expect(noColumns.message).toBe(noColumns.session?.failure?.message);

    const file = await workbook(CLIENT_TEST_FILE);
    const wrongToken = await expectImportError(importUsers(clientFor('mst_wrong').client, file));
    expect(wrongToken).toMatchObject({ reason: 'auth', code: 'UNAUTHENTICATED', session: null });
    const viewer = await expectImportError(
      importUsers(clientFor(company.viewerToken).client, file),
    );
    expect(viewer).toMatchObject({ reason: 'auth', code: 'FORBIDDEN' });

    const closedPort = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
    const offline = createMusterClient({
      url: `http://127.0.0.1:${closedPort}/graphql`,
      token: company.token,
    });
    const unreachable = await expectImportError(importUsers(offline, file));
    expect(unreachable).toMatchObject({ reason: 'network', code: 'NETWORK_ERROR' });
    expect(unreachable.message).toContain('ECONNREFUSED');
  });
});

describe('an SSE subscription', () => {
  it('can be left while its stream is open, many times, without an unhandled rejection', async () => {
    const company = await companyWithSalesRule(t, url);
    const { client } = clientFor(company.token);
    const file = await workbook(CLIENT_TEST_FILE);
    const unhandled: unknown[] = [];
    const record = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', record);
    try {
      // importUsers leaves the subscription (urql aborts its open request) at each stop.
      for (const stopAt of ['validation', 'review', 'group-assignment', 'review'] as const) {
        const session = await importUsers(client, file, { stopAt, onRowErrors: 'skip' });
        expect(session.busy).toBe(false);
      }
      // Give the aborted reads time to settle.
      await new Promise((resolve) => setTimeout(resolve, 300));
    } finally {
      process.off('unhandledRejection', record);
    }
    expect(unhandled).toEqual([]);
  });
});
