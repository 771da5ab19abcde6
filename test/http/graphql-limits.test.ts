import ExcelJS from 'exceljs';
import { getIntrospectionQuery } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GRAPHQL_LIMITS } from '../../server/http/graphql-limits.js';
import { createToken } from '../../server/infrastructure/auth.js';
import { createTestApp, type TestApp, type TestCompany } from '../support/app.js';
import { START_IMPORT, uploadFile } from '../support/http.js';

/** Query limits (graphql-armor), batching, CSRF prevention and introspection settings. */

let t: TestApp;
let company: TestCompany;
let base: string;
beforeAll(async () => {
  t = await createTestApp();
  company = await t.createTestCompany();
  base = await t.listen();
});
afterAll(async () => {
  await t.close();
});

describe('query limits', () => {
  // Every operation the client package ships passes them: test/client/client-operations.test.ts.
  it('let GraphiQL introspection through', async () => {
    const introspection = await t.request(company.token, getIntrospectionQuery());
    expect(introspection.errors).toBeUndefined();
    expect(introspection.data?.__schema.queryType.name).toBe('Query');
  });

  it('refuse a query nested deeper than maxDepth', async () => {
    // The deepest path of the schema (it has no cycles): a staged row's changed custom field.
    const deepest = `{ importSessions { edges { node { rows { edges { node {
      changes { field { customField { key } } } } } } } } } }`;
    const result = await t.request(company.token, deepest);
    expect(result.errors?.[0]?.message).toMatch(
      new RegExp(`depth limit of ${GRAPHQL_LIMITS.maxDepth} exceeded`),
    );
    expect(result.data).toBeUndefined();
  });

  it('refuse more aliases than maxAliases', async () => {
    const aliases = Array.from(
      { length: GRAPHQL_LIMITS.maxAliases + 1 },
      (_, i) => `a${i}: viewer { role }`,
    );
    const result = await t.request(company.token, `{ ${aliases.join(' ')} }`);
    expect(result.errors?.[0]?.message).toMatch(/Aliases limit/i);
    expect(result.data).toBeUndefined();
  });

  it('refuse a document of more tokens than maxTokens', async () => {
    const fields = Array.from({ length: GRAPHQL_LIMITS.maxTokens }, () => 'role').join(' ');
    const result = await t.request(company.token, `{ viewer { ${fields} } }`);
    expect(result.errors?.[0]?.message).toMatch(/Token limit/i);
    expect(result.data).toBeUndefined();
  });

  it('refuse more directives than maxDirectives', async () => {
    const directives = Array.from(
      { length: GRAPHQL_LIMITS.maxDirectives + 1 },
      () => '@include(if: true)',
    );
    const result = await t.request(company.token, `{ viewer { role ${directives.join(' ')} } }`);
    expect(result.errors?.[0]?.message).toMatch(/Directives limit/i);
    expect(result.data).toBeUndefined();
  });

  it('refuse a query whose cost is over maxCost, such as many wide pages at once', async () => {
    const page = `importSessions(first: 100) { edges { node { id stage fileName fileSize
      rows(first: 100) { edges { node { rowNumber action
      changes { field { key label builtIn } from to } } } } } } }`;
    const aliases = Array.from({ length: 15 }, (_, i) => `p${i}: ${page}`);
    const result = await t.request(company.token, `{ ${aliases.join(' ')} }`);
    expect(result.errors?.[0]?.message).toMatch(/Query Cost limit/i);
    expect(result.data).toBeUndefined();
  });

  it('count `first` given as a variable into the cost, as written in the document', async () => {
    const query = `query($first: Int) { importSessions(first: $first) { edges { node { id
      rows(first: $first) { edges { node { rowNumber action
      changes { field { key label builtIn } from to } } } } } } } }`;
    // Small pages first: a document found within the limit is checked again for larger ones.
    for (const first of [2, 100, 2, 100]) {
      const result = await t.request(company.token, query, { first });
      if (first === 2) {
        expect(result.errors).toBeUndefined();
        expect(result.data?.importSessions.edges).toEqual([]);
      } else {
        expect(result.errors?.[0]?.message).toMatch(/Query Cost limit/i);
        expect(result.data).toBeUndefined();
      }
    }
  });

  it('count a fragment spread as no level of depth', async () => {
    // importSession { rows { edges { node { changes { field { key } } } } } } is 7 deep; the
    // same through nested fragments is still 7, and one level more is still refused.
    const viaFragments = `query($id: ID!) { importSession(id: $id) { ...S } }
      fragment S on ImportSession { rows { edges { node { ...R } } } }
      fragment R on ImportRow { changes { field { ...F } } }
      fragment F on UserField { key customField { ...C } }
      fragment C on CustomField { id }`;
    const passed = await t.request(company.token, viaFragments, { id: 'nope' });
    expect(passed.errors).toBeUndefined();
    expect(passed.data).toEqual({ importSession: null });
  });

  it('caps `first` on every connection', async () => {
    const result = await t.request(company.token, '{ users(first: 1000) { edges { cursor } } }');
    expect(result.errors?.[0]?.message).toMatch(/first must be between 0 and 100/);
  });

  it('refuse a batch of operations (batching is off)', async () => {
    const response = await t.app.yoga.fetch('http://muster.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${company.token}` },
      body: JSON.stringify([{ query: '{ viewer { role } }' }, { query: '{ viewer { role } }' }]),
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { errors?: { message: string }[] };
    expect(body.errors?.[0]?.message).toMatch(/Batching is not supported/);
  });
});

describe('CSRF prevention', () => {
  const viewerQuery = encodeURIComponent('{ viewer { role } }');

  it('refuses a GET without the header, and answers one with it', async () => {
    const url = `${base}/graphql?query=${viewerQuery}`;
    const authorization = `Bearer ${company.token}`;
    const refused = await fetch(url, { headers: { authorization, accept: 'application/json' } });
    expect(refused.status).toBe(403);
    const answered = await fetch(url, {
      headers: { authorization, accept: 'application/json', 'x-graphql-yoga-csrf': '1' },
    });
    expect(answered.status).toBe(200);
    expect(((await answered.json()) as any).data.viewer.role).toBe('ADMIN');
  });

  it('refuses a form-encoded POST (what a form on another site sends)', async () => {
    const response = await fetch(`${base}/graphql`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${company.token}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: `query=${viewerQuery}`,
    });
    expect(response.status).toBe(403);
  });

  it('refuses a multipart upload without the header before reading the file', async () => {
    const form = new FormData();
    form.set(
      'operations',
      JSON.stringify({
        query: 'mutation($input: StartImportInput!) { startImport(input: $input) { __typename } }',
        variables: { input: { file: null } },
      }),
    );
    form.set('map', JSON.stringify({ 0: ['variables.input.file'] }));
    form.set('0', new Blob([new Uint8Array(1024)]), 'users.xlsx');
    const response = await fetch(`${base}/graphql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${company.token}` },
      body: form,
    });
    expect(response.status).toBe(403);
    const body = (await response.json()) as any;
    expect(body.errors[0].extensions.code).toBe('CSRF_HEADER_REQUIRED');
    const sessions = await t.request(company.token, '{ importSessions { edges { cursor } } }');
    expect(sessions.data?.importSessions.edges).toEqual([]);
  });

  it('needs no header on a JSON POST (its content type forces a CORS preflight)', async () => {
    const result = await t.request(company.token, '{ viewer { role } }');
    expect(result.status).toBe(200);
    expect(result.data?.viewer.role).toBe('ADMIN');
  });
});

