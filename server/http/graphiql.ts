import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { brotliCompress, gzip, constants as zlibConstants } from 'node:zlib';

/**
 * GraphiQL at GET /graphql, self-hosted and offline: the page is a few kilobytes of HTML and
 * its scripts and styles are separate static files under /graphiql/assets/, read from the
 * pinned graphiql, react and react-dom packages (their UMD builds) and from
 * graphiql-page.js beside this file (the token screen, the upload control, the fetcher).
 * Asset names carry the package version or a content hash, so they are cached as immutable;
 * every body is compressed once per process (brotli or gzip, by Accept-Encoding).
 */

export const GRAPHIQL_ASSET_PATH = '/graphiql/assets/';

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));

function packageFile(name: string, file: string): { path: string; version: string } {
  const manifest = require.resolve(`${name}/package.json`);
  const version = (require(manifest) as { version: string }).version;
  return { path: join(dirname(manifest), file), version };
}

interface AssetSource {
  /** The name under /graphiql/assets/ without its version or hash. */
  name: string;
  extension: 'js' | 'css';
  path: string;
  /** The package version, or null for our own files (named by content hash). */
  version: string | null;
}

function assetSources(): AssetSource[] {
  const react = packageFile('react', 'umd/react.production.min.js');
  const reactDom = packageFile('react-dom', 'umd/react-dom.production.min.js');
  const graphiqlScript = packageFile('graphiql', 'graphiql.min.js');
  const graphiqlStyle = packageFile('graphiql', 'graphiql.min.css');
  return [
    { name: 'react', extension: 'js', ...react },
    { name: 'react-dom', extension: 'js', ...reactDom },
    { name: 'graphiql', extension: 'js', ...graphiqlScript },
    { name: 'graphiql', extension: 'css', ...graphiqlStyle },
    {
      name: 'muster-graphiql',
      extension: 'js',
      path: join(here, 'graphiql-page.js'),
      version: null,
    },
    {
      name: 'muster-graphiql',
      extension: 'css',
      path: join(here, 'graphiql-page.css'),
      version: null,
    },
  ];
}

interface Body {
  identity: Buffer;
  gzip: Buffer;
  br: Buffer;
  etag: string;
  contentType: string;
}

interface Asset extends Body {
  fileName: string;
  key: string;
}

const gzipAsync = promisify(gzip);
const brotliAsync = promisify(brotliCompress);

async function compressBody(identity: Buffer, contentType: string): Promise<Body> {
  const [gzipped, brotli] = await Promise.all([
    gzipAsync(identity, { level: 9 }),
    // Quality 5 compresses GraphiQL's megabyte in well under a second, within a few percent
    // of quality 11, which takes seconds on a small machine.
    brotliAsync(identity, {
      params: {
        [zlibConstants.BROTLI_PARAM_QUALITY]: 5,
        [zlibConstants.BROTLI_PARAM_SIZE_HINT]: identity.length,
      },
    }),
  ]);
  const etag = `"${createHash('sha256').update(identity).digest('base64url').slice(0, 27)}"`;
  return { identity, gzip: gzipped, br: brotli, etag, contentType };
}

async function loadAssets(): Promise<Map<string, Asset>> {
  const assets = await Promise.all(
    assetSources().map(async (source): Promise<Asset> => {
      const identity = await readFile(source.path);
      const tag =
        source.version ?? createHash('sha256').update(identity).digest('hex').slice(0, 16);
      const contentType =
        source.extension === 'js' ? 'text/javascript; charset=utf-8' : 'text/css; charset=utf-8';
      const body = await compressBody(identity, contentType);
      return {
        ...body,
        key: `${source.name}.${source.extension}`,
        fileName: `${source.name}-${tag}.${source.extension}`,
      };
    }),
  );
  return new Map(assets.map((asset) => [asset.fileName, asset]));
}

