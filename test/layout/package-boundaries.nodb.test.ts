import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The floors of server/: only server/http/ speaks GraphQL (graphql, Pothos, graphql-yoga,
 * schema/); the services below it take and return plain values. And no module under server/
 * imports itself back through others: a cycle makes load order decide what is defined.
 */

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const serverDir = join(root, 'server');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/**
 * Every module a file names in an import or export … from; with `runtime`, only those that
 * are loaded when it runs (not `import type`, which TypeScript erases).
 */
function specifiers(file: string, options: { runtime?: boolean } = {}): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  const pattern =
    /(?:^|\n)\s*(import|export)\s+(type\s)?[^;]*?\sfrom\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
  for (const match of text.matchAll(pattern)) {
    if (options.runtime && match[2]) continue;
    found.push((match[3] ?? match[4]) as string);
  }
  return found;
}

function resolveLocal(from: string, specifier: string): string | null {
  if (!specifier.startsWith('.')) return null;
  return resolve(dirname(from), specifier.replace(/\.js$/, '.ts'));
}

const files = sourceFiles(serverDir);

/** Each file's imports within server/; with `runtime`, only those loaded when it runs. */
function importGraph(options: { runtime?: boolean }): Map<string, string[]> {
  return new Map(
    files.map((file) => [
      file,
      specifiers(file, options)
        .map((specifier) => resolveLocal(file, specifier))
        .filter((target): target is string => target?.startsWith(serverDir) ?? false),
    ]),
  );
}

/** The cycles in `graph`, each as the path of files that closes it. */
function findCycles(graph: Map<string, string[]>): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (file: string) => {
    state.set(file, 'open');
    path.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') cycles.push([...path.slice(path.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    path.pop();
    state.set(file, 'done');
  };
  for (const file of files) if (!state.has(file)) visit(file);
  return cycles.map((cycle) => cycle.map((file) => relative(root, file)));
}

describe('server/ package boundaries', () => {
  it('keeps GraphQL, Pothos, graphql-yoga and schema/ to server/http/', () => {
    const speaksGraphQL = (specifier: string, file: string) =>
      /^(graphql|graphql-yoga|graphql-ws)$|^@pothos\/|^@graphql-yoga\//.test(specifier) ||
      (resolveLocal(file, specifier)?.startsWith(join(root, 'schema')) ?? false);
    const offenders = files
      .filter((file) => !file.startsWith(join(serverDir, 'http')))
      .flatMap((file) =>
        specifiers(file)
          .filter((specifier) => speaksGraphQL(specifier, file))
          .map((specifier) => `${relative(root, file)} imports ${specifier}`),
      );
    expect(offenders).toEqual([]);
  });

  it('has no import cycle', () => {
    expect(findCycles(importGraph({ runtime: true }))).toEqual([]);
  });

  // A type-only import is erased, so it cannot change what is defined when; a cycle through one
  // still ties two modules together (each must change with the other): the shared types go to
  // a module of their own.
  it('has no import cycle through type-only imports either', () => {
    expect(findCycles(importGraph({}))).toEqual([]);
  });
});
