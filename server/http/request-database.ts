import { is } from 'drizzle-orm';
import type { PgDialect } from 'drizzle-orm/pg-core';
import { PostgresJsDatabase, PostgresJsSession } from 'drizzle-orm/postgres-js';
import { type DocumentNode, getOperationAST } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { PendingQuery, Row, Sql } from 'postgres';
import type { Database } from '../../drizzle/client.js';
import { relations } from '../../drizzle/relations.js';

/**
 * The most statements (or transactions) one request runs at once. A request's resolvers run
 * side by side: ten aliases of a slow list took all ten connections of the pool, and every
 * other company's request waited for one. With three, the rest of the pool stays free.
 */
export const MAX_STATEMENTS_PER_REQUEST = 3;

/**
 * What one GraphQL request (or graphql-ws operation) may do with the database: a few
 * statements at a time, and, for reads, none once its client has gone.
 */
export class RequestScope {
  /** Aborted when the client goes before its answer (the response or socket closed). */
  readonly signal: AbortSignal;
  /**
   * Whether the client's leaving cancels the request's statements: true for queries and
   * subscriptions, which only read; a mutation runs to its end (bounded by the statement
   * timeout), so its writes are never left half done because a client went.
   */
  cancelOnLeave = false;
  readonly #waiting: (() => void)[] = [];
  #running = 0;

  constructor(signal: AbortSignal) {
    this.signal = signal;
  }

  /** True once the client has gone and the request only reads: nothing more is worth running. */
  get abandoned(): boolean {
    return this.cancelOnLeave && this.signal.aborted;
  }

  /**
   * Runs `work` when fewer than MAX_STATEMENTS_PER_REQUEST of this request are running;
   * `cancel` is called
   * if the client leaves a read while it runs.
   */
  async run<T>(work: () => Promise<T>, cancel: () => void): Promise<T> {
    await this.#turn();
    const onLeave = () => {
      if (this.cancelOnLeave) cancel();
    };
    this.signal.addEventListener('abort', onLeave, { once: true });
    try {
      if (this.abandoned) throw new ClientGoneError();
      return await work();
    } catch (error) {
      // A statement cancelled because the client went is logged as that, not as a failure.
      throw this.abandoned ? new ClientGoneError() : error;
    } finally {
      this.signal.removeEventListener('abort', onLeave);
      this.#running -= 1;
      this.#waiting.shift()?.();
    }
  }

  async #turn(): Promise<void> {
    if (this.#running < MAX_STATEMENTS_PER_REQUEST) {
      this.#running += 1;
      return;
    }
    // The slot is handed over by the statement that ends (see run's finally).
    await new Promise<void>((resolve) =>
      this.#waiting.push(() => {
        this.#running += 1;
        resolve();
      }),
    );
  }
}

/** A read whose client has gone: its statements are not run. */
export class ClientGoneError extends Error {
  readonly code = 'CLIENT_GONE';
  constructor() {
    super('The client closed the request.');
  }
}

/** postgres.js's `.values()` and `.then()` of a pending query, all drizzle uses of one. */
interface LazyQuery extends PromiseLike<unknown> {
  values(): LazyQuery;
}

/**
 * The database a request uses: on Postgres, the app's pool through `scope`, so the request
 * runs at most MAX_STATEMENTS_PER_REQUEST statements at once and a read's statement is
 * cancelled (postgres.js `cancel()`, a CancelRequest to the server) when its client goes.
 * Transactions count as one statement for their whole length; the statements inside one are
 * not cancelled (transactions write). On PGlite `db` itself: it runs one statement at a time
 * on this thread and cannot interrupt one.
 */
export function requestDatabase(db: Database, scope: RequestScope): Database {
  if (!is(db, PostgresJsDatabase)) return db;
  const client = (db as unknown as { $client: Sql }).$client;
  const unsafe = (text: string, params?: unknown[], options?: object): LazyQuery => {
    let values = false;
    let pending: PendingQuery<Row[]> | null = null;
    let started: Promise<unknown> | null = null;
    // postgres.js sends a query when it is awaited: so does this, once the scope lets it.
    const start = () => {
      started ??= scope.run(
        async () => {
          pending = client.unsafe(text, params as never, options);
          if (values) pending.values();
          return await pending;
        },
        () => pending?.cancel(),
      );
      return started;
    };
    const lazy: LazyQuery = {
      values() {
        values = true;
        return lazy;
      },
      // biome-ignore lint/suspicious/noThenProperty: drizzle awaits what `unsafe` returns.
      then: (onResolved, onRejected) => start().then(onResolved, onRejected),
    };
    return lazy;
  };
  const begin = (...args: unknown[]) =>
    scope.run(
      () => (client.begin as (...a: unknown[]) => Promise<unknown>)(...args),
      () => {},
    );
  const scoped = new Proxy(client, {
    get(target, property) {
      if (property === 'unsafe') return unsafe;
      if (property === 'begin') return begin;
      return Reflect.get(target, property, target);
    },
  });
  // The same dialect and session options (logger, cache, prepared statements) as `db`.
  const { session, dialect } = db as unknown as {
    session: { options: ConstructorParameters<typeof PostgresJsSession>[3] };
    dialect: PgDialect;
  };
  const scopedDb = new PostgresJsDatabase(
    dialect,
    new PostgresJsSession(scoped, dialect, relations, session.options),
    relations,
  );
  return Object.assign(scopedDb, { $client: scoped }) as unknown as Database;
}

/**
 * Marks each request's scope as cancelled on leave when its operation only reads: queries and
 * subscriptions, not mutations. Scopes are found by the context's database (`scopes`), which
 * Yoga keeps as the context factory returned it.
 */
export function useRequestScope(scopes: WeakMap<Database, RequestScope>): Plugin {
  const mark = (args: {
    document: DocumentNode;
    operationName?: string | null;
    contextValue: unknown;
  }) => {
    const db = (args.contextValue as { db?: Database }).db;
    const scope = db ? scopes.get(db) : undefined;
    const operation = getOperationAST(args.document, args.operationName ?? undefined);
    if (scope && operation) scope.cancelOnLeave = operation.operation !== 'mutation';
  };
  return {
    onExecute: ({ args }) => mark(args),
    onSubscribe: ({ args }) => mark(args),
  };
}
