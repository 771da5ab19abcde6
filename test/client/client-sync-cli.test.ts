import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { type CommandRun, runMusterCli } from '../support/client-fixtures.js';
import { userRows, workbookBytes } from '../support/sync-fixtures.js';

/** `muster import --sync` and `muster revert` (and so importUsers and revertImport). */

let t: TestApp;
let baseUrl: string;
let dir: string;
beforeAll(async () => {
  t = await createTestApp();
  baseUrl = await t.listen();
  dir = await mkdtemp(join(tmpdir(), 'muster-sync-cli-'));
});
afterAll(async () => {
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

function muster(args: string[], token: string): Promise<CommandRun> {
  return runMusterCli(args, { MUSTER_URL: baseUrl, MUSTER_TOKEN: token });
}

async function workbook(name: string, rows: string[][]): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, await workbookBytes(rows));
  return path;
}

const sessionOf = (run: CommandRun) => /^Session: (\S+)$/m.exec(run.stdout)?.[1] as string;

describe('the muster CLI with --sync and revert', () => {
  it('asks for --acknowledge-archive past the limit, and reverts the import', async () => {
    const company = await t.createTestCompany();
    const first = await muster(
      ['import', await workbook('all.xlsx', userRows(1, 10))],
      company.token,
    );
    expect(first.code, first.stderr).toBe(0);

    const half = await workbook('half.xlsx', userRows(1, 5));
    const refused = await muster(['import', half, '--sync'], company.token);
    expect(refused.code, refused.stderr).toBe(8);
    expect(refused.stderr).toContain('ARCHIVE_LIMIT_EXCEEDED');

    const synced = await muster(['import', half, '--sync', '--acknowledge-archive'], company.token);
    expect(synced.code, synced.stderr).toBe(0);
    expect(synced.stdout).toMatch(/^ {2}archived\s+5$/m);

    const reverted = await muster(['revert', sessionOf(synced)], company.token);
    expect(reverted.code, reverted.stderr).toBe(0);
    expect(reverted.stdout).toMatch(/^ {2}unarchived\s+5$/m);
    const status = await muster(['status', sessionOf(synced)], company.token);
    expect(status.stdout).toMatch(/^Stage\s+REVERTED/m);

    const again = await muster(['revert', sessionOf(synced)], company.token);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('WRONG_STAGE');
  }, 240_000);

  it('refuses to revert users changed since with exit 8, and reverts the rest with --force', async () => {
    const company = await t.createTestCompany();
    const first = await muster(['import', await workbook('a.xlsx', userRows(1, 3))], company.token);
    expect(first.code, first.stderr).toBe(0);
    const later = await muster(
      ['import', await workbook('b.xlsx', [['user1@example.com', 'Changed', 'R1']])],
      company.token,
    );
    expect(later.code, later.stderr).toBe(0);

    const refused = await muster(['revert', sessionOf(first)], company.token);
    expect(refused.code, refused.stderr).toBe(8);
    expect(refused.stderr).toContain('user1@example.com (CREATE)');

    const forced = await muster(['revert', sessionOf(first), '--force', '--json'], company.token);
    expect(forced.code, forced.stderr).toBe(0);
    expect(JSON.parse(forced.stdout)).toMatchObject({
      stage: 'REVERTED',
      revertResult: { removed: 2, conflicts: 1 },
    });
  }, 240_000);
});
