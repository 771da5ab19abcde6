import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { whileInTransaction } from '../support/database.js';
import { type ImportSteps, importSteps } from '../support/import-steps.js';

/**
 * A step held up inside a statement: only on a real server (vitest.config.ts selects this file
 * when DATABASE_URL names one, as in CI), where another connection can hold the lock it waits
 * for. The embedded database has one connection.
 */

let t: TestApp;
let steps: ImportSteps;
beforeAll(async () => {
  t = await createTestApp();
  steps = importSteps(t, await t.listen());
});
afterAll(async () => {
  await t.close();
});

const SMALL_FILE = [
  ['Email', 'userName', 'reference', 'City'],
  ['ann@example.com', 'Ann', 'R1', 'Berlin'],
];

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
      const { id: sessionId } = await steps.startImport(company, SMALL_FILE, 'held.xlsx');
      // Without beats nothing is published while the statement waits: the subscription would
      // see the read begin (INFLATING) once and then time out.
      let inflating = 0;
      const sessions = await steps.follow(
        company,
        sessionId,
        (session) => {
          if (session.progress.phase === 'INFLATING') inflating += 1;
          return inflating === 5;
        },
        10_000,
      );
      // Before the worker claims the session, it may be QUEUED.
      const read = sessions.slice(sessions.findIndex((s) => s.progress.phase === 'INFLATING'));
      expect(read).toHaveLength(5);
      for (const session of read) {
        expect({ stage: session.stage, busy: session.busy, progress: session.progress }).toEqual({
          stage: 'UPLOAD',
          busy: true,
          progress: {
            phase: 'INFLATING',
            processed: 0,
            total: expect.any(Number),
            percent: 0,
          },
        });
      }
      return sessionId;
    },
  );
  // Released, the read goes on: the file's City column is new.
  const after = await steps.follow(company, id, (session) => !session.busy);
  expect(after.at(-1)).toMatchObject({
    stage: 'CUSTOM_FIELDS',
    busy: false,
  });
});
