import { mkdir, readdir, readFile, readlink } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { eq, isNull } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { importSessions, uploadFiles } from '../../drizzle/tables.js';
import { createCompany, createToken } from '../../server/infrastructure/auth.js';
import { ORPHANED_UPLOAD_MS, purgeOldImports } from '../../server/jobs/retention.js';
import { createServerDatabase, type ServerDatabase } from '../support/database.js';
import {
  killAllServerProcesses,
  type ServerProcess,
  startServerProcess,
} from '../support/processes.js';

/**
 * Issue #24: the attacks of a client without a valid token, or with a VIEWER token, against a
 * real server process (`node --import tsx server/main.ts`) over raw HTTP and WebSocket on
 * loopback. Each is bounded in count and bytes; what is measured is what the attack would
 * cost the server: its open descriptors (/proc/<pid>/fd), temporary files, peak memory
 * (VmHWM), the answers' sizes, and another company's answers meanwhile.
 */

const onPostgres = Boolean(process.env.DATABASE_URL);
const MiB = 1024 * 1024;

let serverDatabase: ServerDatabase;
let server: ServerProcess;
const tokens = { admin: '', viewer: '', bystander: '' };
let osTmp: string;

beforeAll(async () => {
  serverDatabase = await createServerDatabase('muster-hostile-requests-');
  const database = await serverDatabase.open();
  try {
    await database.migrate();
    const attacked = await createCompany(database.db, 'Attacked');
    tokens.admin = attacked.token;
    tokens.viewer = (
      await createToken(database.db, { companyId: attacked.companyId, role: 'VIEWER' })
    ).token;
    tokens.bystander = (await createCompany(database.db, 'Bystander')).token;
  } finally {
    await database.close();
  }
  // The OS's temporary directory of the server is one of this test's: graphql-upload-ts puts
  // its files there by default, and other tests' servers cannot add to the count.
  osTmp = join(serverDatabase.env.DATA_DIR as string, 'os-tmp');
  await mkdir(osTmp);
  server = await startServerProcess('hostile-requests', serverEnv());
}, 240_000);

function serverEnv(): Record<string, string> {
  return { ...serverDatabase.env, TMPDIR: osTmp };
}

afterAll(async () => {
  await killAllServerProcesses();
  await serverDatabase?.remove();
});

function port(): number {
  return Number(new URL(server.url).port);
}

/**
 * The server's open descriptors a request can leave behind: sockets and temporary files (the
 * database's files, pipes and a worker thread's descriptors come and go on their own).
 */
async function openDescriptors(pid: number): Promise<string[]> {
  const entries = await readdir(`/proc/${pid}/fd`);
  const targets = await Promise.all(
    entries.map((entry) => readlink(`/proc/${pid}/fd/${entry}`).catch(() => 'gone')),
  );
  return targets.filter(
    (target) =>
      target.startsWith('socket:') || target.includes('upload-tmp') || target.includes('os-tmp'),
  );
}

/** Upload temporary files anywhere they could be: the server's own directory and the OS's. */
async function tempFiles(): Promise<string[]> {
  const found: string[] = [];
  const uploadTemp = join(serverDatabase.env.DATA_DIR as string, 'upload-tmp');
  for (const directory of await readdir(uploadTemp).catch(() => [] as string[])) {
    for (const file of await readdir(join(uploadTemp, directory)).catch(() => [] as string[])) {
      found.push(join(uploadTemp, directory, file));
    }
  }
  // graphql-upload-ts's own name for them (tsx keeps its cache there too).
  for (const file of await readdir(osTmp)) {
    if (/^capacitor-.*\.tmp$/.test(file)) found.push(join(osTmp, file));
  }
  return found;
}

/** Polls `measure` until `done` says so, for at most 10 s; returns the last measure. */
async function settled<T>(measure: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + 10_000;
  let value = await measure();
  while (!done(value) && Date.now() < deadline) {
    await sleep(200);
    value = await measure();
  }
  return value;
}

/** Peak and current resident memory of the server process, in MiB. */
async function memory(pid: number): Promise<{ peak: number; current: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) =>
    Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1]) / 1024;
  return { peak: field('VmHWM'), current: field('VmRSS') };
}

