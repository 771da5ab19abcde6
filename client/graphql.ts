import { type AnyVariables, gql, type TypedDocumentNode } from '@urql/core';

/**
 * A document of your own, typed by the result and variables you give: from your own codegen
 * against the schema.graphql this package ships (`@muster/client/schema.graphql`), or written
 * by hand. Include the fragments it spreads in the same source.
 *
 * @example
 * const SessionStage = graphql<{ importSession: { stage: ImportStage } | null }, { id: string }>(`
 *   query SessionStage($id: ID!) { importSession(id: $id) { stage } }
 * `);
 * const result = await client.query(SessionStage, { id }).toPromise();
 */
export function graphql<
  Result = { [field: string]: unknown },
  Variables extends AnyVariables = AnyVariables,
>(source: string): TypedDocumentNode<Result, Variables> {
  return gql<Result, Variables>(source);
}
