import { GraphQLError } from 'graphql';

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
  last?: number | null;
  before?: string | null;
}

/**
 * A Relay connection paged forward by keyset (never OFFSET): checks the arguments (`first` at
 * most MAX_PAGE_SIZE, so no request asks for everything), decodes `after`, asks `loadPage` for
 * one page and encodes each node's cursor.
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
) {
  if (args.before != null || args.last != null) {
    throw badInput('Page forward with first and after.');
  }
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
  };
}
