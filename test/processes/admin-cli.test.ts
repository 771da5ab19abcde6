import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, type DatabaseTarget } from '../../drizzle/client.js';
import { authenticate } from '../../server/infrastructure/auth.js';
import { createEmptyPostgresDatabase } from '../support/database.js';
import { type CliResult, runAdminCli } from '../support/processes.js';

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const tokenPattern = /^mst_[A-Za-z0-9_-]{43}$/;

let dataDir: string;
let postgresDatabase: { url: string; drop(): Promise<void> } | null = null;

/** The admin CLI on the test database. */
function runAdmin(args: string[]): Promise<CliResult> {
  return runAdminCli(args, {
    DATA_DIR: dataDir,
    ...(postgresDatabase ? { DATABASE_URL: postgresDatabase.url } : {}),
  });
}

/** The command's output must be exactly one JSON line. */
function parseJsonLine(stdout: string): Record<string, unknown> {
  expect(stdout).toMatch(/^[^\n]+\n$/);
  return JSON.parse(stdout) as Record<string, unknown>;
}

function databaseTarget(): DatabaseTarget {
  return postgresDatabase ? { url: postgresDatabase.url } : { dataDir: join(dataDir, 'pglite') };
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'muster-admin-cli-'));
  if (process.env.DATABASE_URL) {
    postgresDatabase = await createEmptyPostgresDatabase(process.env.DATABASE_URL);
  }
});

afterAll(async () => {
  await postgresDatabase?.drop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('the admin CLI', () => {
  let companyId: string;
  let adminToken: string;
  let viewer: { tokenId: string; token: string };
  let revoked: { tokenId: string; token: string };

  it('create-company prints one JSON line with the company id and its ADMIN token', async () => {
    const result = await runAdmin(['create-company', 'Acme']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const created = parseJsonLine(result.stdout);
    expect(Object.keys(created).sort()).toEqual(['companyId', 'token']);
    expect(created.companyId).toMatch(uuidPattern);
    expect(created.token).toMatch(tokenPattern);
    companyId = created.companyId as string;
    adminToken = created.token as string;
  }, 120_000);

  it('create-token, revoke-token and list-tokens manage the tokens without showing secrets', async () => {
    const viewerResult = await runAdmin(['create-token', companyId, '--role', 'VIEWER']);
    expect(viewerResult.code).toBe(0);
    const viewerLine = parseJsonLine(viewerResult.stdout);
    expect(viewerLine).toEqual({
      tokenId: expect.stringMatching(uuidPattern),
      role: 'VIEWER',
      token: expect.stringMatching(tokenPattern),
    });
    viewer = { tokenId: viewerLine.tokenId as string, token: viewerLine.token as string };

    const toRevokeResult = await runAdmin(['create-token', companyId, '--role', 'ADMIN']);
    expect(toRevokeResult.code).toBe(0);
    const toRevokeLine = parseJsonLine(toRevokeResult.stdout);
    expect(toRevokeLine.role).toBe('ADMIN');
    revoked = { tokenId: toRevokeLine.tokenId as string, token: toRevokeLine.token as string };

    const revokeResult = await runAdmin(['revoke-token', revoked.tokenId]);
    expect(revokeResult.code).toBe(0);
    expect(parseJsonLine(revokeResult.stdout)).toEqual({ tokenId: revoked.tokenId, revoked: true });

    const secondRevoke = await runAdmin(['revoke-token', revoked.tokenId]);
    expect(secondRevoke.code).toBe(2);
    expect(secondRevoke.stderr).toContain(`No live token with ID ${revoked.tokenId}`);

    const listResult = await runAdmin(['list-tokens', companyId]);
    expect(listResult.code).toBe(0);
    expect(listResult.stdout).not.toContain('mst_');
    const list = parseJsonLine(listResult.stdout) as {
      companyId: string;
      tokens: { tokenId: string; role: string; revokedAt: string | null }[];
    };
    expect(list.companyId).toBe(companyId);
    expect(list.tokens.map(({ tokenId, role }) => ({ tokenId, role }))).toEqual([
      { tokenId: expect.stringMatching(uuidPattern), role: 'ADMIN' },
      { tokenId: viewer.tokenId, role: 'VIEWER' },
      { tokenId: revoked.tokenId, role: 'ADMIN' },
    ]);
    expect(list.tokens.map((token) => token.revokedAt === null)).toEqual([true, true, false]);
  }, 120_000);

  it('exits with code 2 and the usage on a bad role, an unknown command or an unknown company', async () => {
    const badRole = await runAdmin(['create-token', companyId, '--role', 'OWNER']);
    expect(badRole.code).toBe(2);
    expect(badRole.stdout).toBe('');
    expect(badRole.stderr).toContain('--role must be ADMIN or VIEWER');
    expect(badRole.stderr).toContain('Usage:');

    const unknownCommand = await runAdmin(['delete-everything']);
    expect(unknownCommand.code).toBe(2);
    expect(unknownCommand.stdout).toBe('');
    expect(unknownCommand.stderr).toContain('Unknown command "delete-everything"');
    expect(unknownCommand.stderr).toContain('Usage:');

    const unknownCompanyId = randomUUID();
    const unknownCompany = await runAdmin(['create-token', unknownCompanyId]);
    expect(unknownCompany.code).toBe(2);
    expect(unknownCompany.stdout).toBe('');
    expect(unknownCompany.stderr).toContain(`No company with ID ${unknownCompanyId}`);
  }, 120_000);

  it('printed tokens authenticate with their roles, the revoked one does not, only hashes are stored', async () => {
    // Opened after the last CLI run: PGlite cannot share its data directory between processes.
    const database = await createDatabase(databaseTarget());
    try {
      expect(await authenticate(database.db, adminToken)).toMatchObject({
        companyId,
        role: 'ADMIN',
      });
      expect(await authenticate(database.db, viewer.token)).toEqual({
        companyId,
        role: 'VIEWER',
        tokenId: viewer.tokenId,
      });
      expect(await authenticate(database.db, revoked.token)).toBeNull();

      // PGlite answers { rows }, postgres.js an array of rows.
      const result = (await database.db.execute(sql`select * from api_tokens`)) as unknown as
        | { rows: { token_hash: string }[] }
        | { token_hash: string }[];
      const rows = Array.isArray(result) ? result : result.rows;
      expect(JSON.stringify(rows)).not.toContain('mst_');
      expect(rows.map((row) => row.token_hash).sort()).toEqual(
        [adminToken, viewer.token, revoked.token].map(sha256Hex).sort(),
      );
    } finally {
      await database.close();
    }
  });
});
