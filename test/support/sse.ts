/**
 * Reads a text/event-stream body (a GraphQL subscription over Server-Sent Events, Yoga's default
 * transport) into its events' data, parsed as JSON, each as soon as its block has arrived.
 * Blocks without data (Yoga's keep-alive pings, the closing `event: complete`) are passed over.
 * Shared by the tests and the bench (which stamps each event as it is handed out).
 */
export async function* readSseEvents(
  body: ReadableStream<Uint8Array> | null,
): AsyncGenerator<any, void, undefined> {
  if (!body) throw new Error('the response has no event stream');
  const decoder = new TextDecoder();
  const reader = body.getReader();
  let buffer = '';
  try {
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
      buffer += decoder.decode(chunk.value, { stream: true });
      for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
        const data = buffer
          .slice(0, end)
          .split('\n')
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).trim())
          .join('\n');
        buffer = buffer.slice(end + 2);
        if (data) yield JSON.parse(data);
      }
    }
  } finally {
    // A caller that stops early (breaks out of its for await) closes the stream: the server
    // then ends the subscription.
    reader.cancel().catch(() => {});
  }
}
