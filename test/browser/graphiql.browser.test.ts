import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ExcelJS from 'exceljs';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { users } from '../../drizzle/tables.js';
import { createTestApp, type TestApp } from '../support/app.js';

/**
 * GraphiQL at /graphql in a real (headless) Chromium with no internet access, used as an admin
 * would: the token on the first screen, a spreadsheet chosen in the Import panel, the wizard's
 * operations run one after the other from the default document (a SYNC: columns decided, rows
 * fixed, the archive limit acknowledged, committed, then undone), the subscription followed in
 * the result pane, the error report link opened; and API tokens made and revoked there.
 * Runs with `npm run test:browser` (vitest.browser.config.ts), not with `npm test`.
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const OUTPUT_DIR = fileURLToPath(new URL('../../test-output/', import.meta.url));
/** The bound on any one wait in the browser (an import stage included). */
const WAIT_MS = 60_000;

let testApp: TestApp;
let baseUrl: string;
let token: string;
let companyId: string;
let companyName: string;
let browser: Browser | null = null;

/** Rejects after `ms` with a message naming what was awaited. */
function bounded<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no end after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

beforeAll(async () => {
  testApp = await createTestApp();
  baseUrl = await testApp.listen();
  companyName = `GraphiQL Browser ${randomBytes(3).toString('hex')}`;
  ({ token, companyId } = await testApp.createTestCompany(companyName));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    // A fresh, temporary user data directory: Playwright makes one for each launch.
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: WAIT_MS,
  });
});

afterAll(async () => {
  await bounded(browser?.close() ?? Promise.resolve(), WAIT_MS, 'closing Chromium').catch(
    (error: unknown) => console.error(error),
  );
  await testApp?.close();
});

/** A page on a new context that may reach the server only; anything else is recorded. */
async function openPage(): Promise<{
  context: BrowserContext;
  page: Page;
  notes: () => string[];
}> {
  if (!browser) throw new Error(`Chromium did not start (${CHROMIUM})`);
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.setDefaultNavigationTimeout(WAIT_MS);
  const external: string[] = [];
  const problems: string[] = [];
  const origin = new URL(baseUrl).origin;
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (new URL(url).origin === origin) return route.continue();
    external.push(url);
    return route.abort('internetdisconnected');
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  return {
    context,
    page,
    notes: () => [...problems, ...external.map((url) => `refused (not the server): ${url}`)],
  };
}

/** Runs `body`, with a screenshot of the page when it fails. */
async function withScreenshots(
  name: string,
  body: (page: Page, notes: () => string[]) => Promise<void>,
): Promise<void> {
  const { context, page, notes } = await openPage();
  await mkdir(OUTPUT_DIR, { recursive: true });
  try {
    await body(page, notes);
  } catch (error) {
    const path = join(OUTPUT_DIR, `${name}-failure.png`);
    await page
      .screenshot({ path, timeout: WAIT_MS })
      .then(() => console.error(`Screenshot of the failure: ${path}`))
      .catch(() => {});
    if (notes().length > 0) console.error(`In the page:\n${notes().join('\n')}`);
    throw error;
  } finally {
    await bounded(context.close(), WAIT_MS, 'closing the browser context').catch(() => {});
  }
}

async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(OUTPUT_DIR, `${name}.png`), timeout: WAIT_MS });
}

/** Opens GraphiQL and goes past its first screen with the token, as an admin would. */
async function signIn(page: Page, secret: string): Promise<void> {
  await page.goto(`${baseUrl}/graphql`, { waitUntil: 'load' });
  await page.getByLabel('API token').fill(secret);
  await page.getByRole('button', { name: 'Open GraphiQL' }).click();
  await page.locator('.graphiql-query-editor .CodeMirror').waitFor({ state: 'visible' });
  // Every change of the result pane, as the admin saw it go by.
  await page.evaluate(() => {
    const pane = document.querySelector('.graphiql-response .CodeMirror') as unknown as {
      CodeMirror: { on(event: string, listener: () => void): void; getValue(): string };
    };
    const seen: string[] = [];
    (window as unknown as { seenResults: string[] }).seenResults = seen;
    pane.CodeMirror.on('change', () => seen.push(pane.CodeMirror.getValue()));
  });
}

