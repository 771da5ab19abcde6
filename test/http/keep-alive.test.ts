import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KEEP_ALIVE } from '../../server/http/http-server.js';
import { createTestApp, type TestApp } from '../support/app.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const busyServerScript = join(repoRoot, 'test', 'support', 'busy-http-server.ts');

let busyServer: ChildProcessWithoutNullStreams | null = null;
afterEach(() => {
  busyServer?.kill('SIGKILL');
  busyServer = null;
});

/**
 * Starts test/support/busy-http-server.ts in a process of its own (its event loop must be
 * blocked while this one goes on) with these keep-alive times; returns its port.
 */
async function startBusyServer(serverTimeoutMs: number, advertisedSeconds: number) {
  // Node itself with tsx's loader, not the tsx command: that runs the script in a child of
  // its own, which a kill of the command left running.
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', busyServerScript, String(serverTimeoutMs), String(advertisedSeconds)],
    { cwd: repoRoot },
  );
  busyServer = child;
  let output = '';
  child.stdout.setEncoding('utf8');
  for await (const chunk of child.stdout) {
    output += chunk;
    const port = /port (\d+)/.exec(output)?.[1];
    if (port) return Number(port);
  }
  throw new Error(`the busy server exited before listening: ${output}`);
}

/**
 * The next response read off a kept-alive socket: its head as text, or null when the server
 * closed or reset the connection first.
 */
function nextResponse(socket: Socket): Promise<string | null> {
  return new Promise((resolve) => {
    let received = Buffer.alloc(0);
    const done = (head: string | null) => {
      socket.off('data', onData);
      socket.off('close', onClosed);
      socket.off('error', onClosed);
      resolve(head);
    };
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const headEnd = received.indexOf('\r\n\r\n');
      if (headEnd < 0) return;
      const head = received.subarray(0, headEnd).toString('latin1');
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      if (received.length >= headEnd + 4 + length) done(head);
    };
    const onClosed = () => done(null);
    socket.on('data', onData);
    socket.on('close', onClosed);
    socket.on('error', onClosed);
  });
}

const request = (path: string) => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;

/**
 * A client that follows the Keep-Alive header (timeout=1): a request, then another on the
 * same connection 0.9 s later, inside the advertised second. The first asks the server to be
 * busy from 0.3 s to 2.3 s after it answers: the second request arrives while it is, and it
 * stays busy past the advertised time plus the second Node adds to it. Returns both
 * responses' heads (null: the connection was closed or reset instead).
 */
async function reuseWhileServerBusy(port: number): Promise<[string | null, string | null]> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  try {
    const first = nextResponse(socket);
    socket.write(request('/?busyAfterMs=300&busyMs=2000'));
    const firstHead = await first;
    await new Promise((resolve) => setTimeout(resolve, 900));
    const second = nextResponse(socket);
    socket.write(request('/'));
    return [firstHead, await second];
  } finally {
    socket.destroy();
  }
}

describe('keep-alive connections', () => {
  it('are reset under a request when the server keeps them only as long as it says (the race)', async () => {
    // Node's own behaviour: it advertises keepAliveTimeout and destroys the socket a second later.
    const port = await startBusyServer(1_000, 1);
    const [first, second] = await reuseWhileServerBusy(port);
    expect(first).toMatch(/^HTTP\/1\.1 200/);
    expect(second).toBeNull();
  });

  it('answer a request sent in time although the server was busy at the deadline', async () => {
    const port = await startBusyServer(3_000, 1);
    const [first, second] = await reuseWhileServerBusy(port);
    // The header says what createHttpServer was given, once, not Node's own (timeout=3).
    expect(first?.match(/\r\nkeep-alive: [^\r]*/gi)).toEqual(['\r\nKeep-Alive: timeout=1']);
    expect(second).toMatch(/^HTTP\/1\.1 200/);
  });

  describe('on the app', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await createTestApp();
    });
    afterAll(async () => {
      await t.close();
    });

    it('are advertised for 60 s and kept 65 s', async () => {
      expect(KEEP_ALIVE).toEqual({ serverTimeoutMs: 65_000, advertisedSeconds: 60 });
      const url = await t.listen();
      const { token } = await t.createTestCompany();
      const response = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: '{ viewer { role } }' }),
      });
      expect(response.status).toBe(200);
      await response.text();
      expect(response.headers.get('keep-alive')).toBe('timeout=60');
    });
  });
});
