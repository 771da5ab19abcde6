import { sql } from 'drizzle-orm';
import ExcelJS from 'exceljs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ContinueImportDocument,
  ImportReviewCountsDocument,
  ImportSessionDocument,
} from '../../client/index.js';
import { createTestApp, type TestApp, type TestCompany } from '../support/app.js';
import { importDriver, userRows } from '../support/sync-fixtures.js';

// Each case runs several whole imports: on a loaded machine that takes more than the
// default minute.
/** SYNC imports through the API, on PGlite or (DATABASE_URL) Postgres, with real workbooks. */

let t: TestApp;
let baseUrl: string;
let drive: ReturnType<typeof importDriver>;
beforeAll(async () => {
  t = await createTestApp();
  baseUrl = await t.listen();
  drive = importDriver(t, baseUrl);
});
afterAll(async () => {
  await t.close();
});

const REVIEW = `query($id: ID!) { importSession(id: $id) {
  stage mode
  actionCounts { create update unchanged restore skip archive }
  archiveWarning { archiveCount activeUserCount limitPercent }
  usersToArchive(first: 100) { edges { node { email status } } }
} }`;

async function review(company: TestCompany, id: string) {
  const result = await t.request(company.token, REVIEW, { id });
  expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
  return result.data?.importSession;
}

const emails = (users: { email: string }[]) => users.map((user) => user.email).sort();

/** The imported-users report's rows as text (Row, the file's columns, Action, group). */
async function reportRows(company: TestCompany, id: string): Promise<string[][]> {
  const result = await t.request(
    company.token,
    'query($id: ID!) { importSession(id: $id) { importedUsersReport { url } } }',
    { id },
  );
  const link = new URL(result.data?.importSession.importedUsersReport.url);
  link.host = new URL(baseUrl).host;
  const response = await fetch(link);
  expect(response.status).toBe(200);
  const workbook = new ExcelJS.Workbook();
  await workbook.xlsx.load(await response.arrayBuffer());
  const rows: string[][] = [];
  workbook.worksheets[0]?.eachRow((row) => {
    rows.push(Array.from({ length: 6 }, (_, index) => row.getCell(index + 1).text));
  });
  return rows;
}

