import ExcelJS from 'exceljs';
import { print } from 'graphql';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  CancelImportDocument,
  ImportSessionUpdatedDocument,
  ViewerDocument,
} from '../../client/index.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { type ImportSessionView, type ImportSteps, importSteps } from '../support/import-steps.js';

let t: TestApp;
let baseUrl: string;
let steps: ImportSteps;
beforeAll(async () => {
  t = await createTestApp();
  baseUrl = await t.listen();
  steps = importSteps(t, baseUrl);
});
afterAll(async () => {
  await t.close();
});

/**
 * A workbook big enough that reading it takes several progress intervals. With its new
 * columns (Department, City) the read stops at CUSTOM_FIELDS; without, it hands straight on
 * to validation, as a re-import does.
 */
async function largeWorkbook(
  rows: number,
  { newColumns = true } = {},
): Promise<Uint8Array<ArrayBuffer>> {
  const workbook = new ExcelJS.Workbook();
  const sheet = workbook.addWorksheet('Users');
  const extra = (cells: string[]) => (newColumns ? cells : []);
  sheet.addRow(['Email', 'userName', 'reference', ...extra(['Department', 'City'])]);
  for (let i = 0; i < rows; i++) {
    sheet.addRow([
      `user${i}@example.com`,
      `User ${i}`,
      `R${i}`,
      ...extra([`Dept ${i % 17}`, `City ${i % 101}`]),
    ]);
  }
  return new Uint8Array(await workbook.xlsx.writeBuffer());
}

function wsClient(token: string | null) {
  return createClient({
    url: `${baseUrl.replace('http', 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: token ? { Authorization: `Bearer ${token}` } : {},
    retryAttempts: 0,
    lazy: true,
  });
}

describe('importSessionUpdated', () => {
  it('streams progress while the file is inflated and read, over SSE and over graphql-ws', async () => {
    const company = await t.createTestCompany();
    const { id } = await steps.startImport(company, await largeWorkbook(30_000), 'big.xlsx');
    const client = wsClient(company.token);
    const overWebSocket: ImportSessionView[] = [];
    const wsDone = new Promise<void>((resolve, reject) => {
      client.subscribe<{ importSessionUpdated: ImportSessionView }>(
        { query: print(ImportSessionUpdatedDocument), variables: { id } },
        {
          next: (event) => {
            if (event.data) overWebSocket.push(event.data.importSessionUpdated);
          },
          error: reject,
          complete: resolve,
        },
      );
    });
    const sseSessions = await steps.follow(company, id, (session) => !session.busy);
    expect(sseSessions.at(-1)).toMatchObject({
      stage: 'CUSTOM_FIELDS',
      busy: false,
      rowCount: 30_000,
    });
    const phases = new Set(sseSessions.map((session) => session.progress.phase));
    expect(phases.has('READING')).toBe(true);
    const reading = sseSessions.filter((session) => session.progress.phase === 'READING');
    expect(reading.some((session) => session.progress.processed > 0)).toBe(true);

    // graphql-ws sees the same states; the stream stays open until the import ends.
    await t.send(company.token, CancelImportDocument, { input: { sessionId: id } });
    await wsDone;
    await client.dispose();
    expect(overWebSocket.some((session) => session.stage === 'CUSTOM_FIELDS')).toBe(true);
    expect(overWebSocket.at(-1)).toMatchObject({ stage: 'CANCELLED', busy: false });
  });

  it("streams validation's progress while it runs, on the embedded database too", async () => {
    const company = await t.createTestCompany();
    const { id } = await steps.startImport(
      company,
      await largeWorkbook(30_000, { newColumns: false }),
      'valid.xlsx',
    );
    const sessions = await steps.follow(
      company,
      id,
      (session) => !session.busy && session.stage !== 'UPLOAD',
    );
    expect(sessions.at(-1)).toMatchObject({ stage: 'REVIEW', busy: false, rowCount: 30_000 });
    // On PGlite the statements run on the server's thread: without a turn for the event loop
    // between them, every event of the step arrived at its end, showing it ended.
    const validating = sessions.filter(
      (session) => session.busy && session.progress?.phase === 'VALIDATING',
    );
    expect(validating.length).toBeGreaterThan(0);
  });

  it("streams the commit's progress while it runs, on the embedded database too", async () => {
    const company = await t.createTestCompany();
    const { id } = await steps.startImport(
      company,
      await largeWorkbook(30_000, { newColumns: false }),
      'commit.xlsx',
    );
    expect(await steps.waitUntilIdle(company, id)).toMatchObject({ stage: 'REVIEW' });
    await steps.continueThrough(company, id, ['REVIEW']);
    // Continued once the follower has the session, so it hears the whole commit.
    let continued: Promise<unknown> | null = null;
    const sessions = await steps.follow(company, id, (session) => {
      continued ??= steps.continueFrom(company, id, 'GROUP_ASSIGNMENT');
      return session.stage === 'COMPLETED';
    });
    expect(await continued).toMatchObject({ __typename: 'ImportSession' });
    expect(sessions.at(-1)).toMatchObject({ stage: 'COMPLETED', busy: false });
    // On PGlite the commit's transaction holds the one connection: its progress reaches the
    // follower without the session being read again (before, nothing came until it ended).
    const midway = sessions.filter(
      (session) =>
        session.busy &&
        session.progress?.phase === 'COMMITTING' &&
        session.progress.processed > 0 &&
        session.progress.processed < 30_000,
    );
    expect(midway.length, JSON.stringify(sessions.map((s) => s.progress))).toBeGreaterThan(0);
  });

  it('closes a graphql-ws connection without a valid token with 4403 Forbidden', async () => {
    for (const token of [null, 'mst_wrong']) {
      const client = wsClient(token);
      const closed = new Promise<number>((resolve) =>
        client.on('closed', (event) => resolve((event as { code: number }).code)),
      );
      const result = new Promise<unknown>((resolve) => {
        client.subscribe(
          { query: print(ViewerDocument) },
          { next: () => {}, error: resolve, complete: () => resolve(null) },
        );
      });
      expect(await closed).toBe(4403);
      await result;
      await client.dispose();
    }
  });

  it("refuses to follow another company's session", async () => {
    const company = await t.createTestCompany();
    const other = await t.createTestCompany();
    const { id } = await steps.startImport(company, await largeWorkbook(2), 'small.xlsx');
    const events = await steps.followEvents(other.token, id, () => true);
    expect(events[0]?.errors?.[0]?.message).toContain('No import session');
  });
});
