import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import { useDisableIntrospection } from '@graphql-yoga/plugin-disable-introspection';
import type { Plugin } from 'graphql-yoga';

/**
 * What one GraphQL request may ask for. Every operation the client package ships stays well
 * inside these (test/http/graphql-limits.test.ts checks them all); a hand-written query that goes
 * past one gets a validation error naming the limit. Lists are paged: `first` is at most
 * MAX_PAGE_SIZE (schema/pagination.ts), so no query asks for everything.
 */
export const GRAPHQL_LIMITS = {
  /**
   * Nesting of fields. The schema has no cycles, so its deepest path (10: a changed custom
   * field of a row of a listed import) bounds every query; 9 still allows that path from
   * `importSession(id:)` and guards against a cycle a future field might add.
   */
  maxDepth: 9,
  /** Aliased fields per operation. */
  maxAliases: 20,
  /** Lexical tokens per document; GraphiQL's introspection query needs about 400. */
  maxTokens: 3000,
  /** Directives per operation. */
  maxDirectives: 30,
  /** graphql-armor's cost: objects 2, scalars 1, times 1.5 per level of depth. */
  maxCost: 10_000,
} as const;

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
      maxDepth: { n: GRAPHQL_LIMITS.maxDepth },
      maxAliases: { n: GRAPHQL_LIMITS.maxAliases },
      maxTokens: { n: GRAPHQL_LIMITS.maxTokens },
      maxDirectives: { n: GRAPHQL_LIMITS.maxDirectives },
      costLimit: { maxCost: GRAPHQL_LIMITS.maxCost },
      // "Did you mean …?" names fields: keep it for admins unless the schema is hidden.
      blockFieldSuggestion: { enabled: !options.introspection },
    }) as Plugin,
  ];
  if (!options.introspection) plugins.push(useDisableIntrospection());
  return plugins;
}