describe('with GRAPHQL_INTROSPECTION=false and WORK_RATE_LIMIT_PER_MINUTE=2', () => {
  let strict: TestApp;
  let strictBase: string;
  beforeAll(async () => {
    strict = await createTestApp({
      GRAPHQL_INTROSPECTION: 'false',
      WORK_RATE_LIMIT_PER_MINUTE: '2',
    });
    strictBase = await strict.listen();
  });
  afterAll(async () => {
    await strict.close();
  });

  it('refuses introspection, GraphiQL and field suggestions, and answers other queries', async () => {
    const other = await strict.createTestCompany();
    const introspection = await strict.request(other.token, '{ __schema { types { name } } }');
    expect(introspection.errors?.[0]?.message).toMatch(/introspection/i);
    expect(introspection.data).toBeUndefined();
    const typo = await strict.request(other.token, '{ viewr { role } }');
    expect(typo.errors?.[0]?.message).toMatch(/Cannot query field "viewr"/);
    expect(typo.errors?.[0]?.message).not.toMatch(/Did you mean/);
    const page = await fetch(`${strictBase}/graphql`, { headers: { accept: 'text/html' } });
    expect(await page.text()).not.toMatch(/graphiql/i);
    const asset = await fetch(`${strictBase}/graphiql/assets/react-dom-18.3.1.js`);
    expect(asset.status).not.toBe(200);
    const ordinary = await strict.request(other.token, '{ viewer { role } }');
    expect(ordinary.data?.viewer.role).toBe('ADMIN');
  });

  it('refuses a token its third import in a minute with RateLimitedError, other tokens not', async () => {
    const limited = await strict.createTestCompany();
    const workbook = new ExcelJS.Workbook();
    workbook.addWorksheet('Users').addRow(['Email', 'userName', 'reference']);
    const content = new Uint8Array(await workbook.xlsx.writeBuffer());
    const start = (token: string) =>
      uploadFile(
        strictBase,
        token,
        START_IMPORT,
        { input: { file: null } },
        { name: 'u.xlsx', content },
      );

    const results = [];
    for (let i = 0; i < 3; i++) results.push((await start(limited.token)).body.data.startImport);
    expect(results.map((result) => result.__typename)).toEqual([
      'ImportSession',
      'ImportSession',
      'RateLimitedError',
    ]);
    expect(results[2].code).toBe('RATE_LIMITED');
    expect(results[2].message).toMatch(/at most 2 per minute/);

    // The refused upload left nothing behind; the same company's other token still may.
    const sessions = await strict.request(limited.token, '{ importSessions { edges { cursor } } }');
    expect(sessions.data?.importSessions.edges).toHaveLength(2);
    const other = await createToken(strict.db, { companyId: limited.companyId, role: 'ADMIN' });
    expect((await start(other.token)).body.data.startImport.__typename).toBe('ImportSession');

    // emailImportReport draws on the same budget.
    const email = await strict.request(
      limited.token,
      `mutation($input: EmailImportReportInput!) { emailImportReport(input: $input) {
        __typename ... on RateLimitedError { code retryAfterSeconds limitPerMinute } } }`,
      { input: { sessionId: results[0].id, report: 'IMPORTED_USERS', to: ['a@example.com'] } },
    );
    expect(email.data?.emailImportReport).toMatchObject({
      __typename: 'RateLimitedError',
      code: 'RATE_LIMITED',
      limitPerMinute: 2,
    });
    expect(email.data?.emailImportReport.retryAfterSeconds).toBeGreaterThan(0);
    expect(email.data?.emailImportReport.retryAfterSeconds).toBeLessThanOrEqual(60);
  });
});