/** Figures for docs/security.md, printed with the test's output. */
function report(line: string): void {
  console.info(`[hostile-requests, ${onPostgres ? 'Postgres' : 'PGlite'}] ${line}`);
}

const BOUNDARY = 'hostileboundary';

function multipartHead(token: string | null, fileName = 'users.xlsx', fileBytes = 2 * MiB) {
  const operations = JSON.stringify({
    query:
      'mutation($input: StartImportInput!) { startImport(input: $input) { __typename ... on ImportSession { id fileName } ... on Error { code } } }',
    variables: { input: { file: null } },
  });
  const fields =
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${operations}\r\n` +
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="map"\r\n\r\n{"0":["variables.input.file"]}\r\n` +
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="0"; filename="${fileName}"\r\nContent-Type: application/octet-stream\r\n\r\n`;
  const tail = `\r\n--${BOUNDARY}--\r\n`;
  const headers = [
    'POST /graphql HTTP/1.1',
    `Host: 127.0.0.1:${port()}`,
    `Content-Type: multipart/form-data; boundary=${BOUNDARY}`,
    `Content-Length: ${Buffer.byteLength(fields) + fileBytes + Buffer.byteLength(tail)}`,
    'x-graphql-yoga-csrf: 1',
    ...(token ? [`Authorization: Bearer ${token}`] : []),
    '',
    '',
  ].join('\r\n');
  return { head: headers + fields, tail };
}

/**
 * Sends a multipart upload's headers and fields, then streams `sendBytes` of the file part
 * (zip-looking), and drops the socket once the server answered or everything was sent.
 * Resolves with the status line (empty when none came).
 */
function hostileUpload(
  token: string | null,
  sendBytes: number,
  fileBytes = 2 * MiB,
  keepOpen = false,
): Promise<string> {
  return new Promise((resolve) => {
    const socket: Socket = connect(port(), '127.0.0.1');
    let answer = '';
    const finish = () => {
      socket.destroy();
      resolve(answer.split('\r\n')[0] ?? '');
    };
    socket.on('data', (chunk) => {
      answer += chunk.toString('latin1');
    });
    socket.on('error', finish);
    socket.on('close', finish);
    socket.setTimeout(10_000, finish);
    socket.on('connect', async () => {
      const { head } = multipartHead(token, 'users.xlsx', fileBytes);
      const piece = Buffer.alloc(64 * 1024, 0x41);
      piece.write('PK\u0003\u0004', 0, 'latin1');
      socket.write(head);
      socket.write(piece);
      // The answer comes from the headers; the client streams the rest of its file anyway.
      for (let waited = 0; waited < 5_000 && !answer.includes('\r\n\r\n'); waited += 50) {
        await sleep(50);
      }
      for (let sent = piece.length; sent < sendBytes && !socket.destroyed; sent += piece.length) {
        if (!socket.write(piece))
          await new Promise((r) => socket.once('drain', r).once('close', r));
      }
      // Whatever happens next, the client goes away without finishing the request (or, with
      // `keepOpen`, stalls until the server goes).
      if (!keepOpen) setTimeout(finish, 200);
    });
  });
}

/** `viewer` of the bystander company: its status and time in ms. */
async function bystanderViewer(): Promise<{ ok: boolean; ms: number }> {
  const started = Date.now();
  try {
    const result = await server.graphql(tokens.bystander, '{ viewer { role } }');
    return { ok: result.data?.viewer?.role === 'ADMIN', ms: Date.now() - started };
  } catch {
    return { ok: false, ms: Date.now() - started };
  }
}

describe('uploads refused from their headers', () => {
  it('leaves no descriptor and no temporary file for 60 refused uploads of 2 MiB dropped mid-body', async () => {
    // Warm the paths up, so that what they open once (the database's pool) is in the baseline.
    await hostileUpload(null, 64 * 1024);
    await hostileUpload(tokens.viewer, 64 * 1024);
    await sleep(300);
    const before = await openDescriptors(server.pid);
    const statuses: string[] = [];
    for (let round = 0; round < 6; round++) {
      const batch = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          hostileUpload(i % 2 === 0 ? null : tokens.viewer, 2 * MiB),
        ),
      );
      statuses.push(...batch);
    }
    const after = await settled(
      () => openDescriptors(server.pid),
      (open) => open.length <= before.length + 2,
    );

    report(
      `60 refused uploads: descriptors ${before.length} -> ${after.length}, temp files ${(await tempFiles()).length}`,
    );
    expect(
      statuses.filter((status) => / 401 /.test(status)),
      statuses.join(';'),
    ).toHaveLength(30);
    expect(statuses.filter((status) => / 403 /.test(status))).toHaveLength(30);
    expect(
      after.length,
      `before: ${before.join(' ')}\nafter: ${after.join(' ')}`,
    ).toBeLessThanOrEqual(before.length + 2);
    expect(await tempFiles()).toEqual([]);
    expect(await bystanderViewer()).toMatchObject({ ok: true });
  }, 60_000);

  it('removes the temporary file of an ADMIN upload the client drops halfway', async () => {
    const before = await openDescriptors(server.pid);
    for (let i = 0; i < 5; i++) await hostileUpload(tokens.admin, 1 * MiB, 4 * MiB);
    expect(await settled(tempFiles, (files) => files.length === 0)).toEqual([]);
    const after = await settled(
      () => openDescriptors(server.pid),
      (open) => open.length <= before.length + 2,
    );
    expect(after.length).toBeLessThanOrEqual(before.length + 2);
  }, 60_000);
});

/** Sends a POST of `bytes` (chunked when `chunked`), returns the status and the answer's size. */
function bigPost(
  token: string | null,
  bytes: number,
  options: { chunked: boolean; body?: Buffer },
): Promise<{ status: number; answer: string }> {
  return new Promise((resolve) => {
    const request = httpRequest(
      {
        host: '127.0.0.1',
        port: port(),
        path: '/graphql',
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(options.chunked ? {} : { 'content-length': String(bytes) }),
        },
      },
      (response) => {
        let answer = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          answer += chunk;
        });
        response.on('end', () => resolve({ status: response.statusCode ?? 0, answer }));
        response.on('error', () => resolve({ status: response.statusCode ?? 0, answer }));
      },
    );
    request.on('error', () => resolve({ status: 0, answer: '' }));
    const piece = options.body ?? Buffer.alloc(256 * 1024, 0x7b);
    let sent = 0;
    const pump = () => {
      while (sent < bytes && !request.destroyed) {
        sent += piece.length;
        if (!request.write(piece)) {
          request.once('drain', pump);
          return;
        }
      }
      request.end();
    };
    pump();
  });
}

describe('request bodies', () => {
  it('refuses 10 bodies of 50 MB by their bytes, before parsing, with short answers and bounded memory', async () => {
    const before = await memory(server.pid);
    const pings: { ok: boolean; ms: number }[] = [];
    let attacking = true;
    const pinging = (async () => {
      while (attacking) {
        pings.push(await bystanderViewer());
        await sleep(100);
      }
    })();
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        bigPost(tokens.viewer, 50 * MiB, { chunked: i % 2 === 0 }),
      ),
    );
    attacking = false;
    await pinging;
    const after = await memory(server.pid);
    report(
      `10 bodies of 50 MB: RSS ${before.current.toFixed(0)} MiB before, peak ${before.peak.toFixed(0)} -> ${after.peak.toFixed(0)} MiB; bystander slowest ${Math.max(...pings.map((ping) => ping.ms))} ms of ${pings.length}`,
    );

    for (const { status, answer } of answers) {
      expect(status).toBe(413);
      expect(answer.length).toBeLessThan(1_000);
      expect(JSON.parse(answer).errors[0].extensions.code).toBe('REQUEST_TOO_LARGE');
    }
    // Before the limit, ten such bodies took the server to 2.85 GB.
    expect(
      Math.max(after.peak, after.current) - Math.max(before.peak, before.current),
    ).toBeLessThan(200);
    expect(pings.every((ping) => ping.ok)).toBe(true);
  }, 120_000);

  it('never sends a malformed body back', async () => {
    const body = Buffer.from(`{"query": "{ viewer { role } }", ${'"x'.repeat(200_000)}`);
    const { status, answer } = await bigPost(tokens.viewer, body.length, {
      chunked: false,
      body,
    });
    expect(status).toBe(400);
    expect(answer.length).toBeLessThan(1_000);
    expect(answer).not.toContain('"x"x');
  });

  it('does not read the body of a request without a valid token', async () => {
    const { status, answer } = await bigPost(null, 900 * 1024, { chunked: true });
    expect(status).toBe(401);
    expect(JSON.parse(answer).errors[0].extensions.code).toBe('UNAUTHENTICATED');
  });

  it('never quotes a long variable back in an error', async () => {
    const response = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens.viewer}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        query: 'query($first: Int) { users(first: $first) { edges { cursor } } }',
        variables: { first: 'y'.repeat(500_000) },
      }),
    });
    const answer = await response.text();
    expect(answer.length).toBeLessThan(2_000);
    expect(JSON.parse(answer).errors).toHaveLength(1);
  });
});

describe('graphql-ws', () => {
  it('closes sockets whose frame passes 1 MiB while reading it, before any authentication', async () => {
    const before = await memory(server.pid);
    const url = `${server.url.replace('http', 'ws')}/graphql`;
    const closes = await Promise.all(
      Array.from(
        { length: 10 },
        () =>
          new Promise<number>((resolve) => {
            const socket = new WebSocket(url, 'graphql-transport-ws');
            socket.on('open', () => {
              socket.send(
                JSON.stringify({
                  type: 'connection_init',
                  payload: { pad: 'p'.repeat(2 * MiB) },
                }),
              );
            });
            socket.on('close', (code) => resolve(code));
            socket.on('error', () => {});
          }),
      ),
    );
    const after = await memory(server.pid);
    report(
      `10 frames of 2 MiB: RSS ${before.current.toFixed(0)} MiB before, peak ${before.peak.toFixed(0)} -> ${after.peak.toFixed(0)} MiB`,
    );
    expect(closes).toEqual(Array.from({ length: 10 }, () => 1009));
    expect(
      Math.max(after.peak, after.current) - Math.max(before.peak, before.current),
    ).toBeLessThan(100);
    expect(await bystanderViewer()).toMatchObject({ ok: true });
  }, 60_000);

  it('closes a socket that never sends connection_init', async () => {
    const url = `${server.url.replace('http', 'ws')}/graphql`;
    const code = await new Promise<number>((resolve) => {
      const socket = new WebSocket(url, 'graphql-transport-ws');
      socket.on('close', (closeCode) => resolve(closeCode));
      socket.on('error', () => {});
    });
    expect(code).toBe(4408);
  }, 20_000);
});

const SEARCH = 'query($search: String) { users(first: 5, search: $search) { edges { cursor } } }';

describe('string arguments', () => {
  it('refuses a search longer than 200 characters or with a control character, as INVALID_INPUT', async () => {
    for (const search of ['a'.repeat(201), 'x'.repeat(64 * 1024), 'ann\u0000', 'a\nb']) {
      const result = await server.graphql(tokens.viewer, SEARCH, { search });
      expect(result.data).toBeNull();
      expect(result.errors?.[0]?.extensions?.code).toBe('INVALID_INPUT');
      expect(JSON.stringify(result).length).toBeLessThan(1_000);
    }
    const allowed = await server.graphql(tokens.viewer, SEARCH, { search: 'a'.repeat(200) });
    expect(allowed.errors).toBeUndefined();
  });

  it('answers a NUL in a group or field name with InvalidInputError, not "Unexpected error."', async () => {
    const group = await server.graphql(
      tokens.admin,
      'mutation($name: String!) { createTrainingGroup(input: { name: $name }) { __typename ... on Error { code } } }',
      { name: 'Night\u0000shift' },
    );
    expect(group.data?.createTrainingGroup).toEqual({
      __typename: 'InvalidInputError',
      code: 'INVALID_INPUT',
    });
    const field = await server.graphql(
      tokens.admin,
      'mutation($label: String!) { createCustomField(input: { label: $label }) { __typename ... on Error { code } } }',
      { label: 'Cost\u0000centre' },
    );
    expect(field.data?.createCustomField).toEqual({
      __typename: 'InvalidInputError',
      code: 'INVALID_INPUT',
    });
  });
});

describe('links and file names', () => {
  it('builds download links from the address the server listens on, not from a forged Host', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const request = httpRequest(
        {
          host: '127.0.0.1',
          port: port(),
          path: '/graphql',
          method: 'POST',
          headers: {
            host: 'evil.example',
            authorization: `Bearer ${tokens.viewer}`,
            'content-type': 'application/json',
          },
        },
        (response) => {
          let text = '';
          response.on('data', (chunk) => {
            text += chunk;
          });
          response.on('end', () => resolve(text));
        },
      );
      request.on('error', reject);
      request.end(JSON.stringify({ query: '{ importTemplate { url } }' }));
    });
    const url = JSON.parse(answer).data.importTemplate.url as string;
    expect(new URL(url).host).toBe(`127.0.0.1:${port()}`);
  });

  it('stores a file name with CR/LF (filename*) without its line breaks', async () => {
    const fileBytes = 1_000;
    const operations = JSON.stringify({
      query:
        'mutation($input: StartImportInput!) { startImport(input: $input) { __typename ... on ImportSession { fileName } ... on Error { code } } }',
      variables: { input: { file: null } },
    });
    const form = Buffer.concat([
      Buffer.from(
        `--${BOUNDARY}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${operations}\r\n` +
          `--${BOUNDARY}\r\nContent-Disposition: form-data; name="map"\r\n\r\n{"0":["variables.input.file"]}\r\n` +
          `--${BOUNDARY}\r\nContent-Disposition: form-data; name="0"; filename*=UTF-8''report%0D%0AReply%20with%20your%20password.xlsx\r\n\r\n`,
      ),
      Buffer.concat([Buffer.from('PK\u0003\u0004', 'latin1'), Buffer.alloc(fileBytes - 4, 1)]),
      Buffer.from(`\r\n--${BOUNDARY}--\r\n`),
    ]);
    const response = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${tokens.admin}`,
        'x-graphql-yoga-csrf': '1',
        'content-type': `multipart/form-data; boundary=${BOUNDARY}`,
      },
      body: form,
    });
    const body = await response.json();
    expect(body.data.startImport).toEqual({
      __typename: 'ImportSession',
      fileName: 'report Reply with your password.xlsx',
    });
  });
});

