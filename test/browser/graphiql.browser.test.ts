import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ExcelJS from 'exceljs';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';

/**
 * GraphiQL at /graphql in a real (headless) Chromium with no internet access, used as an admin
 * would: the token on the first screen, a spreadsheet chosen in the Import panel, the wizard's
 * operations run one after the other from the default document, the subscription followed in
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
  ({ token } = await testApp.createTestCompany(companyName));
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

/** 400 good rows (so that reading takes a while), two new columns, and two bad rows. */
async function writeWorkbook(path: string): Promise<{ goodRows: number; badRows: number }> {
  const workbook = new ExcelJS.Workbook();
  const sheet = workbook.addWorksheet('Users');
  sheet.addRow(['Email', 'userName', 'reference', 'Department', 'Shoe size']);
  const goodRows = 400;
  for (let i = 1; i <= goodRows; i++) {
    sheet.addRow([`person${i}@example.com`, `Person ${i}`, `REF-${i}`, 'Sales', 40 + (i % 6)]);
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
        'ConfirmCustomFields',
        'ImportErrors',
        'ContinueFromValidation',
        'ReviewRows',
        'ContinueFromReview',
        'GroupAssignment',
        'CommitImport',
        'CancelImport',
      ]);
      expect(JSON.parse(await editorValue(page, '.graphiql-editor-tool'))).toMatchObject({
        file: null,
        addToDatabase: [],
      });

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
      });
      const sessionId = started.data?.startImport.id as string;
      // The session's id went into the variables for the next operations.
      await expect
        .poll(async () => JSON.parse(await editorValue(page, '.graphiql-editor-tool')).sessionId)
        .toBe(sessionId);

      // The subscription shows the session as it works, then waiting at the new columns.
      const reading = await follow(page, 'CUSTOM_FIELDS');
      expect(reading.length).toBeGreaterThan(1);
      expect(reading.some((r) => r.data?.importSessionUpdated?.busy === true)).toBe(true);
      const columns = reading.at(-1)?.data?.importSessionUpdated.columns as {
        header: string;
        status: string;
      }[];
      expect(columns.filter((c) => c.status === 'NEW').map((c) => c.header)).toEqual([
        'Department',
        'Shoe size',
      ]);
      await screenshot(page, 'graphiql-import-custom-fields');

      // Stage 2: add Department as a custom field, ignore Shoe size.
      const variables = JSON.parse(await editorValue(page, '.graphiql-editor-tool'));
      await setEditorValue(
        page,
        '.graphiql-editor-tool',
        JSON.stringify({ ...variables, addToDatabase: ['Department'] }, null, 2),
      );
      await run(page, 'ConfirmCustomFields');
      const confirmed = await resultWhen(
        page,
        (r) => Boolean(r.data?.confirmCustomFields),
        'ConfirmCustomFields',
      );
      expect(confirmed.data?.confirmCustomFields.__typename).toBe('ImportSession');
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

      await run(page, 'ContinueFromValidation');
      await resultWhen(page, (r) => Boolean(r.data?.continueImport), 'ContinueFromValidation');
      await follow(page, 'REVIEW');

      // Stage 4: review, then on.
      await run(page, 'ReviewRows');
      const review = await resultWhen(page, (r) => Boolean(r.data?.importSession), 'ReviewRows');
      expect(review.data?.importSession.rows.edges[0].node.action).toBe('CREATE');
      await run(page, 'ContinueFromReview');
      await resultWhen(page, (r) => Boolean(r.data?.continueImport), 'ContinueFromReview');
      await follow(page, 'GROUP_ASSIGNMENT');

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
      ).toBe(goodRows);
      await run(page, 'CommitImport');
      await resultWhen(page, (r) => Boolean(r.data?.continueImport), 'CommitImport');
      const committed = await follow(page, 'COMPLETED');
      expect(committed.at(-1)?.data?.importSessionUpdated.result).toEqual({
        created: goodRows,
        updated: 0,
        unchanged: 0,
        skipped: badRows,
      });
      await screenshot(page, 'graphiql-import-completed');

      const users = await testApp.request(
        token,
        `{ users(first: 5, search: "person${goodRows}@example.com") { edges { node { email } } } }`,
      );
      expect(users.data?.users.edges).toEqual([
        { node: { email: `person${goodRows}@example.com` } },
      ]);
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
