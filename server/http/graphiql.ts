import type { GraphiQLOptions } from 'graphql-yoga';

/**
 * GraphiQL, self-hosted. Yoga's own page loads GraphiQL's script, styles and editor workers
 * from a CDN (unpkg.com), so without internet access /graphql stays at "Loading Muster...".
 * @graphql-yoga/render-graphiql (released with graphql-yoga, same version) ships them in the
 * package and inlines them into the page: nothing is fetched from elsewhere.
 *
 * Its module is about 9 MB of source, so it is loaded on the first GraphiQL request only, and
 * the page is rendered once per set of options (app.ts passes the same options every time).
 * Pass this as createYoga's `renderGraphiQL`.
 */
export function renderGraphiQL(options: GraphiQLOptions): Promise<string> {
  const key = JSON.stringify(options);
  if (rendered?.key === key) return rendered.page;
  const entry = {
    key,
    page: import('@graphql-yoga/render-graphiql').then((module) => module.renderGraphiQL(options)),
  };
  rendered = entry;
  // A failed load is not kept: the next request tries again.
  entry.page.catch(() => {
    if (rendered === entry) rendered = null;
  });
  return entry.page;
}

let rendered: { key: string; page: Promise<string> } | null = null;
