import { sql } from 'drizzle-orm';
import ExcelJS from 'exceljs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { whileInTransaction } from '../support/database.js';
import { START_IMPORT, subscribeSse, uploadFile } from '../support/http.js';

/**
 * A step held up inside a statement: only on a real server (vitest.config.ts selects this file
 * when DATABASE_URL names one, as in CI), where another connection can hold the lock it waits
 * for. The embedded database has one connection.
 */

let t: TestApp;
let baseUrl: string;
beforeAll(async () => {
  t = await createTestApp();
  baseUrl = await t.listen();
});
afterAll(async () => {
  await t.close();
});

const FOLLOW = `subscription($id: ID!) { importSessionUpdated(id: $id) {
  stage busy progress { phase processed total }
} }`;

async function smallWorkbook(): Promise<Uint8Array<ArrayBuffer>> {
  const workbook = new ExcelJS.Workbook();
  const sheet = workbook.addWorksheet('Users');
  sheet.addRow(['Email', 'userName', 'reference', 'City']);
  sheet.addRow(['ann@example.com', 'Ann', 'R1', 'Berlin']);
  return new Uint8Array(await workbook.xlsx.writeBuffer());
}

it('publishes the session again while a step waits inside a statement, with its progress as it stands', async () => {
  const company = await t.createTestCompany();
  // Hold the staged rows' table: the read's first statement (dropping rows of an earlier
  // attempt) waits until the lock is released.
  const id = await whileInTransaction(
    t.db,
    async (tx) => {
      await tx.execute(sql`lock table import_rows in share mode`);
    },
    async () => {
      const { body } = await uploadFile(
        baseUrl,
        company.token,
        START_IMPORT,
        { input: { file: null } },
        { name: 'held.xlsx', content: await smallWorkbook() },
      );
      const sessionId: string = body.data.startImport.id;
      // Without beats nothing is published while the statement waits: the subscription would
      // see the read begin (INFLATING) once and then time out.
      let inflating = 0;
      const held = await subscribeSse(
        baseUrl,
        company.token,
        FOLLOW,
        { id: sessionId },
        (event) => {
          if (event.data?.importSessionUpdated?.progress?.phase === 'INFLATING') inflating += 1;
          return inflating === 5;
        },
        10_000,
      );
      const sessions = held.map((event) => event.data.importSessionUpdated);
      // Before the worker claims the session, it may be QUEUED.
      const read = sessions.slice(sessions.findIndex((s) => s.progress.phase === 'INFLATING'));
      expect(read).toHaveLength(5);
      for (const session of read) {
        expect(session).toEqual({
          stage: 'UPLOAD',
          busy: true,
          progress: { phase: 'INFLATING', processed: 0, total: expect.any(Number) },
        });
      }
      return sessionId;
    },
  );
  // Released, the read goes on: the file's City column is new.
  const after = await subscribeSse(
    baseUrl,
    company.token,
    FOLLOW,
    { id },
    (event) => event.data?.importSessionUpdated?.busy === false,
  );
  expect(after.at(-1).data.importSessionUpdated).toMatchObject({
    stage: 'CUSTOM_FIELDS',
    busy: false,
  });
});
