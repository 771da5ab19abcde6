import type { ExecutionArgs, ExecutionResult } from 'graphql';
import { getOperationAST } from 'graphql';
import { type CompiledQuery, compileQuery, isCompiledQuery } from 'graphql-jit';
import type { Plugin } from 'graphql-yoga';

/**
 * Queries run as functions compiled for their document by graphql-jit instead of through
 * graphql-js's generic executor: a page of the review (thousands of fields) spends most of
 * its time resolving fields one by one, and a compiled query does the same work in about
 * half the time (docs/performance.md). Mutations and subscriptions stay on graphql-js: they
 * select little, and most of their documents run once.
 *
 * A document is compiled on its first run (a few milliseconds; the limits have already
 * refused what is too deep or too costly) and kept as long as Yoga keeps the parsed document
 * in its cache, so a document sent again, as a client sends its own, is compiled once. One
 * document may hold several operations (GraphiQL's editor does): each is compiled by its name.
 */
export function useCompiledQueries(): Plugin {
  const compiled = new WeakMap<ExecutionArgs['document'], Map<string, CompiledQuery>>();

  const compiledFor = (args: ExecutionArgs): CompiledQuery | null => {
    const name = args.operationName ?? '';
    let byName = compiled.get(args.document);
    const known = byName?.get(name);
    if (known) return known;
    const result = compileQuery(args.schema, args.document, args.operationName ?? undefined);
    // What cannot be compiled (none of today's documents) runs on graphql-js, which reports it.
    if (!isCompiledQuery(result)) return null;
    if (!byName) {
      byName = new Map();
      compiled.set(args.document, byName);
    }
    byName.set(name, result);
    return result;
  };

  return {
    onExecute({ args, setExecuteFn }) {
      const operation = getOperationAST(args.document, args.operationName ?? undefined);
      if (operation?.operation !== 'query') return;
      const query = compiledFor(args);
      if (!query) return;
      setExecuteFn(
        (executed) =>
          query.query(executed.rootValue, executed.contextValue, executed.variableValues ?? {}) as
            | ExecutionResult
            | Promise<ExecutionResult>,
      );
    },
  };
}
