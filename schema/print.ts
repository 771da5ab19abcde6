import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { printSortedSchema } from './index.js';

// `npm run schema:print` writes schema/schema.graphql; with --check it only compares.
const path = fileURLToPath(new URL('./schema.graphql', import.meta.url));
const printed = printSortedSchema();
if (process.argv.includes('--check')) {
  const committed = readFileSync(path, 'utf8');
  if (committed !== printed) {
    console.error(
      'schema/schema.graphql is out of date: run `npm run schema:print` and commit it.',
    );
    process.exit(1);
  }
  console.log('schema/schema.graphql is up to date.');
} else {
  writeFileSync(path, printed);
  console.log(`wrote ${path}`);
}