describe('a SYNC import', () => {
  it('archives the active users the file lacks, and only in its own company', async () => {
    const company = await t.createTestCompany();
    const other = await t.createTestCompany();
    await drive.importRows(company, userRows(1, 20));
    await drive.importRows(other, userRows(1, 20));

    // user20 is gone from the file; user19's row has an error but user19 is in the file.
    const rows = userRows(1, 18);
    rows.push(['user19@example.com', '', 'R19']);
    const atValidation = await drive.start(company, rows, 'SYNC');
    expect(atValidation).toMatchObject({ stage: 'VALIDATION', mode: 'SYNC', invalidRowCount: 1 });
    await drive.continueFrom(company, atValidation.id, 'VALIDATION');
    const atReview = await drive.waitUntilIdle(company, atValidation.id);
    expect(atReview.stage).toBe('REVIEW');
    expect(await review(company, atReview.id)).toEqual({
      stage: 'REVIEW',
      mode: 'SYNC',
      actionCounts: { create: 0, update: 0, unchanged: 18, restore: 0, skip: 1, archive: 1 },
      archiveWarning: null,
      usersToArchive: { edges: [{ node: { email: 'user20@example.com', status: 'ACTIVE' } }] },
    });

    const report = await reportRows(company, atReview.id);
    expect(report.at(-1)).toEqual(['', 'user20@example.com', 'User 20', 'R20', 'ARCHIVE', '']);
    expect(report.filter((row) => row[4] === 'ARCHIVE')).toHaveLength(1);

    // 1 of 20 is within the 10 % limit: no acknowledgement needed.
    const done = await drive.commitFrom(company, atReview);
    expect(done.stage).toBe('COMPLETED');
    expect(done.result).toMatchObject({ created: 0, updated: 0, archived: 1, restored: 0 });
    const active = await drive.listUsers(company);
    expect(active).toHaveLength(19);
    expect(emails(active)).not.toContain('user20@example.com');
    const archived = await drive.listUsers(company, 'ARCHIVED');
    expect(archived).toMatchObject([
      { email: 'user20@example.com', userName: 'User 20', reference: 'R20', status: 'ARCHIVED' },
    ]);
    expect(archived[0].archivedAt).toEqual(expect.any(String));
    // Once committed, the report lists the users the SYNC archived.
    expect((await reportRows(company, atReview.id)).at(-1)).toEqual([
      '',
      'user20@example.com',
      'User 20',
      'R20',
      'ARCHIVE',
      '',
    ]);
    expect(await drive.listUsers(other)).toHaveLength(20);
  }, 180_000);

  it('leaves the users the file lacks alone in the default mode', async () => {
    const company = await t.createTestCompany();
    await drive.importRows(company, userRows(1, 10));
    const done = await drive.importRows(company, userRows(1, 2));
    expect(done.mode).toBe('ADD_AND_UPDATE');
    expect(done.result).toMatchObject({ archived: 0 });
    expect(await drive.listUsers(company)).toHaveLength(10);
  }, 180_000);

  it('stops at REVIEW past the archive limit until continueImport acknowledges it', async () => {
    const company = await t.createTestCompany();
    await drive.importRows(company, userRows(1, 10));
    const atReview = await drive.start(company, userRows(1, 8), 'SYNC');
    expect(atReview.stage).toBe('REVIEW');
    expect((await review(company, atReview.id)).archiveWarning).toEqual({
      archiveCount: 2,
      activeUserCount: 10,
      limitPercent: 10,
    });

    const refused = await drive.continueFrom(company, atReview.id, 'REVIEW');
    expect(refused).toMatchObject({
      __typename: 'ArchiveLimitExceededError',
      code: 'ARCHIVE_LIMIT_EXCEEDED',
      archiveCount: 2,
      activeUserCount: 10,
      limitPercent: 10,
    });
    expect((await review(company, atReview.id)).stage).toBe('REVIEW');
    expect(await drive.listUsers(company)).toHaveLength(10);

    const acknowledged = await drive.continueFrom(company, atReview.id, 'REVIEW', true);
    expect(acknowledged).toMatchObject({ __typename: 'ImportSession', stage: 'GROUP_ASSIGNMENT' });
    const atGroups = await drive.waitUntilIdle(company, atReview.id);
    expect(atGroups).toMatchObject({ stage: 'GROUP_ASSIGNMENT', archiveAcknowledged: true });
    expect((await review(company, atReview.id)).archiveWarning).toBeNull();
    const done = await drive.commitFrom(company, atGroups);
    expect(done.result).toMatchObject({ archived: 2 });
    expect(emails(await drive.listUsers(company, 'ARCHIVED'))).toEqual([
      'user10@example.com',
      'user9@example.com',
    ]);
  }, 180_000);

  it('never archives anyone for a file without a valid row', async () => {
    const company = await t.createTestCompany();
    await drive.importRows(company, userRows(1, 5));
    const atValidation = await drive.start(company, [['not-an-email', 'X', 'RX']], 'SYNC');
    expect(atValidation).toMatchObject({ stage: 'VALIDATION', validRowCount: 0 });
    const done = await drive.commitFrom(company, atValidation);
    expect(done).toMatchObject({ stage: 'COMPLETED', result: { archived: 0 } });
    expect(await drive.listUsers(company)).toHaveLength(5);
  }, 180_000);

  it('restores an archived user that a later file contains, with the row as RESTORE', async () => {
    const company = await t.createTestCompany();
    await drive.importRows(company, userRows(1, 10));
    await drive.importRows(company, userRows(1, 9), 'SYNC');
    expect(emails(await drive.listUsers(company, 'ARCHIVED'))).toEqual(['user10@example.com']);

    const rows = userRows(1, 9);
    rows.push(['USER10@example.com', 'User 10 back', 'R10']);
    const atReview = await drive.start(company, rows, 'SYNC');
    const listed = await t.request(
      company.token,
      `query($id: ID!) { importSession(id: $id) {
        actionCounts { restore archive unchanged }
        rows(filter: { action: RESTORE }) { edges { node { rowNumber action
          changes { field { key } from to } } } } } }`,
      { id: atReview.id },
    );
    expect(listed.data?.importSession).toEqual({
      actionCounts: { restore: 1, archive: 0, unchanged: 9 },
      rows: {
        edges: [
          {
            node: {
              rowNumber: 11,
              action: 'RESTORE',
              changes: [{ field: { key: 'userName' }, from: 'User 10', to: 'User 10 back' }],
            },
          },
        ],
      },
    });
    const done = await drive.commitFrom(company, atReview);
    expect(done.result).toMatchObject({ restored: 1, updated: 0, archived: 0 });
    const back = (await drive.listUsers(company)).find(
      (user) => user.email === 'user10@example.com',
    );
    expect(back).toMatchObject({ status: 'ACTIVE', archivedAt: null, userName: 'User 10 back' });
    expect(await drive.listUsers(company, 'ARCHIVED')).toEqual([]);
  }, 180_000);

  it('checks the archive limit again at the commit when users joined after the check', async () => {
    const company = await t.createTestCompany();
    await drive.importRows(company, userRows(1, 10));
    // 1 of 10 is within the 10 % limit: no acknowledgement asked.
    const atReview = await drive.start(company, userRows(1, 9), 'SYNC');
    expect(atReview.stage).toBe('REVIEW');
    await drive.continueFrom(company, atReview.id, 'REVIEW');
    expect(await drive.waitUntilIdle(company, atReview.id)).toMatchObject({
      stage: 'GROUP_ASSIGNMENT',
      archiveAcknowledged: false,
    });

    // Right after continueImport checked the limit, five users join the company that the
    // file does not contain (as another import committing then would): 6 of 15 to archive.
    await t.db.execute(
      sql.raw(`create function test_users_join() returns trigger language plpgsql as $$
        begin
          insert into users (company_id, email, user_name, reference)
            select new.company_id, 'late' || n || '@example.com', 'Late ' || n, 'L' || n
            from generate_series(1, 5) n;
          update companies set users_version = users_version + 1 where id = new.company_id;
          return new;
        end $$`),
    );
    await t.db.execute(
      sql.raw(`create trigger test_users_join after update of step on import_sessions for each row
          when (new.step = 'COMMIT' and old.step <> 'COMMIT'
            and new.company_id = '${company.companyId}')
          execute function test_users_join();`),
    );
    try {
      const continued = await t.send(company.token, ContinueImportDocument, {
        input: { sessionId: atReview.id, stage: 'GROUP_ASSIGNMENT' },
      });
      expect(continued.data?.continueImport).toMatchObject({ __typename: 'ImportSession' });
      await drive.waitUntilIdle(company, atReview.id);
    } finally {
      await t.db.execute(sql.raw('drop trigger test_users_join on import_sessions'));
      await t.db.execute(sql.raw('drop function test_users_join()'));
    }

    // The commit stopped back at the groups, nobody archived, with the typed warning.
    const stopped = await t.send(company.token, ImportSessionDocument, { id: atReview.id });
    expect(stopped.data?.importSession).toMatchObject({
      stage: 'GROUP_ASSIGNMENT',
      busy: false,
      result: null,
      failure: null,
      archiveAcknowledged: false,
    });
    const counts = await t.send(company.token, ImportReviewCountsDocument, { id: atReview.id });
    expect(counts.data?.importSession).toMatchObject({
      actionCounts: { archive: 6 },
      archiveWarning: { archiveCount: 6, activeUserCount: 15, limitPercent: 10 },
    });
    expect(await drive.listUsers(company)).toHaveLength(15);
    expect(await drive.listUsers(company, 'ARCHIVED')).toEqual([]);

    const refused = await t.send(company.token, ContinueImportDocument, {
      input: { sessionId: atReview.id, stage: 'GROUP_ASSIGNMENT' },
    });
    expect(refused.data?.continueImport).toMatchObject({
      __typename: 'ArchiveLimitExceededError',
      code: 'ARCHIVE_LIMIT_EXCEEDED',
      archiveCount: 6,
      activeUserCount: 15,
    });
    const acknowledged = await t.send(company.token, ContinueImportDocument, {
      input: { sessionId: atReview.id, stage: 'GROUP_ASSIGNMENT', acknowledgeArchive: true },
    });
    expect(acknowledged.data?.continueImport.__typename).toBe('ImportSession');
    const done = await drive.waitUntilIdle(company, atReview.id);
    expect(done).toMatchObject({ stage: 'COMPLETED', result: { archived: 6 } });
    expect(emails(await drive.listUsers(company))).toEqual(
      emails(userRows(1, 9).map(([email]) => ({ email: email as string }))),
    );
  }, 180_000);
});