/** Which CodeMirror editor: the operations, the variables, or the result. */
type Editor = '.graphiql-query-editor' | '.graphiql-editor-tool' | '.graphiql-response';

function editorValue(page: Page, editor: Editor): Promise<string> {
  return page.evaluate(
    (selector) =>
      (
        document.querySelector(`${selector} .CodeMirror`) as unknown as {
          CodeMirror: { getValue(): string };
        }
      ).CodeMirror.getValue(),
    editor,
  );
}

async function setEditorValue(page: Page, editor: Editor, text: string): Promise<void> {
  await page.evaluate(
    ([selector, value]) =>
      (
        document.querySelector(`${selector} .CodeMirror`) as unknown as {
          CodeMirror: { setValue(text: string): void };
        }
      ).CodeMirror.setValue(value as string),
    [editor, text] as const,
  );
}

/** Puts the cursor in the named operation (as a click there does) and presses Ctrl+Enter. */
async function run(page: Page, operationName: string): Promise<void> {
  await page.evaluate((name) => {
    const editor = (
      document.querySelector('.graphiql-query-editor .CodeMirror') as unknown as {
        CodeMirror: {
          getValue(): string;
          focus(): void;
          setCursor(position: { line: number; ch: number }): void;
          scrollIntoView(position: { line: number; ch: number }, margin: number): void;
        };
      }
    ).CodeMirror;
    const line = editor
      .getValue()
      .split('\n')
      .findIndex((text) => new RegExp(`^(query|mutation|subscription) ${name}\\b`).test(text));
    if (line < 0) throw new Error(`no operation ${name} in the document`);
    editor.focus();
    editor.setCursor({ line: line + 1, ch: 4 });
    editor.scrollIntoView({ line: line + 1, ch: 4 }, 100);
  }, operationName);
  // GraphiQL learns the operation under the cursor from CodeMirror's cursor event through a
  // React update: let it render before running, or it sends no operation name.
  await page.evaluate(
    () => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))),
  );
  await page.waitForTimeout(300);
  await page.keyboard.press('Control+Enter');
}

/** The result pane's JSON once `accept` takes it. */
async function resultWhen(
  page: Page,
  accept: (result: Record<string, any>) => boolean,
  what: string,
): Promise<Record<string, any>> {
  let last = '';
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline) {
    last = await editorValue(page, '.graphiql-response');
    try {
      const result = JSON.parse(last) as Record<string, any>;
      if (accept(result)) return result;
    } catch {
      // Not a whole JSON text yet.
    }
    await page.waitForTimeout(100);
  }
  throw new Error(`${what}: the result pane shows ${last}`);
}

/** Runs FollowImport until the session waits at `stage` (or ends there), then stops it. */
async function follow(page: Page, stage: string): Promise<Record<string, any>[]> {
  await page.evaluate(() => {
    (window as unknown as { seenResults: string[] }).seenResults.length = 0;
  });
  await run(page, 'FollowImport');
  const final = await resultWhen(
    page,
    (result) =>
      result.data?.importSessionUpdated?.stage === stage &&
      result.data.importSessionUpdated.busy === false,
    `FollowImport reaching ${stage}`,
  );
  expect(final.errors).toBeUndefined();
  // Still subscribed unless the session ended: stop it, as the document tells the admin to.
  const stop = page.getByRole('button', { name: 'Stop query' });
  if (await stop.isVisible()) await stop.click();
  await page.getByRole('button', { name: /^Execute query/ }).waitFor();
  const seen = await page.evaluate(
    () => (window as unknown as { seenResults: string[] }).seenResults,
  );
  return seen.flatMap((text) => {
    try {
      return [JSON.parse(text) as Record<string, any>];
    } catch {
      return [];
    }
  });
}

/**
 * 400 good rows ( the first three with a mistyped domain), two
 * new columns, and two bad rows.
 */
async function writeWorkbook(path: string): Promise<{ goodRows: number; badRows: number }> {
  const workbook = new ExcelJS.Workbook();
  const sheet = workbook.addWorksheet('Users');
  sheet.addRow(['Email', 'userName', 'reference', 'Department', 'Shoe size']);
  const goodRows = 400;
  for (let i = 1; i <= goodRows; i++) {
    const domain = i <= 3 ? 'exmaple.com' : 'example.com';
    sheet.addRow([`person${i}@${domain}`, `Person ${i}`, `REF-${i}`, 'Sales', 40 + (i % 6)]);
  }
  sheet.addRow(['not-an-email', 'Bad Email', 'REF-X1', 'Sales', 41]);
  sheet.addRow(['noreference@example.com', 'No Reference', '', 'Sales', 42]);
  await writeFile(path, Buffer.from(await workbook.xlsx.writeBuffer()));
  return { goodRows, badRows: 2 };
}

