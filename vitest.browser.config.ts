import { configDefaults, defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.config.js';

/**
 * The tests in a real browser, `npm run test:browser`: only test/browser, which needs Chromium
 * (/usr/bin/chromium, or CHROMIUM_PATH). The graphql alias and the rest come from
 * vitest.config.ts, except its include and exclude lists: mergeConfig would append to those.
 */
export default mergeConfig(
  { ...base, test: { ...base.test, include: [], exclude: [] } },
  defineConfig({
    test: {
      include: ['test/browser/**/*.browser.test.ts'],
      exclude: configDefaults.exclude,
      testTimeout: 180_000,
    },
  }),
);
