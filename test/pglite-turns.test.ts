import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createDatabase, type DatabaseHandle } from '../drizzle/client.js';

/**
 * The embedded database runs each statement on the server's own thread. A background step's
 * statements, issued one after the other, must still leave the event loop a turn between
 * them: otherwise timers, sockets and every other request wait for the whole step (a
 * subscription's events of a 100k validation all arrived at its end, 2.4 s late).
 */

let handle: DatabaseHandle;

beforeAll(async () => {
  handle = await createDatabase({ memory: true });
});

afterAll(async () => {
  await handle.close();
});

it('lets a timer run between statements issued back to back', async () => {
  let statements = 0;
  let statementsBeforeTimer: number | null = null;
  const timer = sleep(0).then(() => {
    statementsBeforeTimer = statements;
  });
  for (let index = 0; index < 20; index++) {
    await handle.db.execute(sql`select ${index}::int`);
    statements++;
  }
  await timer;
  expect(statementsBeforeTimer).not.toBeNull();
  expect(statementsBeforeTimer).toBeLessThan(20);
});

it('lets a timer run between the statements of a transaction', async () => {
  let statements = 0;
  let statementsBeforeTimer: number | null = null;
  await handle.db.transaction(async (tx) => {
    const timer = sleep(0).then(() => {
      statementsBeforeTimer = statements;
    });
    for (let index = 0; index < 20; index++) {
      await tx.execute(sql`select ${index}::int`);
      statements++;
    }
    await timer;
  });
  expect(statementsBeforeTimer).toBeLessThan(20);
});