describe('GraphiQL in Chromium', () => {
  it('takes an admin through a whole import: token, file, every stage, the error report', async () => {
    await withScreenshots('graphiql-import', async (page, notes) => {
      // The first screen without a token says where to put it, and nothing fails behind it.
      await page.goto(`${baseUrl}/graphql`, { waitUntil: 'load' });
      await expect
        .poll(() => page.locator('main').textContent())
        .toContain('Where do I get a token?');
      expect(await page.locator('.graphiql-container').count()).toBe(0);
      await screenshot(page, 'graphiql-first-screen');

      await signIn(page, token);
      await expect
        .poll(() => page.getByTestId('signed-in').textContent())
        .toContain(`${companyName} · ADMIN`);

      // The schema loaded with the token, without a re-fetch: the Docs show the mutations.
      await page.getByRole('button', { name: 'Show Documentation Explorer' }).click();
      await page.locator('.graphiql-doc-explorer').getByText('Mutation').first().waitFor();
      await page.locator('.graphiql-doc-explorer').getByText('Mutation').first().click();
      await page.locator('.graphiql-doc-explorer').getByText('startImport').first().waitFor();
      await page.getByRole('button', { name: 'Show Import' }).click();

      // The wizard is there: the stages' operations in order, with their variables.
      const document = await editorValue(page, '.graphiql-query-editor');
      const operations = [...document.matchAll(/^(?:query|mutation|subscription) (\w+)/gm)].map(
        (match) => match[1],
      );
      expect(operations).toEqual([
        'StartImport',
        'FollowImport',
        'ColumnChoices',
        'ConfirmColumns',
        'ImportErrors',
        'FixRows',
        'ReplaceInColumn',
        'ContinueFromValidation',
        'ReviewRows',
        'ContinueFromReview',
        'GroupAssignment',
        'CommitImport',
        'CancelImport',
        'ImportChanges',
        'RevertImport',
      ]);
      expect(JSON.parse(await editorValue(page, '.graphiql-editor-tool'))).toMatchObject({
        file: null,
        mode: 'ADD_AND_UPDATE',
        acknowledgeArchive: false,
      });
      /** Changes some of the variables, as the admin does in the variables editor. */
      const setVariables = async (changes: Record<string, unknown>) => {
        const variables = JSON.parse(await editorValue(page, '.graphiql-editor-tool'));
        await setEditorValue(
          page,
          '.graphiql-editor-tool',
          JSON.stringify({ ...variables, ...changes }, null, 2),
        );
      };

      // Ten users the file does not contain: a SYNC archives them all, past the limit.
      const leavers = 10;
      await testApp.db.insert(users).values(
        Array.from({ length: leavers }, (_, i) => ({
          companyId,
          email: `leaver${i + 1}@example.com`,
          userName: `Leaver ${i + 1}`,
          reference: `OLD-${i + 1}`,
        })),
      );
      await setVariables({ mode: 'SYNC' });

      // Stage 1: the spreadsheet, picked in the Import panel, goes with StartImport.
      const workbookPath = join(OUTPUT_DIR, 'graphiql-import.xlsx');
      const { goodRows, badRows } = await writeWorkbook(workbookPath);
      await page.locator('#muster-file').setInputFiles(workbookPath);
      await expect
        .poll(() => page.getByTestId('chosen-file').textContent())
        .toContain('graphiql-import.xlsx');
      const uploaded = page.waitForRequest(
        (request) =>
          request.method() === 'POST' &&
          (request.headers()['content-type'] ?? '').startsWith('multipart/form-data'),
      );
      await run(page, 'StartImport');
      const upload = await uploaded;
      expect(upload.headers()['x-graphql-yoga-csrf']).toBeDefined();
      const started = await resultWhen(page, (r) => Boolean(r.data?.startImport), 'StartImport');
      expect(started.data?.startImport).toMatchObject({
        __typename: 'ImportSession',
        stage: 'UPLOAD',
        fileName: 'graphiql-import.xlsx',
        mode: 'SYNC',
      });
      const sessionId = started.data?.startImport.id as string;
      // The session's id went into the variables for the next operations.
      await expect
        .poll(async () => JSON.parse(await editorValue(page, '.graphiql-editor-tool')).sessionId)
        .toBe(sessionId);

      // The subscription shows the session waiting at the new columns (the read may be over
      // before it starts: its progress is seen at the groups below).
      const reading = await follow(page, 'CUSTOM_FIELDS');
      const columns = reading.at(-1)?.data?.importSessionUpdated.columns as {
        header: string;
        status: string;
      }[];
      expect(columns.filter((c) => c.status === 'NEW').map((c) => c.header)).toEqual([
        'Department',
        'Shoe size',
      ]);
      await screenshot(page, 'graphiql-import-custom-fields');

      // Stage 2: the columns with their suggestions; add Department, ignore Shoe size.
      await run(page, 'ColumnChoices');
      const choices = await resultWhen(
        page,
        (r) => Boolean(r.data?.importSession?.columns),
        'ColumnChoices',
      );
      expect(
        choices.data?.importSession.columns.map((c: { header: string; status: string }) => [
          c.header,
          c.status,
        ]),
      ).toEqual([
        ['Email', 'MATCHED'],
        ['userName', 'MATCHED'],
        ['reference', 'MATCHED'],
        ['Department', 'NEW'],
        ['Shoe size', 'NEW'],
      ]);
      await setVariables({ columns: [{ header: 'Department', action: 'ADD' }] });
      await run(page, 'ConfirmColumns');
      const confirmed = await resultWhen(
        page,
        (r) => Boolean(r.data?.confirmColumns),
        'ConfirmColumns',
      );
      expect(confirmed.data?.confirmColumns.__typename).toBe('ImportSession');
      await follow(page, 'VALIDATION');

      // Stage 3: the errors, and the error report's link in the Import panel.
      await run(page, 'ImportErrors');
      const errors = await resultWhen(page, (r) => Boolean(r.data?.importSession), 'ImportErrors');
      expect(errors.data?.importSession.invalidRowCount).toBe(badRows);
      expect(errors.data?.importSession.validRowCount).toBe(goodRows);
      const link = page.locator('.muster-downloads a', {
        hasText: errors.data?.importSession.errorReport.fileName,
      });
      await link.waitFor();
      await screenshot(page, 'graphiql-import-errors');
      const href = (await link.getAttribute('href')) as string;
      expect(href).toBe(errors.data?.importSession.errorReport.url);
      const report = await page.context().request.get(href);
      expect(report.status()).toBe(200);
      expect(report.headers()['content-type']).toContain('spreadsheetml');
      const reportBook = new ExcelJS.Workbook();
      await reportBook.xlsx.load((await report.body()) as unknown as ArrayBuffer);
      const reportText = JSON.stringify(reportBook.worksheets[0]?.getSheetValues());
      expect(reportText).toContain('not-an-email');

      // Fix the bad email in place, and the mistyped domain with the default find and replace.
      const badEmail = errors.data?.importSession.errors.edges.find(
        (edge: { node: { value: string } }) => edge.node.value === 'not-an-email',
      ).node.rowNumber as number;
      await setVariables({
        rows: [{ rowNumber: badEmail, values: [{ header: 'Email', value: 'fixed@example.com' }] }],
      });
      await run(page, 'FixRows');
      const fixed = await resultWhen(page, (r) => Boolean(r.data?.updateImportRows), 'FixRows');
      expect(fixed.data?.updateImportRows).toMatchObject({
        __typename: 'ImportSession',
        invalidRowCount: badRows - 1,
      });
      await run(page, 'ReplaceInColumn');
      const replaced = await resultWhen(
        page,
        (r) => Boolean(r.data?.replaceInColumn),
        'ReplaceInColumn',
      );
      expect(replaced.data?.replaceInColumn.__typename).toBe('ImportSession');

      await run(page, 'ContinueFromValidation');
      await resultWhen(page, (r) => Boolean(r.data?.continueImport), 'ContinueFromValidation');
      await follow(page, 'REVIEW');

      // Stage 4: the review shows the users the SYNC archives, past the limit: acknowledged.
      await run(page, 'ReviewRows');
      const review = await resultWhen(page, (r) => Boolean(r.data?.importSession), 'ReviewRows');
      expect(review.data?.importSession).toMatchObject({
        mode: 'SYNC',
        actionCounts: { create: goodRows + 1, skip: badRows - 1, archive: leavers },
        archiveWarning: { archiveCount: leavers, activeUserCount: leavers },
      });
      expect(review.data?.importSession.rows.edges[0].node.action).toBe('CREATE');
      await run(page, 'ContinueFromReview');
      const refused = await resultWhen(
        page,
        (r) => Boolean(r.data?.continueImport),
        'ContinueFromReview',
      );
      expect(refused.data?.continueImport.__typename).toBe('ArchiveLimitExceededError');
      await setVariables({ acknowledgeArchive: true });
      await run(page, 'ContinueFromReview');
      await resultWhen(
        page,
        (r) => r.data?.continueImport?.__typename === 'ImportSession',
        'ContinueFromReview acknowledged',
      );
      await follow(page, 'GROUP_ASSIGNMENT');

      // The subscription shows the session as it works: a rule added meanwhile (by another
      // admin) has the groups computed again while FollowImport is running.
      await page.evaluate(() => {
        (window as unknown as { seenResults: string[] }).seenResults.length = 0;
      });
      await run(page, 'FollowImport');
      await resultWhen(
        page,
        (r) => r.data?.importSessionUpdated?.stage === 'GROUP_ASSIGNMENT',
        'FollowImport at GROUP_ASSIGNMENT',
      );
      const group = await testApp.request(
        token,
        'mutation { createTrainingGroup(input: { name: "Nobody" }) { ... on TrainingGroup { id } } }',
      );
      const rule = await testApp.request(
        token,
        `mutation($group: ID!) { createDistributionRule(input: { fieldKey: "email",
          operator: ENDS_WITH, value: "@nobody.example", trainingGroupId: $group }) { __typename } }`,
        { group: group.data?.createTrainingGroup.id },
      );
      expect(rule.data?.createDistributionRule.__typename).toBe('DistributionRule');
      // Busy while the groups are computed again, then waiting again: stopped, as before.
      await expect
        .poll(
          async () => {
            const seen = (
              await page.evaluate(
                () => (window as unknown as { seenResults: string[] }).seenResults,
              )
            ).flatMap((text) => {
              try {
                return [JSON.parse(text).data?.importSessionUpdated?.busy as boolean];
              } catch {
                return [];
              }
            });
            return seen.indexOf(true) >= 0 && seen.lastIndexOf(false) > seen.indexOf(true);
          },
          { timeout: WAIT_MS },
        )
        .toBe(true);
      const stop = page.getByRole('button', { name: 'Stop query' });
      if (await stop.isVisible()) await stop.click();
      await page.getByRole('button', { name: /^Execute query/ }).waitFor();

      // Stage 5: the groups, then the commit, followed to COMPLETED (the subscription ends).
      await run(page, 'GroupAssignment');
      const groups = await resultWhen(
        page,
        (r) => Boolean(r.data?.importSession?.groupAssignment),
        'GroupAssignment',
      );
      expect(
        groups.data?.importSession.groupAssignment.reduce(
          (sum: number, group: { userCount: number }) => sum + group.userCount,
          0,
        ),
      ).toBe(goodRows + 1);
      await run(page, 'CommitImport');
      await resultWhen(page, (r) => Boolean(r.data?.continueImport), 'CommitImport');
      const committed = await follow(page, 'COMPLETED');
      expect(committed.at(-1)?.data?.importSessionUpdated.result).toEqual({
        created: goodRows + 1,
        updated: 0,
        unchanged: 0,
        skipped: badRows - 1,
        archived: leavers,
        restored: 0,
      });
      await screenshot(page, 'graphiql-import-completed');
      /** The active users whose email contains `search`: how many, and the first emails. */
      const activeUsers = async (search: string) => {
        const found = await testApp.request(
          token,
          'query($search: String) { users(first: 20, search: $search) { totalCount edges { node { email } } } }',
          { search },
        );
        const list = found.data?.users;
        return {
          count: list.totalCount as number,
          emails: list.edges.map((edge: { node: { email: string } }) => edge.node.email),
        };
      };
      expect((await activeUsers('@example.com')).count).toBe(goodRows + 1);
      expect((await activeUsers('fixed@example.com')).emails).toEqual(['fixed@example.com']);
      expect((await activeUsers('person1@example.com')).emails).toEqual(['person1@example.com']);
      expect((await activeUsers('exmaple')).count).toBe(0);

      // After the import: what it did to each user, then undone.
      await run(page, 'ImportChanges');
      const changes = await resultWhen(
        page,
        (r) => Boolean(r.data?.importSession?.changes),
        'ImportChanges',
      );
      expect(changes.data?.importSession.changes.edges).toHaveLength(50);
      await run(page, 'RevertImport');
      const reverting = await resultWhen(
        page,
        (r) => Boolean(r.data?.revertImport),
        'RevertImport',
      );
      expect(reverting.data?.revertImport).toMatchObject({
        __typename: 'ImportSession',
        busy: true,
      });
      const reverted = await follow(page, 'REVERTED');
      expect(reverted.at(-1)?.data?.importSessionUpdated.revertResult).toEqual({
        removed: goodRows + 1,
        updated: 0,
        unarchived: leavers,
        rearchived: 0,
        conflicts: 0,
      });
      const left = await activeUsers('@example.com');
      expect(left.count).toBe(leavers);
      expect(left.emails.every((email: string) => email.startsWith('leaver'))).toBe(true);
      expect(notes()).toEqual([]);
    });
  });

  it('makes a VIEWER token in the API tokens tab, and revokes it there', async () => {
    await withScreenshots('graphiql-tokens', async (page, notes) => {
      await signIn(page, token);
      await page.getByRole('tab', { name: 'ApiTokens' }).click();
      await expect
        .poll(() => editorValue(page, '.graphiql-query-editor'))
        .toContain('mutation CreateApiToken');
      await expect
        .poll(async () => JSON.parse(await editorValue(page, '.graphiql-editor-tool')))
        .toMatchObject({ role: 'VIEWER', label: 'reporting' });

      await run(page, 'CreateApiToken');
      const created = await resultWhen(
        page,
        (r) => Boolean(r.data?.createApiToken),
        'CreateApiToken',
      );
      expect(created.data?.createApiToken).toMatchObject({
        __typename: 'CreatedApiToken',
        token: { role: 'VIEWER', label: 'reporting' },
      });
      const secret = created.data?.createApiToken.secret as string;
      const tokenId = created.data?.createApiToken.token.id as string;
      expect((await testApp.request(secret, '{ viewer { role } }')).data?.viewer.role).toBe(
        'VIEWER',
      );

      // Listed, without its secret.
      await run(page, 'ApiTokens');
      const listed = await resultWhen(page, (r) => Boolean(r.data?.apiTokens), 'ApiTokens');
      expect(listed.data?.apiTokens.map((t: { id: string }) => t.id)).toContain(tokenId);
      expect(JSON.stringify(listed)).not.toContain(secret);
      await screenshot(page, 'graphiql-tokens');

      const variables = JSON.parse(await editorValue(page, '.graphiql-editor-tool'));
      await setEditorValue(
        page,
        '.graphiql-editor-tool',
        JSON.stringify({ ...variables, tokenId }, null, 2),
      );
      await run(page, 'RevokeApiToken');
      const revoked = await resultWhen(
        page,
        (r) => Boolean(r.data?.revokeApiToken),
        'RevokeApiToken',
      );
      expect(revoked.data?.revokeApiToken).toMatchObject({ __typename: 'ApiToken', id: tokenId });
      expect(revoked.data?.revokeApiToken.revokedAt).toEqual(expect.any(String));
      await expect
        .poll(async () => (await testApp.request(secret, '{ viewer { role } }')).status)
        .toBe(401);

      // A revoked or wrong token on the first screen is refused there, in words.
      await page.getByRole('button', { name: 'Use another token' }).click();
      await page.getByLabel('API token').fill(secret);
      await page.getByRole('button', { name: 'Open GraphiQL' }).click();
      await expect
        .poll(() => page.getByRole('alert').textContent())
        .toContain('not valid or was revoked');
      expect(notes()).toEqual([]);
    });
  });
});
