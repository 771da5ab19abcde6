import type { ObjectRef } from '@pothos/core';
import { GraphQLError } from 'graphql';
import { builder } from './builder.js';

export const MAX_PAGE_SIZE = 100;
const DEFAULT_PAGE_SIZE = 20;

function badInput(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT' } });
}

/** Opaque cursors: base64url JSON, checked on the way back in. */
function encodeCursor(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function decodeCursor<Cursor>(
  cursor: string,
  isValid: (value: unknown) => value is Cursor,
): Cursor {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (isValid(value)) return value;
  } catch {
    // Falls through to the same error as a well-formed but wrong cursor.
  }
  throw badInput('The cursor is not valid for this list.');
}

export interface ConnectionArgs {
  first?: number | null;
  after?: string | null;
}

/**
 * The arguments of every list: forward paging only (`first`, `after`), as keyset paging
 * allows; Relay's `last` and `before` are not declared, since no list could honour them.
 */
export function pageArgs<
  Arg extends {
    int: (options: { description: string }) => unknown;
    string: (options: { description: string }) => unknown;
  },
>(arg: Arg) {
  return {
    first: arg.int({
      description: `How many items to return (default ${DEFAULT_PAGE_SIZE}, at most ${MAX_PAGE_SIZE}).`,
    }) as ReturnType<Arg['int']>,
    after: arg.string({
      description: 'Return the items after this cursor (an `endCursor` or `cursor`).',
    }) as ReturnType<Arg['string']>,
  };
}

/** What a list's resolver returns: a page, and how to count every item the list selects. */
interface CountedPage {
  totalCount: () => Promise<number>;
}

/**
 * A Relay connection type with `totalCount`: the number of items the list selects with its
 * filter applied (not only this page), so a UI can say "1–50 of 99,999". It is counted only
 * when asked for.
 */
export function countedConnection<Shape>(
  // biome-ignore lint/suspicious/noExplicitAny: any object type of the schema
  type: ObjectRef<any, Shape>,
  names: { name: string; description: string; edgeName: string; edgeDescription: string },
) {
  return builder.connectionObject(
    {
      type,
      name: names.name,
      description: names.description,
      fields: (t) => ({
        totalCount: t.int({
          description: 'How many items the list has in all, with its filter applied.',
          resolve: (connection) => (connection as unknown as CountedPage).totalCount(),
        }),
      }),
    },
    { name: names.edgeName, description: names.edgeDescription },
  );
}

/**
 * A Relay connection type without `totalCount`, for lists that have no cheap count; its field
 * takes pageArgs, so it declares no paging argument it cannot honour.
 */
export function pagedConnection<Shape>(
  // biome-ignore lint/suspicious/noExplicitAny: any object type of the schema
  type: ObjectRef<any, Shape>,
  names: { name: string; description: string; edgeName: string; edgeDescription: string },
) {
  return builder.connectionObject(
    { type, name: names.name, description: names.description },
    { name: names.edgeName, description: names.edgeDescription },
  );
}

/**
 * A Relay connection paged forward by keyset (never OFFSET): checks the arguments (`first` at
 * most MAX_PAGE_SIZE, so no request asks for everything), decodes `after`, asks `loadPage` for
 * one page and encodes each node's cursor. `count`, for a countedConnection, runs only if
 * `totalCount` is selected.
 */
export async function keysetConnection<Node, Cursor>(
  args: ConnectionArgs,
  cursor: {
    isValid: (value: unknown) => value is Cursor;
    of: (node: Node) => Cursor;
  },
  loadPage: (page: {
    limit: number;
    after: Cursor | null;
  }) => Promise<{ nodes: Node[]; hasNextPage: boolean }>,
  count?: () => Promise<number>,
) {
  const limit = args.first ?? DEFAULT_PAGE_SIZE;
  if (limit < 0 || limit > MAX_PAGE_SIZE) {
    throw badInput(`first must be between 0 and ${MAX_PAGE_SIZE}.`);
  }
  const after = args.after ? decodeCursor(args.after, cursor.isValid) : null;
  const page = await loadPage({ limit, after });
  const edges = page.nodes.map((node) => ({ node, cursor: encodeCursor(cursor.of(node)) }));
  return {
    edges,
    pageInfo: {
      hasNextPage: page.hasNextPage,
      hasPreviousPage: after !== null,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
    ...(count ? { totalCount: count } : {}),
  };
}
