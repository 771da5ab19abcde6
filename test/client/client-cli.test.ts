import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ExcelJS from 'exceljs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import {
  CLIENT_TEST_FILE,
  type CommandRun,
  companyWithSalesRule,
  runMusterCli,
} from '../support/client-fixtures.js';
import { START_IMPORT, uploadFile } from '../support/http.js';

let t: TestApp;
let baseUrl: string;
let dir: string;
beforeAll(async () => {
  // A small budget, so the rate-limited exit code can be reached in a few uploads.
  t = await createTestApp({ WORK_RATE_LIMIT_PER_MINUTE: '5' });
  baseUrl = await t.listen();
  dir = await mkdtemp(join(tmpdir(), 'muster-cli-'));
});
afterAll(async () => {
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

/** `muster …` from the TypeScript sources, against the test server unless told otherwise. */
function muster(args: string[], env: Record<string, string> = {}): Promise<CommandRun> {
  // A closed port is tried again for a second, not the default minute.
  return runMusterCli(args, { MUSTER_URL: baseUrl, MUSTER_RETRY_SECONDS: '1', ...env });
}

async function writeWorkbook(name: string, rows: (string | null)[][]): Promise<string> {
  const book = new ExcelJS.Workbook();
  const sheet = book.addWorksheet('Users');
  for (const row of rows) sheet.addRow(row);
  const path = join(dir, name);
  await book.xlsx.writeFile(path);
  return path;
}

async function openSheet(path: string): Promise<ExcelJS.Worksheet> {
  const book = new ExcelJS.Workbook();
  await book.xlsx.readFile(path);
  const [sheet] = book.worksheets;
  if (!sheet) throw new Error(`no sheet in ${path}`);
  return sheet;
}

function cellTexts(sheet: ExcelJS.Worksheet): string[] {
  const texts: string[] = [];
  sheet.eachRow((row) => {
    row.eachCell((cell) => {
      texts.push(cell.text);
    });
  });
  return texts;
}

async function closedPort(): Promise<number> {
  return new Promise((done) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
  });
}

describe('the muster CLI', () => {
  it('imports a file, prints a summary with groups, saves the error report and shows the status', async () => {
    const company = await companyWithSalesRule(t, `${baseUrl}/graphql`);
    const path = await writeWorkbook('users.xlsx', CLIENT_TEST_FILE);
    const report = join(dir, 'skipped-errors.xlsx');

    const imported = await muster(
      ['import', path, '--new-columns', 'all', '--on-row-errors', 'skip', '--error-report', report],
      { MUSTER_TOKEN: company.token },
    );
    expect(imported.stderr).not.toContain('muster:');
    expect(imported.code).toBe(0);
    // Not a terminal: plain progress lines, one per change of stage or step.
    expect(imported.stderr).toContain('Reading the file');
    expect(imported.stderr).toMatch(/^Completed$/m);
    expect(imported.stderr).toContain(`Error report saved to ${report}`);
    expect(imported.stdout).toContain('Imported users.xlsx (4 rows, 1 with errors).');
    expect(imported.stdout).toMatch(/^ {2}created\s+2$/m);
    expect(imported.stdout).toMatch(/^ {2}updated\s+1$/m);
    expect(imported.stdout).toMatch(/^ {2}unchanged\s+0$/m);
    expect(imported.stdout).toMatch(/^ {2}skipped\s+1$/m);
    expect(imported.stdout).toContain('Users per training group:');
    expect(imported.stdout).toMatch(/^ {2}Sales\s+1$/m);
    expect(imported.stdout).toMatch(/^ {2}\(no group\)\s+2$/m);
    expect(cellTexts(await openSheet(report))).toContain('not-an-email');

    const sessionId = /^Session: (\S+)$/m.exec(imported.stdout)?.[1];
    expect(sessionId).toBeTruthy();
    const status = await muster(['status', sessionId as string], { MUSTER_TOKEN: company.token });
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^Stage\s+COMPLETED/m);
    expect(status.stdout).toMatch(/^Result\s+2 created, 1 updated, 0 unchanged, 1 skipped$/m);
    const json = await muster(['status', sessionId as string, '--json'], {
      MUSTER_TOKEN: company.token,
    });
    expect(JSON.parse(json.stdout)).toMatchObject({ id: sessionId, stage: 'COMPLETED' });
  });

  it('stops for row errors with exit code 3, listing them and saving the error report', async () => {
    const company = await t.createTestCompany();
    const path = await writeWorkbook('with-errors.xlsx', CLIENT_TEST_FILE);
    const report = join(dir, 'errors.xlsx');

    const stopped = await muster(['import', path, '--error-report', report], {
      MUSTER_TOKEN: company.token,
    });
    expect(stopped.code).toBe(3);
    expect(stopped.stderr).toContain('muster: 1 of 4 rows have errors; nothing was imported.');
    expect(stopped.stderr).toContain('row 5, Email "not-an-email": INVALID_EMAIL');
    expect(stopped.stderr).toContain('waits at VALIDATION');
    const sheet = await openSheet(report);
    expect(cellTexts(sheet)).toContain('not-an-email');
    expect(cellTexts(sheet)).not.toContain('ann@sales.example');

    // Stopping at a stage on purpose is a success that commits nothing.
    const review = await muster(
      ['import', path, '--stop-at', 'review', '--on-row-errors', 'skip'],
      {
        MUSTER_TOKEN: company.token,
      },
    );
    expect(review.code).toBe(0);
    expect(review.stdout).toContain('Stopped at REVIEW as asked; nothing was imported');
  });

  it('exits 4 for a bad file, 5 for a bad token, 6 for no server and 2 for bad usage', async () => {
    const company = await t.createTestCompany();
    const csv = join(dir, 'export.xlsx');
    await writeFile(csv, 'Email,userName,reference\na@example.com,A,R1\n');
    const noColumns = await writeWorkbook('no-columns.xlsx', [['City'], ['Springfield']]);
    const good = await writeWorkbook('good.xlsx', CLIENT_TEST_FILE);
    const port = await closedPort();

    const [badFile, failed, badToken, viewer, offline, noToken, badPolicy] = await Promise.all([
      muster(['import', csv], { MUSTER_TOKEN: company.token }),
      muster(['import', noColumns], { MUSTER_TOKEN: company.token }),
      muster(['import', good, '--token', 'mst_wrong']),
      muster(['import', good], { MUSTER_TOKEN: company.viewerToken }),
      muster(['import', good, '--url', `http://127.0.0.1:${port}`, '--token', company.token]),
      muster(['import', good]),
      muster(['import', good, '--token', company.token, '--stop-at', 'commit']),
    ]);

    expect(badFile.code).toBe(4);
    expect(badFile.stderr).toContain('(NOT_A_WORKBOOK)');
    expect(failed.code).toBe(4);
    expect(failed.stderr).toMatch(/\((NO_DATA_SHEET|MISSING_COLUMNS)\)/);
    expect(badToken.code).toBe(5);
    expect(badToken.stderr).toContain('(UNAUTHENTICATED)');
    expect(viewer.code).toBe(5);
    expect(viewer.stderr).toContain('(FORBIDDEN)');
    expect(offline.code).toBe(6);
    expect(offline.stderr).toContain('could not be reached');
    expect(offline.stderr).toContain('ECONNREFUSED');
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toContain('pass --token or set MUSTER_TOKEN');
    expect(badPolicy.code).toBe(2);
    expect(badPolicy.stderr).toContain('--stop-at must be one of upload, custom-fields');
  });

  it('exits 7 when the token started too many imports this minute, uploading nothing', async () => {
    const company = await t.createTestCompany();
    const headerOnly = await writeWorkbook('header-only.xlsx', [CLIENT_TEST_FILE[0] as string[]]);
    const content = new Uint8Array(await readFile(headerOnly));
    for (let i = 0; i < 5; i++) {
      const started = await uploadFile(
        baseUrl,
        company.token,
        START_IMPORT,
        { input: { file: null } },
        { name: 'u.xlsx', content },
      );
      expect(started.body.data.startImport.__typename).toBe('ImportSession');
    }
    const limited = await muster(['import', headerOnly], { MUSTER_TOKEN: company.token });
    expect(limited.code, limited.stderr).toBe(7);
    expect(limited.stderr).toContain('(RATE_LIMITED)');
    const sessions = await t.request(company.token, '{ importSessions { edges { cursor } } }');
    expect(sessions.data?.importSessions.edges).toHaveLength(5);
  });

  it('downloads the import template', async () => {
    const company = await t.createTestCompany();
    const output = join(dir, 'template.xlsx');
    const template = await muster(['template', '--output', output], {
      MUSTER_TOKEN: company.token,
    });
    expect(template.code).toBe(0);
    expect(template.stdout).toContain(`Saved the import template to ${output}`);
    const header = cellTexts(await openSheet(output));
    expect(header).toEqual(expect.arrayContaining(['Email', 'userName', 'reference']));
  });
});
