import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
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
      result: { created: 1, updated: 0, unchanged: 0, skipped: 0 },
      role: 'ADMIN',
    });

    const help = await run('npx', ['--no-install', 'muster', '--help'], { cwd: app });
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toContain('Usage: muster <command> [options]');
    const status = await run('npx', ['--no-install', 'muster', 'status', 'nope'], {
      cwd: app,
      env: { MUSTER_URL: baseUrl, MUSTER_TOKEN: company.token },
    });
    expect(status.code).toBe(1);
    expect(status.stderr).toContain('no import session nope');
  });
});
