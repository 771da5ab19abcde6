import { runInNewContext } from 'node:vm';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import {
  buildClientSchema,
  getIntrospectionQuery,
  type IntrospectionQuery,
  Kind,
  NoDeprecatedCustomRule,
  type OperationDefinitionNode,
  parse,
  specifiedRules,
  validate,
} from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { costLimitErrors, GRAPHQL_LIMITS } from '../../server/http/graphql-limits.js';
import { createTestApp, type TestApp } from '../support/app.js';

/**
 * GraphiQL's page and its assets over real HTTP: small, compressed, and cached the way their
 * names allow (the page is revalidated, the versioned or hashed assets are immutable).
 */

let t: TestApp;
let base: string;

beforeAll(async () => {
  t = await createTestApp();
  base = await t.listen();
});
afterAll(async () => {
  await t.close();
});

/** Raw HTTP through node:http, so that the body arrives as sent (fetch would decode it). */
async function get(
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers as Record<string, string>,
          body: Buffer.concat(chunks),
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

function assetPaths(html: string): string[] {
  return [...html.matchAll(/(?:src|href)="(\/graphiql\/assets\/[^"]+)"/g)].map(
    (m) => m[1] as string,
  );
}

describe('GraphiQL over HTTP', () => {
  it('sends a small page that names its assets, compressed and revalidated', async () => {
    const page = await get('/graphql', { accept: 'text/html', 'accept-encoding': 'gzip, br' });
    expect(page.status).toBe(200);
    expect(page.headers['content-encoding']).toBe('br');
    expect(page.headers['cache-control']).toBe('no-cache');
    expect(page.headers.vary).toMatch(/accept-encoding/i);
    const html = brotliDecompressSync(page.body).toString();
    expect(html).toContain('graphiql');
    const assets = assetPaths(html);
    expect(assets.map((path) => path.replace(/-[0-9a-f]{16}\./, '-HASH.'))).toEqual([
      '/graphiql/assets/graphiql-4.1.2.css',
      '/graphiql/assets/muster-graphiql-HASH.css',
      '/graphiql/assets/react-18.3.1.js',
      '/graphiql/assets/react-dom-18.3.1.js',
      '/graphiql/assets/graphiql-4.1.2.js',
      '/graphiql/assets/muster-graphiql-HASH.js',
    ]);

    // Same page again with its validator: 304, no body.
    const again = await get('/graphql', {
      accept: 'text/html',
      'if-none-match': page.headers.etag as string,
    });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
  });

  it('sends every asset immutable and compressed, gzip when brotli is not accepted', async () => {
    const page = await get('/graphql', { accept: 'text/html' });
    expect(page.headers['content-encoding']).toBeUndefined();
    let compressed = 0;
    let plain = 0;
    for (const path of assetPaths(page.body.toString())) {
      const brotli = await get(path, { 'accept-encoding': 'gzip, deflate, br' });
      expect(brotli.status).toBe(200);
      expect(brotli.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      expect(brotli.headers['content-encoding']).toBe('br');
      const gzipped = await get(path, { 'accept-encoding': 'gzip' });
      expect(gzipped.headers['content-encoding']).toBe('gzip');
      const identity = await get(path, {});
      expect(identity.headers['content-encoding']).toBeUndefined();
      expect(brotliDecompressSync(brotli.body).equals(identity.body)).toBe(true);
      expect(gunzipSync(gzipped.body).equals(identity.body)).toBe(true);
      compressed += brotli.body.length;
      plain += identity.body.length;
    }
    // GraphiQL, React and ReactDOM are well over a megabyte, and compress to less than half.
    expect(plain).toBeGreaterThan(1_000_000);
    expect(compressed).toBeLessThan(plain / 2);
  });

  it('answers 404 for names that are not its assets, paths included', async () => {
    for (const path of [
      '/graphiql/assets/graphiql-0.0.1.js',
      '/graphiql/assets/../../package.json',
      '/graphiql/assets/%2e%2e%2fpackage.json',
    ]) {
      expect((await get(path, {})).status).toBe(404);
    }
  });

  it('opens with default documents whose every operation the schema accepts', async () => {
    // The page's script as the browser gets it, run with just enough of a browser around it
    // to define its documents (React and GraphiQL are stand-ins; nothing renders).
    const page = await get('/graphql', { accept: 'text/html' });
    const scriptPath = assetPaths(page.body.toString()).find((path) =>
      /\/muster-graphiql-[0-9a-f]+\.js$/.test(path),
    ) as string;
    const script = (await get(scriptPath, {})).body.toString();
    const noop = () => null;
    const window = {
      React: { createElement: noop, useEffect: noop, useState: noop, useSyncExternalStore: noop },
      GraphiQL: { GraphQL: { parse } },
      ReactDOM: { createRoot: () => ({ render: noop }) },
      location: { pathname: '/graphql' },
      localStorage: { getItem: noop },
      sessionStorage: { getItem: noop },
    };
    const context = { window, document: { getElementById: noop } };
    const tabs = runInNewContext(
      `${script}\n[[IMPORT_DOCUMENT, IMPORT_VARIABLES], [TOKENS_DOCUMENT, TOKENS_VARIABLES]]`,
      context,
    ) as [string, string][];

    // The schema GraphiQL gets: introspected over HTTP with a token.
    const { token } = await t.createTestCompany();
    const introspection = await fetch(`${base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: getIntrospectionQuery() }),
    });
    const { data } = (await introspection.json()) as { data: IntrospectionQuery };
    const schema = buildClientSchema(data);

    expect(tabs).toHaveLength(2);
    for (const [text, variablesText] of tabs) {
      // The whole tab is sent with every run: within the server's token limit.
      const document = parse(text, { maxTokens: GRAPHQL_LIMITS.maxTokens });
      expect(validate(schema, document, [...specifiedRules, NoDeprecatedCustomRule])).toEqual([]);
      const variables = JSON.parse(variablesText) as Record<string, unknown>;
      const operations = document.definitions.filter(
        (definition): definition is OperationDefinitionNode =>
          definition.kind === Kind.OPERATION_DEFINITION,
      );
      const used = new Set<string>();
      for (const operation of operations) {
        expect(operation.name?.value).toEqual(expect.any(String));
        for (const definition of operation.variableDefinitions ?? []) {
          used.add(definition.variable.name.value);
        }
        const alone = { ...document, definitions: [operation] };
        expect(costLimitErrors(schema, alone, variables), operation.name?.value).toEqual([]);
      }
      // Every variable the operations use has a value to start from, and no other is there.
      expect(Object.keys(variables).sort()).toEqual([...used].sort());
    }
    expect(tabs[0]?.[0]).toContain('mutation ConfirmColumns');
    expect(tabs[0]?.[0]).toContain('mutation RevertImport');
  });
});
