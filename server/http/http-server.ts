import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/**
 * How long the server keeps an idle keep-alive connection open, and how long its responses
 * tell clients they may reuse one (`Keep-Alive: timeout=…`). Clients that follow the header
 * (Node's fetch and undici, so the CLI and the client package) close an idle connection
 * shortly before it says (undici keeps a margin); the server waits five seconds longer still.
 *
 * Node's default advertises the time after which it destroys the socket, less one second.
 * When the server's event loop was busy for longer than that margin (on the embedded database
 * a statement runs on it: a validation's duplicate check of 100k rows, say), a request a
 * client sent in time was still unread when the loop came back, and the server's idle timer,
 * which runs first, reset the connection under it: the client got ECONNRESET (one or two of
 * the benchmark's probes failed in every 100k import on PGlite; none with this). Idle
 * connections are cheap; 65 s also outlasts the 60 s idle timeout of common proxies.
 */
export const KEEP_ALIVE: KeepAlive = { serverTimeoutMs: 65_000, advertisedSeconds: 60 };

export interface KeepAlive {
  /** Idle time after which the server destroys a connection (`server.keepAliveTimeout`). */
  serverTimeoutMs: number;
  /** What responses advertise; well below serverTimeoutMs. */
  advertisedSeconds: number;
}

/** An HTTP server for `listener` that closes idle connections only after its clients do. */
export function createHttpServer(
  listener: (request: IncomingMessage, response: ServerResponse) => void,
  keepAlive: KeepAlive = KEEP_ALIVE,
): Server {
  const server = createServer((request, response) => {
    // Set by hand, the header replaces the one Node would derive from keepAliveTimeout.
    response.setHeader('Keep-Alive', `timeout=${keepAlive.advertisedSeconds}`);
    listener(request, response);
  });
  server.keepAliveTimeout = keepAlive.serverTimeoutMs;
  return server;
}
