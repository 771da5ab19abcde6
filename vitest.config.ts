import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // Node loads graphql 16's CommonJS build (no "exports" map) for Yoga and Pothos; Vite
    // would pick its ESM build for our files, giving two GraphQLError classes. Use one.
    alias: [
      {
        find: /^graphql$/,
        replacement: fileURLToPath(new URL('./node_modules/graphql/index.js', import.meta.url)),
      },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    // Tests named *.postgres.test.ts need a real Postgres (several server processes on one
    // database, its locks and statements): they run when DATABASE_URL names one, as in CI.
    // Tests named *.nodb.test.ts open no database (the reader, limits, layout): CI runs them
    // once, in the PGlite run (`npm test -- --exclude 'test/**/*.nodb.test.ts'` on Postgres).
    // The GraphiQL browser test needs Debian's chromium: `npm run test:browser` (CI installs it).
    exclude: [
      'test/browser/**',
      ...(process.env.DATABASE_URL ? [] : ['test/**/*.postgres.test.ts']),
    ],
    // Each file opens its own database (PGlite in memory, or a fresh Postgres database).
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Vitest runs one file at a time on two cores (cores - 1). Most files wait on server
    // processes, the CLI or the database rather than compute: two at a time took each suite
    // from 262-367 s to 212-304 s on the 2-core machine (two runs each), all passing.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    reporters: ['default'],
  },
});
