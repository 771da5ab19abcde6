import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { costLimitRule } from '@escape.tech/graphql-armor-cost-limit';
import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import { useDisableIntrospection } from '@graphql-yoga/plugin-disable-introspection';
import {
  type DocumentNode,
  type ExecutionResult,
  type GraphQLError,
  type GraphQLSchema,
  Kind,
  type ValidationContext,
  validate,
  visit,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';

/**
 * What one GraphQL request may ask for. Every operation the client package ships passes these
 * at the largest page size, on a session at REVIEW (test/client/client-operations.test.ts
 * runs them all); a hand-written query that goes past one gets an error naming the limit.
 * Lists are paged: `first` is at most MAX_PAGE_SIZE (schema/pagination.ts), so no query asks
 * for everything.
 */
export const GRAPHQL_LIMITS = {
  /**
   * Nesting of fields, counted with fragments flattened (a spread is no level of its own, so
   * a client's fragments cost nothing). The schema has no cycles, so its deepest path (10: a
   * changed custom field of a row of a listed import) bounds every query; 9 still allows that
   * path from `importSession(id:)` and guards against a cycle a future field might add.
   */
  maxDepth: 9,
  /** Aliased fields per operation. */
  maxAliases: 20,
  /** Lexical tokens per document; GraphiQL's introspection query needs about 400. */
  maxTokens: 3000,
  /** Directives per operation. */
  maxDirectives: 30,
  /**
   * graphql-armor's cost, fragments flattened: objects 2, scalars 1, times 1.5 per level of
   * depth, times `first` for a paged list (its value from the variables too). The client's
   * largest operation, the review page (ImportRows with every field of a row), costs about
   * 29,000 at 100 rows; a list of sessions with a page of rows each costs millions.
   */
  maxCost: 50_000,
} as const;

const COST_OPTIONS = {
  maxCost: GRAPHQL_LIMITS.maxCost,
  flattenFragments: true,
  // Reported as a validation error of the operation rather than thrown out of validate().
  propagateOnRejection: false,
  onReject: [
    (context: ValidationContext | null, error: GraphQLError) => context?.reportError(error),
  ],
};

/**
 * The document with every `first: $variable` replaced by the variable's value: graphql-armor
 * multiplies a list's cost by `first` only when it is written in the document, so a variable
 * (as every client passes it) would count as one item.
 */
function withPageSizesInlined(
  document: DocumentNode,
  variables: Record<string, unknown> | null | undefined,
): DocumentNode {
  return visit(document, {
    Argument(node) {
      if (node.name.value !== 'first' || node.value.kind !== Kind.VARIABLE) return undefined;
      const value = variables?.[node.value.name.value];
      if (typeof value !== 'number' || !Number.isInteger(value)) return undefined;
      return { ...node, value: { kind: Kind.INT, value: String(value) } };
    },
  });
}

/** The cost limit's refusal of the operation with its variables, or null when it is within. */
export function costLimitErrors(
  schema: GraphQLSchema,
  document: DocumentNode,
  variables: Record<string, unknown> | null | undefined,
): readonly GraphQLError[] {
  return validate(schema, withPageSizesInlined(document, variables), [costLimitRule(COST_OPTIONS)]);
}

/** The names of the variables a document passes as `first`: its cost depends on their values. */
function pageSizeVariables(document: DocumentNode): string[] {
  const names = new Set<string>();
  visit(document, {
    Argument(node) {
      if (node.name.value === 'first' && node.value.kind === Kind.VARIABLE) {
        names.add(node.value.name.value);
      }
    },
  });
  return [...names];
}

/** Page sizes remembered as within the limit, per document; past this, each is checked anew. */
const KNOWN_PAGE_SIZES_PER_DOCUMENT = 32;

/**
 * Checks the cost once the variables are known: before a query, mutation or subscription runs.
 * A document's cost depends only on the document and its page sizes, so a document run again
 * with page sizes already found within the limit (a client's own pages) is not measured again.
 */
function useCostLimit(): Plugin {
  const within = new WeakMap<DocumentNode, { variables: string[]; pageSizes: Set<string> }>();
  const check = (args: {
    schema: GraphQLSchema;
    document: DocumentNode;
    variableValues?: Record<string, unknown> | null;
  }): ExecutionResult | null => {
    let known = within.get(args.document);
    if (!known) {
      known = { variables: pageSizeVariables(args.document), pageSizes: new Set() };
      within.set(args.document, known);
    }
    const pageSizes = JSON.stringify(known.variables.map((name) => args.variableValues?.[name]));
    if (known.pageSizes.has(pageSizes)) return null;
    const errors = costLimitErrors(args.schema, args.document, args.variableValues);
    if (errors.length > 0) return { errors: [...errors] };
    if (known.pageSizes.size < KNOWN_PAGE_SIZES_PER_DOCUMENT) known.pageSizes.add(pageSizes);
    return null;
  };
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const refused = check(args);
      if (refused) setResultAndStopExecution(refused);
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      const refused = check(args);
      if (refused) setResultAndStopExecution(refused);
    },
  };
}

/**
 * A preflight-forcing header: browsers cannot send it from a plain form or link, so a request
 * carrying it was allowed by CORS. Required on GET and on form-like POSTs (multipart,
 * url-encoded, text/plain); JSON POSTs force a preflight by their content type already.
 */
export const CSRF_HEADER = 'x-graphql-yoga-csrf';

/** Yoga plugins for CSRF prevention, query limits and (optionally) no introspection. */
export function graphqlProtectionPlugins(options: { introspection: boolean }): Plugin[] {
  const plugins: Plugin[] = [
    useCSRFPrevention({ requestHeaders: [CSRF_HEADER] }),
    EnvelopArmorPlugin({
      maxDepth: { n: GRAPHQL_LIMITS.maxDepth, flattenFragments: true },
      maxAliases: { n: GRAPHQL_LIMITS.maxAliases },
      maxTokens: { n: GRAPHQL_LIMITS.maxTokens },
      maxDirectives: { n: GRAPHQL_LIMITS.maxDirectives },
      // Checked with the variables instead, by useCostLimit.
      costLimit: { enabled: false },
      // "Did you mean …?" names fields: keep it for admins unless the schema is hidden.
      blockFieldSuggestion: { enabled: !options.introspection },
    }) as Plugin,
    useCostLimit(),
  ];
  if (!options.introspection) plugins.push(useDisableIntrospection());
  return plugins;
}