describe('by default', () => {
  it('serves GraphiQL and suggests field names', async () => {
    const typo = await t.request(company.token, '{ viewr { role } }');
    expect(typo.errors?.[0]?.message).toMatch(/Did you mean "viewer"/);
    const page = await fetch(`${base}/graphql`, { headers: { accept: 'text/html' } });
    expect(await page.text()).toMatch(/graphiql/i);
  });
});

describe('unexpected errors', () => {
  it('are masked in production and shown with NODE_ENV=development', async () => {
    for (const [nodeEnv, masked] of [
      ['production', true],
      ['development', false],
    ] as const) {
      const broken = await createTestApp({ NODE_ENV: nodeEnv });
      const owner = await broken.createTestCompany();
      // Authentication is done per request: take the database away after a first answer.
      expect((await broken.request(owner.token, '{ viewer { role } }')).data?.viewer.role).toBe(
        'ADMIN',
      );
      await broken.database.close();
      const result = await broken.request(owner.token, '{ trainingGroups { id } }');
      const [error] = result.errors ?? [];
      expect(error?.message).toBe('Unexpected error.');
      if (masked) {
        expect(error?.extensions?.originalError).toBeUndefined();
        expect(JSON.stringify(result)).not.toMatch(/closed|PGlite|postgres|select|stack/i);
      } else {
        expect(error?.extensions?.originalError).toMatchObject({ message: expect.any(String) });
      }
      await broken.close().catch(() => {});
    }
  });
});
