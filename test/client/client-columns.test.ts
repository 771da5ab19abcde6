import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ExcelJS from 'exceljs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ColumnMappingsDocument,
  createMusterClient,
  ImportUsersError,
  importUsers,
} from '../../client/index.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { type CommandRun, runMusterCli } from '../support/client-fixtures.js';

let t: TestApp;
let baseUrl: string;
let dir: string;
beforeAll(async () => {
  t = await createTestApp();
  baseUrl = await t.listen();
  dir = await mkdtemp(join(tmpdir(), 'muster-columns-'));
});
afterAll(async () => {
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

function muster(args: string[], env: Record<string, string> = {}): Promise<CommandRun> {
  return runMusterCli(args, { MUSTER_URL: baseUrl, ...env }, { timeout: 120_000 });
}

async function writeWorkbook(name: string, rows: (string | null)[][]): Promise<string> {
  const book = new ExcelJS.Workbook();
  const sheet = book.addWorksheet('Users');
  for (const row of rows) sheet.addRow(row);
  const path = join(dir, name);
  await book.xlsx.writeFile(path);
  return path;
}

async function userEmails(token: string): Promise<string[]> {
  const result = await t.request(token, '{ users(first: 50) { edges { node { email } } } }');
  return result.data?.users.edges.map((edge: any) => edge.node.email).sort();
}

const EXPORT = [
  ['E-mail', 'Name', 'Personalnummer'],
  ['anna@example.com', 'Anna', 'P-1'],
  ['bert@example.com', 'Bert', 'P-2'],
];

describe('columns policies of the client and the CLI', () => {
  it('muster import --map maps columns; the next file needs no --map; without one it is refused, typed', async () => {
    const company = await t.createTestCompany();
    const file = await writeWorkbook('export.xlsx', EXPORT);

    const refused = await muster(['import', file], { MUSTER_TOKEN: company.token });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('(REQUIRED_FIELD_UNMAPPED)');
    expect(await userEmails(company.token)).toEqual([]);

    const badMap = await muster(['import', file, '--map', 'E-mail'], {
      MUSTER_TOKEN: company.token,
    });
    expect(badMap.code).toBe(2);
    expect(badMap.stderr).toContain('--map needs "header=field"');

    const mapped = await muster(
      [
        'import',
        file,
        '--map',
        'E-mail=Email',
        '--map',
        'Name=userName',
        '--map',
        'Personalnummer=reference',
      ],
      { MUSTER_TOKEN: company.token },
    );
    expect(mapped.code, mapped.stderr).toBe(0);
    expect(await userEmails(company.token)).toEqual(['anna@example.com', 'bert@example.com']);

    const again = await writeWorkbook('export-2.xlsx', [
      ['E-mail', 'Name', 'Personalnummer'],
      ['carl@example.com', 'Carl', 'P-3'],
    ]);
    const remembered = await muster(['import', again], { MUSTER_TOKEN: company.token });
    expect(remembered.code, remembered.stderr).toBe(0);
    expect(await userEmails(company.token)).toEqual([
      'anna@example.com',
      'bert@example.com',
      'carl@example.com',
    ]);
  }, 300_000);

  it('importUsers accepts suggestions with columns: { suggestions: "accept" }', async () => {
    const company = await t.createTestCompany();
    const client = createMusterClient({ url: `${baseUrl}/graphql`, token: company.token });
    const book = new ExcelJS.Workbook();
    const sheet = book.addWorksheet('Users');
    for (const row of [
      ['Kontakt', 'Nom complet', 'Matricule', 'Bureau'],
      ['dora@example.com', 'Dora', 'M-1', 'Lyon'],
    ]) {
      sheet.addRow(row);
    }
    const bytes = Buffer.from(await book.xlsx.writeBuffer());

    const ignored = await importUsers(client, bytes, { stopAt: 'custom-fields' });
    expect(ignored.stage).toBe('CUSTOM_FIELDS');
    expect(ignored.unmappedFields.map((field) => field.key)).toEqual([
      'email',
      'userName',
      'reference',
    ]);

    const error = await importUsers(client, bytes).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ImportUsersError);
    expect((error as ImportUsersError).code).toBe('REQUIRED_FIELD_UNMAPPED');

    const session = await importUsers(client, bytes, {
      columns: { suggestions: 'accept' },
      newColumns: ['Bureau'],
    });
    expect(session.stage).toBe('COMPLETED');
    expect(
      session.columns.map((column) => [column.header, column.status, column.field?.key]),
    ).toEqual([
      ['Kontakt', 'MAPPED', 'email'],
      ['Nom complet', 'MAPPED', 'userName'],
      ['Matricule', 'MAPPED', 'reference'],
      ['Bureau', 'ADDED', 'bureau'],
    ]);
    const mappings = await client.query(ColumnMappingsDocument, {}).toPromise();
    expect(mappings.data?.columnMappings.map((mapping) => mapping.header)).toEqual([
      'Kontakt',
      'Matricule',
      'Nom complet',
    ]);
  }, 300_000);
});