/** Read and compressed once per process, on the first GraphiQL request; a failure is retried. */
let loading: Promise<Map<string, Asset>> | null = null;
function assets(): Promise<Map<string, Asset>> {
  loading ??= loadAssets().catch((error: unknown) => {
    loading = null;
    throw error;
  });
  return loading;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function pageHtml(byKey: Map<string, Asset>, title: string): string {
  const url = (key: string) => `${GRAPHIQL_ASSET_PATH}${byKey.get(key)?.fileName}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<link rel="stylesheet" href="${url('graphiql.css')}">
<link rel="stylesheet" href="${url('muster-graphiql.css')}">
</head>
<body>
<div id="muster-graphiql"><p class="muster-loading">Loading GraphiQL…</p></div>
<script src="${url('react.js')}"></script>
<script src="${url('react-dom.js')}"></script>
<script src="${url('graphiql.js')}"></script>
<script src="${url('muster-graphiql.js')}"></script>
</body>
</html>
`;
}

let page: Promise<Body> | null = null;
function pageBody(title: string): Promise<Body> {
  page ??= assets()
    .then((loaded) => {
      const byKey = new Map([...loaded.values()].map((asset) => [asset.key, asset]));
      return compressBody(Buffer.from(pageHtml(byKey, title)), 'text/html; charset=utf-8');
    })
    .catch((error: unknown) => {
      page = null;
      throw error;
    });
  return page;
}

/** The encoding to send: brotli, else gzip, else none (q=0 refuses one). */
function chooseEncoding(header: string | undefined): 'br' | 'gzip' | 'identity' {
  const accepted = new Map<string, number>();
  for (const part of (header ?? '').split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    if (!name) continue;
    const q = params.map((p) => /^\s*q=([\d.]+)\s*$/.exec(p)?.[1]).find(Boolean);
    accepted.set(name, q === undefined ? 1 : Number(q));
  }
  const weight = (name: string) => accepted.get(name) ?? accepted.get('*') ?? 0;
  if (weight('br') > 0) return 'br';
  if (weight('gzip') > 0) return 'gzip';
  return 'identity';
}

function send(
  request: IncomingMessage,
  response: ServerResponse,
  body: Body,
  cacheControl: string,
): void {
  const headers: Record<string, string> = {
    'content-type': body.contentType,
    'cache-control': cacheControl,
    etag: body.etag,
    vary: 'Accept-Encoding',
    'x-content-type-options': 'nosniff',
  };
  const ifNoneMatch = request.headers['if-none-match'];
  if (ifNoneMatch?.split(',').some((tag) => tag.trim().replace(/^W\//, '') === body.etag)) {
    response.writeHead(304, headers);
    response.end();
    return;
  }
  const encoding = chooseEncoding(request.headers['accept-encoding']);
  const bytes = encoding === 'identity' ? body.identity : body[encoding];
  if (encoding !== 'identity') headers['content-encoding'] = encoding;
  headers['content-length'] = String(bytes.length);
  response.writeHead(200, headers);
  response.end(request.method === 'HEAD' ? undefined : bytes);
}

function wantsGraphiQL(request: IncomingMessage, graphqlEndpoint: string): boolean {
  if (request.method !== 'GET' && request.method !== 'HEAD') return false;
  const path = (request.url ?? '').split('?')[0];
  return path === graphqlEndpoint && (request.headers.accept ?? '').includes('text/html');
}

/**
 * The GraphiQL routes: the page at GET `graphqlEndpoint` for browsers (Accept: text/html) and
 * its assets. Returns false for every other request, which the caller then serves.
 */
export function serveGraphiQL(
  request: IncomingMessage,
  response: ServerResponse,
  options: { graphqlEndpoint: string; title: string; onError: (error: unknown) => void },
): boolean {
  const failed = (error: unknown) => {
    options.onError(error);
    if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' });
    response.end('GraphiQL could not be loaded; see the server log.');
  };
  if (wantsGraphiQL(request, options.graphqlEndpoint)) {
    // The page names the assets by version and hash: it is revalidated, they are not.
    pageBody(options.title).then((body) => send(request, response, body, 'no-cache'), failed);
    return true;
  }
  const url = request.url ?? '';
  if (
    (request.method === 'GET' || request.method === 'HEAD') &&
    url.startsWith(GRAPHIQL_ASSET_PATH)
  ) {
    const fileName = url.slice(GRAPHIQL_ASSET_PATH.length).split('?')[0] ?? '';
    assets().then((loaded) => {
      const asset = loaded.get(fileName);
      if (!asset) {
        response.writeHead(404, { 'content-type': 'text/plain' });
        response.end('Not found');
        return;
      }
      send(request, response, asset, 'public, max-age=31536000, immutable');
    }, failed);
    return true;
  }
  return false;
}
