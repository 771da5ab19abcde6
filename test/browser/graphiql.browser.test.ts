import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';

/**
 * GraphiQL at /graphql in a real (headless) Chromium, with no internet access: the page must
 * render from the server alone, take a token in its headers editor, run a query and show the
 * result. Runs with `npm run test:browser` (vitest.browser.config.ts), not with `npm test`.
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const OUTPUT_DIR = fileURLToPath(new URL('../../test-output/', import.meta.url));
const SCREENSHOT = join(OUTPUT_DIR, 'graphiql.png');
const FAILURE_SCREENSHOT = join(OUTPUT_DIR, 'graphiql-failure.png');
/** The bound on any one wait in the browser. */
const WAIT_MS = 30_000;

const QUERY = '{ viewer { role company { name } } }';

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

/** Replaces the whole text of the Monaco editor inside `editor` with `text`, one line. */
async function replaceEditorText(page: Page, editor: string, text: string): Promise<void> {
  const lines = page.locator(`${editor} .monaco-editor .view-lines`);
  await lines.click({ timeout: WAIT_MS });
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.press('Delete');
  // One input event for the whole text: typed key by key, the editor would close brackets and
  // quotes by itself.
  await page.keyboard.insertText(text);
  // Back to the start of the line, so that a screenshot shows it from there.
  await page.keyboard.press('Home');
}

/** What a Monaco editor inside `selector` shows, with its non-breaking spaces made plain. */
async function editorText(page: Page, selector: string): Promise<string> {
  const text = await page.locator(`${selector} .monaco-editor .view-lines`).textContent({
    timeout: WAIT_MS,
  });
  return (text ?? '').replace(/\u00a0/g, ' ');
}

describe('GraphiQL in Chromium', () => {
  it('renders offline, takes a token in its headers editor and shows a query result', async () => {
    if (!browser) throw new Error(`Chromium did not start (${CHROMIUM})`);
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT_MS);
    page.setDefaultNavigationTimeout(WAIT_MS);

    // Nothing but the server: any other request (a CDN, a font) is refused and recorded.
    const external: string[] = [];
    const origin = new URL(baseUrl).origin;
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (new URL(url).origin === origin) return route.continue();
      external.push(url);
      return route.abort('internetdisconnected');
    });
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
    });

    try {
      // GraphiQL rendered: its query editor and run button are there. A script error before
      // then (as when its code was to come from a CDN) fails at once.
      const scriptFailed = new Promise<never>((_, reject) => {
        page.once('pageerror', (error) =>
          reject(new Error(`GraphiQL did not render: ${error.message}`)),
        );
      });
      scriptFailed.catch(() => {});
      await page.goto(`${baseUrl}/graphql`, { waitUntil: 'load' });
      await Promise.race([
        page.locator('.graphiql-query-editor .monaco-editor').waitFor({ state: 'visible' }),
        scriptFailed,
      ]);
      await page.locator('.graphiql-execute-button').waitFor({ state: 'visible' });

      // The server pre-fills the headers editor with a placeholder: put the token there.
      await page.getByRole('button', { name: 'Headers' }).click();
      const headersEditor = '.graphiql-editor-tool .graphiql-editor:visible';
      await expect
        .poll(() => editorText(page, headersEditor), { timeout: WAIT_MS })
        .toContain('<paste your token here>');
      await replaceEditorText(
        page,
        headersEditor,
        JSON.stringify({ Authorization: `Bearer ${token}` }),
      );
      await expect
        .poll(() => editorText(page, headersEditor), { timeout: WAIT_MS })
        .toContain(token);

      await replaceEditorText(page, '.graphiql-query-editor', QUERY);
      await expect
        .poll(() => editorText(page, '.graphiql-query-editor'), { timeout: WAIT_MS })
        .toContain('company { name }');

      // Run it with the run button. GraphiQL sends the query without its spaces.
      const answered = page.waitForResponse(
        (response) =>
          response.url().startsWith(`${baseUrl}/graphql`) &&
          response.request().method() === 'POST' &&
          (response.request().postData() ?? '').replace(/\s/g, '').includes('company{name}'),
        { timeout: WAIT_MS },
      );
      await page.locator('.graphiql-execute-button').click();
      const response = await answered;
      expect(response.request().headers().authorization).toBe(`Bearer ${token}`);
      expect(response.status()).toBe(200);
      expect(await response.json()).toEqual({
        data: { viewer: { role: 'ADMIN', company: { name: companyName } } },
      });

      // The result pane shows it.
      await expect
        .poll(() => editorText(page, '.graphiql-response'), { timeout: WAIT_MS })
        .toContain(companyName);
      const result = await editorText(page, '.graphiql-response');
      expect(result).toContain('"role": "ADMIN"');
      expect(result).toContain(`"name": "${companyName}"`);
      expect(external).toEqual([]);

      await mkdir(OUTPUT_DIR, { recursive: true });
      await page.screenshot({ path: SCREENSHOT, timeout: WAIT_MS });
      console.log(`GraphiQL screenshot: ${SCREENSHOT}`);
    } catch (error) {
      await mkdir(OUTPUT_DIR, { recursive: true });
      await page
        .screenshot({ path: FAILURE_SCREENSHOT, timeout: WAIT_MS })
        .then(() => console.error(`GraphiQL screenshot of the failure: ${FAILURE_SCREENSHOT}`))
        .catch(() => {});
      const notes = [...problems, ...external.map((url) => `refused (not the server): ${url}`)];
      if (notes.length > 0) console.error(`In the page:\n${notes.join('\n')}`);
      throw error;
    } finally {
      await bounded(context.close(), WAIT_MS, 'closing the browser context').catch(() => {});
    }
  });
});
