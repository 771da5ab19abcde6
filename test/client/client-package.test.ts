import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ExcelJS from 'exceljs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { runCommand } from '../support/client-fixtures.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

let t: TestApp;
let baseUrl: string;
let dir: string;
beforeAll(async () => {
  t = await createTestApp();
  baseUrl = await t.listen();
  dir = await mkdtemp(join(tmpdir(), 'muster-package-'));
});
afterAll(async () => {
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

/** npm pack, install and the packed bin can take a while on a busy machine. */
const run = (
  command: string,
  args: string[],
  options: { cwd: string; env?: Record<string, string> },
) => runCommand(command, args, { timeout: 120_000, ...options });

describe('the packed @muster/client', () => {
  it('installs from its tarball into an empty project, imports users and runs its bin', async () => {
    const packDir = join(dir, 'pack');
    const app = join(dir, 'app');
    await mkdir(packDir);
    await mkdir(app);
    // prepack builds dist/ first.
    const packed = await run('npm', ['pack', '-w', 'client', '--pack-destination', packDir], {
      cwd: root,
    });
    expect(packed.code, packed.stderr).toBe(0);
    const [tarball] = await readdir(packDir);
    expect(tarball).toMatch(/^muster-client-.*\.tgz$/);

    expect((await run('npm', ['init', '-y'], { cwd: app })).code).toBe(0);
    const installed = await run(
      'npm',
      ['install', join(packDir, tarball as string), '--no-audit', '--no-fund'],
      { cwd: app },
    );
    expect(installed.code, installed.stderr).toBe(0);
    const installedPackage = join(app, 'node_modules/@muster/client');
    expect((await stat(join(installedPackage, 'dist/index.d.ts'))).isFile()).toBe(true);
    // Consumers get the build, not the TypeScript sources.
    await expect(stat(join(installedPackage, 'index.ts'))).rejects.toThrow();

    // The built package drives a real import against the test server.
    const company = await t.createTestCompany();
    const book = new ExcelJS.Workbook();
    const sheet = book.addWorksheet('Users');
    sheet.addRow(['Email', 'userName', 'reference']);
    sheet.addRow(['packed@example.com', 'Packed', 'P1']);
    const file = join(dir, 'packed.xlsx');
    await book.xlsx.writeFile(file);
    const script = `
      import { createMusterClient, importUsers, ImportUsersError, ViewerDocument } from '@muster/client';
      const client = createMusterClient({ url: process.env.URL, token: process.env.TOKEN });
      const session = await importUsers(client, process.env.FILE);
      const viewer = await client.query(ViewerDocument, {}).toPromise();
      console.log(JSON.stringify({
        exports: [typeof createMusterClient, typeof importUsers, typeof ImportUsersError],
        stage: session.stage,
        result: session.result,
        role: viewer.data.viewer.role,
      }));`;
    const imported = await run('node', ['--input-type=module', '-e', script], {
      cwd: app,
      env: { URL: `${baseUrl}/graphql`, TOKEN: company.token, FILE: file },
    });
    expect(imported.code, imported.stderr).toBe(0);
    expect(JSON.parse(imported.stdout)).toEqual({
      exports: ['function', 'function', 'function'],
      stage: 'COMPLETED',
      result: { created: 1, updated: 0, unchanged: 0, skipped: 0, archived: 0, restored: 0 },
      role: 'ADMIN',
    });

    // A frontend team's TypeScript, compiled with --strict against the installed package: extra
    // exchanges, an async token, headers, a custom fetch, urql's types, the typed documents and
    // enums, graphql() for its own document, and the schema shipped for its own codegen.
    const consumer = `
      import { readFileSync } from 'node:fs';
      import { fileURLToPath } from 'node:url';
      import {
        CombinedError, createMusterClient, graphql, mapExchange, ImportSessionsDocument,
        ViewerDocument, type Exchange, type ImportStage, type ImportUsersFailureReason,
        type OperationResult, type ViewerQuery,
      } from '@muster/client';

      let operations = 0;
      const requestIds: (string | null)[] = [];
      const counting: Exchange = mapExchange({ onOperation: () => { operations++; } });
      const client = createMusterClient({
        url: process.env.URL ?? '',
        token: async () => process.env.TOKEN ?? '',
        headers: () => ({ 'x-request-id': 'consumer' }),
        fetch: (input, init) => {
          requestIds.push(new Headers(init?.headers).get('x-request-id'));
          return fetch(input, init);
        },
        exchanges: [counting],
      });

      function label(stage: ImportStage): string {
        switch (stage) {
          case 'UPLOAD': case 'CUSTOM_FIELDS': case 'VALIDATION': case 'REVIEW':
          case 'GROUP_ASSIGNMENT': return 'open';
          case 'COMPLETED': case 'CANCELLED': case 'FAILED': case 'REVERTED': return 'ended';
        }
      }
      function explain(reason: ImportUsersFailureReason): string {
        switch (reason) {
          case 'row-errors': case 'bad-file': case 'rate-limited': case 'failed':
          case 'cancelled': case 'refused': case 'auth': case 'network': case 'http':
          case 'not-found': case 'graphql':
          case 'interrupted': return reason;
        }
      }

      const viewer: OperationResult<ViewerQuery> = await client.query(ViewerDocument, {}).toPromise();
      const sessions = await client.query(ImportSessionsDocument, { first: 100 }).toPromise();
      const total: number | undefined = sessions.data?.importSessions.totalCount;
      const stages = sessions.data?.importSessions.edges.map((edge) => label(edge.node.stage)) ?? [];
      const Own = graphql<{ viewer: { role: string } }, Record<string, never>>('query Own { viewer { role } }');
      const own = await client.query(Own, {}).toPromise();
      const role: string | undefined = own.data?.viewer.role;
      const schema = readFileSync(
        fileURLToPath(import.meta.resolve('@muster/client/schema.graphql')), 'utf8');
      const operationsSource = readFileSync(
        fileURLToPath(import.meta.resolve('@muster/client/operations/import.graphql')), 'utf8');
      console.log(JSON.stringify({
        role: viewer.data?.viewer.role, own: role, total, stages, operations, requestIds,
        explained: explain('rate-limited'),
        schema: schema.includes('type ImportSession implements Node'),
        operationsSource: operationsSource.includes('query ImportRows'),
        combinedError: typeof CombinedError,
      }));`;
    await writeFile(join(app, 'consumer.ts'), consumer);
    await writeFile(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          outDir: 'out',
          typeRoots: [join(root, 'node_modules/@types')],
          types: ['node'],
        },
        files: ['consumer.ts'],
      }),
    );
    expect((await run('npm', ['pkg', 'set', 'type=module'], { cwd: app })).code).toBe(0);
    const compiled = await run('node', [join(root, 'node_modules/typescript/bin/tsc'), '-p', '.'], {
      cwd: app,
    });
    expect(compiled.code, compiled.stdout + compiled.stderr).toBe(0);
    const consumed = await run('node', ['out/consumer.js'], {
      cwd: app,
      env: { URL: `${baseUrl}/graphql`, TOKEN: company.token },
    });
    expect(consumed.code, consumed.stderr).toBe(0);
    expect(JSON.parse(consumed.stdout)).toEqual({
      role: 'ADMIN',
      own: 'ADMIN',
      total: 1,
      stages: ['ended'],
      operations: 3,
      requestIds: ['consumer', 'consumer', 'consumer'],
      explained: 'rate-limited',
      schema: true,
      operationsSource: true,
      combinedError: 'function',
    });

    // The README lists every reason importUsers can fail with.
    const declared = await readFile(join(installedPackage, 'dist/import-users.d.ts'), 'utf8');
    const union = /type ImportUsersFailureReason =([^;]*);/.exec(declared)?.[1] ?? '';
    const reasons = [...union.matchAll(/'([a-z-]+)'/g)].map((match) => match[1]);
    const readme = await readFile(join(installedPackage, 'README.md'), 'utf8');
    const documented = [...readme.matchAll(/^\| `([a-z-]+)` +\|/gm)].map((match) => match[1]);
    expect(reasons.length).toBeGreaterThan(5);
    expect(documented).toEqual(expect.arrayContaining(reasons));

    const help = await run('npx', ['--no-install', 'muster', '--help'], { cwd: app });
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toContain('Usage: muster <command> [options]');
    const status = await run('npx', ['--no-install', 'muster', 'status', 'nope'], {
      cwd: app,
      env: { MUSTER_URL: baseUrl, MUSTER_TOKEN: company.token },
    });
    expect(status.code).toBe(1);
    expect(status.stderr).toContain('No import session nope in your company.');
  }, 300_000);
});
