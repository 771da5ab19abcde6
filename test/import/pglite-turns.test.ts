import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createDatabase, type DatabaseHandle } from '../../drizzle/client.js';

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

/** Resolves on the event loop's next turn (its check phase), where I/O callbacks have run. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

it('gives the event loop a turn between statements issued back to back', async () => {
  let statements = 0;
  let statementsBeforeTurn: number | null = null;
  const turn = nextTurn().then(() => {
    statementsBeforeTurn = statements;
  });
  for (let index = 0; index < 20; index++) {
    await handle.db.execute(sql`select ${index}::int`);
    statements++;
  }
  await turn;
  // Without the turns, all twenty ran first: PGlite settles a statement with promises alone.
  expect(statementsBeforeTurn).toBeLessThan(20);
});

it('gives the event loop a turn between the statements of a transaction', async () => {
  let statements = 0;
  let statementsBeforeTurn: number | null = null;
  await handle.db.transaction(async (tx) => {
    const turn = nextTurn().then(() => {
      statementsBeforeTurn = statements;
    });
    for (let index = 0; index < 20; index++) {
      await tx.execute(sql`select ${index}::int`);
      statements++;
    }
    await turn;
  });
  expect(statementsBeforeTurn).toBeLessThan(20);
});
