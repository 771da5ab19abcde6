import { mkdirSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join, resolve } from 'node:path';
import { GraphQLError } from 'graphql';
import { maskError } from 'graphql-yoga';
import { type Auth, bearerToken } from '../infrastructure/auth.js';
import type { TokenAuthenticator } from '../infrastructure/token-cache.js';
import { recordErrorCode } from './observability.js';

/**
 * Checks made on a request's headers before its body is read, and limits applied while it is
 * read: a request without a valid token, or with too many bytes, costs the server no more
 * than its headers.
 */

/** The caller a request was authenticated as before its body was read (see requestAuth). */
const authenticatedAs = new WeakMap<IncomingMessage, Auth>();

/** The token of `Authorization: Bearer …`, looked up; null when missing, unknown or revoked. */
export async function authenticateHeaders(
  request: IncomingMessage,
  tokens: TokenAuthenticator,
): Promise<Auth | null> {
  const token = bearerToken(request.headers.authorization);
  const auth = token ? await tokens.authenticate(token) : null;
  if (auth) authenticatedAs.set(request, auth);
  return auth;
}

/** What authenticateHeaders found for this request, so the GraphQL context need not ask again. */
export function requestAuth(request: IncomingMessage | undefined): Auth | undefined {
  return request ? authenticatedAs.get(request) : undefined;
}

/**
 * How long a refused request's unsent body is drained before its connection is cut. Closing a
 * socket with bytes unread makes the kernel reset it, and a client still sending then loses
 * the answer (it saw a reset, not the 401 or 413); so the answer goes first, the rest of the
 * body is read and dropped for at most this long, and the connection closes.
 */
const LINGER_MS = 5_000;

/**
 * Answers with a GraphQL-shaped error and closes the connection: whatever of the body the
 * client still sends is discarded (for at most LINGER_MS), never buffered or written anywhere.
 */
export function refuse(
  response: ServerResponse,
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
): void {
  recordErrorCode(response, code);
  if (response.headersSent) {
    response.destroy();
    return;
  }
  const request = response.req;
  const unread = !request.complete;
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    // With a body still coming, the connection closes once it is drained (or cut below).
    ...(unread ? {} : { connection: 'close' }),
    ...headers,
  });
  response.end(JSON.stringify({ errors: [{ message, extensions: { code } }] }));
  if (unread) {
    const cut = setTimeout(() => request.socket.destroy(), LINGER_MS);
    cut.unref();
    const done = () => {
      clearTimeout(cut);
      request.socket.end();
    };
    request.once('end', done);
    request.once('close', () => clearTimeout(cut));
    request.resume();
  }
}

export const UNAUTHENTICATED = {
  status: 401,
  code: 'UNAUTHENTICATED',
  headers: { 'www-authenticate': 'Bearer' },
};

export class BodyTooLargeError extends Error {
  constructor(readonly maxBytes: number) {
    super(`The request body is larger than ${maxBytes} bytes.`);
  }
}

/**
 * Reads a whole body of at most `maxBytes`: a declared Content-Length over it is refused before
 * reading, and a body that grows past it (chunked) is abandoned at the byte that does.
 */
export function readBody(request: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolveBody, rejectBody) => {
    const declared = Number(request.headers['content-length'] ?? 0);
    if (declared > maxBytes) {
      rejectBody(new BodyTooLargeError(maxBytes));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        cleanup();
        chunks.length = 0;
        rejectBody(new BodyTooLargeError(maxBytes));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolveBody(Buffer.concat(chunks, size));
    };
    const onClose = () => {
      cleanup();
      rejectBody(new Error('the client closed the request'));
    };
    const cleanup = () => {
      request.off('data', onData);
      request.off('end', onEnd);
      request.off('error', onClose);
      request.off('close', onClose);
    };
    request.on('data', onData);
    request.once('end', onEnd);
    request.once('error', onClose);
    request.once('close', onClose);
  });
}

/** Longest message an error answer carries: an echo of the request stops here. */
const MAX_ERROR_MESSAGE_LENGTH = 500;

/**
 * Yoga's masking (unexpected errors become "Unexpected error.", details only in development),
 * and then no message longer than MAX_ERROR_MESSAGE_LENGTH: a message quoting a variable or a
 * body (graphql-js quotes an invalid value whole) cannot send the request back.
 */
export function boundedMaskError(error: unknown, message: string, isDev?: boolean) {
  const masked = maskError(error, message, isDev);
  if (!(masked instanceof GraphQLError) || masked.message.length <= MAX_ERROR_MESSAGE_LENGTH) {
    return masked;
  }
  return new GraphQLError(`${masked.message.slice(0, MAX_ERROR_MESSAGE_LENGTH)}…`, {
    nodes: masked.nodes,
    path: masked.path,
    extensions: masked.extensions,
  });
}

/**
 * The origin of absolute links (downloads) when PUBLIC_URL is unset. The Host header is used
 * only when it names this server: one of the machine's own addresses or `localhost`, at the
 * port the request came in on. Anything else (`Host: evil.example`) gets the address the
 * connection was made to, so a forged header cannot send links elsewhere.
 */
export function originOfRequest(host: string | undefined, socket: Socket | undefined): string {
  const port = socket?.localPort;
  if (host && port !== undefined) {
    const parsed = parseHost(host);
    if (parsed && parsed.port === port && localNames().has(parsed.name)) {
      return `http://${host.toLowerCase()}`;
    }
  }
  if (port === undefined) return 'http://localhost';
  const address = (socket?.localAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
  return `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
}

function parseHost(host: string): { name: string; port: number } | null {
  const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(host);
  if (!match?.[1] || !match[2]) return null;
  return { name: match[1].toLowerCase().replace(/^\[|\]$/g, ''), port: Number(match[2]) };
}

/** How long the machine's addresses are kept: every request asks, and they rarely change. */
const LOCAL_NAMES_TTL_MS = 10_000;
let localNamesCache: { names: Set<string>; until: number } | null = null;

function localNames(): Set<string> {
  const now = Date.now();
  if (localNamesCache && localNamesCache.until > now) return localNamesCache.names;
  const names = new Set(['localhost']);
  for (const addresses of Object.values(networkInterfaces())) {
    for (const entry of addresses ?? []) {
      names.add(entry.address.toLowerCase().replace(/^::ffff:/, ''));
    }
  }
  localNamesCache = { names, until: now + LOCAL_NAMES_TTL_MS };
  return names;
}

/**
 * Upload temporary files live in a directory of this process, `<DATA_DIR>/upload-tmp/<pid>`:
 * each is deleted when its request ends, and a start removes the directories of processes
 * that are gone (killed mid-upload).
 */
export function uploadTempDirectory(dataDir: string): () => string {
  const directory = join(resolve(dataDir), 'upload-tmp', String(process.pid));
  let made = false;
  return () => {
    if (!made) {
      mkdirSync(directory, { recursive: true, mode: 0o700 });
      made = true;
    }
    return directory;
  };
}

/** Removes the upload temporary directories of processes that no longer run; returns how many. */
export async function removeStaleUploadTemp(dataDir: string): Promise<number> {
  const parent = join(resolve(dataDir), 'upload-tmp');
  const entries = await readdir(parent).catch(() => [] as string[]);
  let removed = 0;
  for (const entry of entries) {
    const pid = Number(entry);
    if (pid === process.pid || (Number.isInteger(pid) && pid > 0 && isRunning(pid))) continue;
    await rm(join(parent, entry), { recursive: true, force: true });
    removed += 1;
  }
  return removed;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
