/** Real-HTTP helpers for tests: GraphQL multipart uploads and SSE subscriptions. */

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

/**
 * Subscribes over Server-Sent Events (Yoga's default transport) and collects every event's
 * data until the stream ends or `until` returns true.
 */
export async function subscribeSse(
  baseUrl: string,
  token: string,
  query: string,
  variables: Record<string, unknown>,
  until: (data: any) => boolean,
  timeoutMs = 30_000,
): Promise<any[]> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  const events: any[] = [];
  try {
    const response = await fetch(`${baseUrl}/graphql`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'text/event-stream',
      },
      body: JSON.stringify({ query, variables }),
      signal: abort.signal,
    });
    if (!response.body) throw new Error(`no stream: ${response.status}`);
    const decoder = new TextDecoder();
    let buffer = '';
    const reader = response.body.getReader();
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
      buffer += decoder.decode(chunk.value, { stream: true });
      let end = buffer.indexOf('\n\n');
      while (end !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf('\n\n');
        const data = block
          .split('\n')
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).trim())
          .join('\n');
        if (!data) continue;
        const payload = JSON.parse(data);
        events.push(payload);
        if (until(payload)) return events;
      }
    }
    return events;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}