describe('a crash mid-upload', () => {
  it('leaves neither a temporary file nor an upload_files row once the server started again', async () => {
    const uploading = hostileUpload(tokens.admin, 3 * MiB, 40 * MiB, true);
    await sleep(1_500);
    const during = await tempFiles();
    await server.kill('SIGKILL');
    await uploading;
    expect(during.length).toBe(1);
    expect(await tempFiles()).toEqual(during);

    server = await startServerProcess('hostile-requests-restarted', serverEnv());
    expect(await tempFiles()).toEqual([]);
    // On Postgres other processes may be storing uploads: the start removes an orphan only
    // once it is older than any upload can take, so the clock is moved past that here.
    if (!onPostgres) await server.kill('SIGTERM');
    const database = await serverDatabase.open();
    try {
      if (onPostgres) {
        const later = new Date(Date.now() + ORPHANED_UPLOAD_MS + 60_000);
        expect((await purgeOldImports(database.db, 7, later)).orphanedUploads).toBe(1);
      }
      // Uploads of sessions (the file-name test's) stay; none without a session is left.
      const orphans = await database.db
        .select({ id: uploadFiles.id })
        .from(uploadFiles)
        .leftJoin(importSessions, eq(importSessions.uploadFileId, uploadFiles.id))
        .where(isNull(importSessions.id));
      expect(orphans).toEqual([]);
    } finally {
      await database.close();
    }
  }, 120_000);
});
