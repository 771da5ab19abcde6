/** Real-HTTP helpers for tests: GraphQL multipart uploads and SSE subscriptions. */
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import { readSseEvents } from './sse.js';

/** POSTs a GraphQL multipart request (operations, map, one file) like any client would. */
export async function uploadFile(
  baseUrl: string,
  token: string,
  query: string,
  variables: Record<string, unknown>,
  file: { name: string; content: Uint8Array<ArrayBuffer>; path?: string },
): Promise<{ status: number; body: any }> {
  const form = new FormData();
  const path = file.path ?? 'variables.input.file';
  form.set('operations', JSON.stringify({ query, variables }));
  form.set('map', JSON.stringify({ 0: [path] }));
  form.set('0', new Blob([file.content]), file.name);
  const response = await fetch(`${baseUrl}/graphql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'x-graphql-yoga-csrf': '1' },
    body: form,
  });
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: response.status, body };
}

export const START_IMPORT = `mutation($input: StartImportInput!) {
  startImport(input: $input) {
    __typename
    ... on ImportSession { id stage busy fileName fileSize comment }
    ... on Error { code message }
  }
}`;

/** One event of a subscription: what the operation's result would be, or its errors. */
export interface SubscriptionEvent<Result = any> {
  data?: Result;
  errors?: { message: string; extensions?: Record<string, unknown> }[];
}

/**
 * Subscribes over Server-Sent Events (Yoga's default transport) and collects every event
 * until the stream ends or `until` returns true. `query` is one of the client's typed
 * documents, or a text for what the client does not send.
 */
export function subscribeSse<Result, Variables>(
  baseUrl: string,
  token: string,
  query: TypedDocumentNode<Result, Variables>,
  variables: Variables,
  until: (event: SubscriptionEvent<Result>) => boolean,
  timeoutMs?: number,
): Promise<SubscriptionEvent<Result>[]>;
export function subscribeSse(
  baseUrl: string,
  token: string,
  query: string,
  variables: Record<string, unknown>,
  until: (event: any) => boolean,
  timeoutMs?: number,
): Promise<any[]>;
export async function subscribeSse(
  baseUrl: string,
  token: string,
  query: string | TypedDocumentNode<unknown, unknown>,
  variables: unknown,
  until: (event: SubscriptionEvent) => boolean,
  timeoutMs = 30_000,
): Promise<SubscriptionEvent[]> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  const events: SubscriptionEvent[] = [];
  try {
    const response = await fetch(`${baseUrl}/graphql`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'text/event-stream',
      },
      body: JSON.stringify({
        query: typeof query === 'string' ? query : print(query),
        variables,
      }),
      signal: abort.signal,
    });
    for await (const event of readSseEvents(response.body)) {
      events.push(event);
      if (until(event)) return events;
    }
    return events;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}
