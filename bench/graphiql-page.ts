import { chromium } from 'playwright-core';
import { createTestApp } from '../test/support/app.js';

/**
 * GraphiQL's weight and speed in headless Chromium, as docs/performance.md reports them:
 * bytes over the wire (compressed, headers excluded) and the time from navigation to the token
 * screen, then from "Open GraphiQL" to an editor with the schema loaded; cold (empty cache,
 * the server's first GraphiQL request already served once) and warm (a second visit).
 * Run: `npx tsx bench/graphiql-page.ts` (CHROMIUM_PATH if not /usr/bin/chromium).
 */

const app = await createTestApp();
const base = await app.listen();
const { token } = await app.createTestCompany('Bench');
// The server compresses its assets once, on the first request: not what an admin waits for.
await fetch(`${base}/graphql`, { headers: { accept: 'text/html' } });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu'],
});
const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
const page = await context.newPage();
const cdp = await context.newCDPSession(page);
await cdp.send('Network.enable');
let bytes = 0;
cdp.on('Network.loadingFinished', (event) => {
  bytes += event.encodedDataLength;
});

async function visit(label: string): Promise<void> {
  bytes = 0;
  const start = performance.now();
  await page.goto(`${base}/graphql`);
  await page.getByLabel('API token').waitFor();
  const tokenScreen = performance.now() - start;
  const bytesToTokenScreen = bytes;
  await page.getByLabel('API token').fill(token);
  const opened = performance.now();
  await page.getByRole('button', { name: 'Open GraphiQL' }).click();
  await page.locator('.graphiql-query-editor .CodeMirror').waitFor();
  // Usable: the schema is in (the Docs button has loaded it, and the editor can complete).
  await page.getByRole('button', { name: 'Show Documentation Explorer' }).click();
  await page.locator('.graphiql-doc-explorer').getByText('Mutation').first().waitFor();
  const editor = performance.now() - opened;
  console.log(
    `${label}: ${bytesToTokenScreen} bytes and ${tokenScreen.toFixed(0)} ms to the token screen; ` +
      `${editor.toFixed(0)} ms from the token to an editor with its schema; ${bytes} bytes in all`,
  );
  await page.evaluate(() => window.sessionStorage.clear());
}

await visit('cold');
await visit('warm');
await browser.close();
await app.close();
