import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp, type TestCompany } from '../support/app.js';

/**
 * Queries run compiled (server/http/compiled-queries.ts). What an admin does in GraphiQL must
 * answer as graphql-js would: one document with several operations, run by name in any order
 * (a cache by document alone answers the first one compiled), and @include / @skip on fragment
 * spreads that select the same field.
 */

let t: TestApp;
let company: TestCompany;
let url: string;

beforeAll(async () => {
  t = await createTestApp();
  company = await t.createTestCompany('Compiled Queries Ltd');
  url = `${await t.listen()}/graphql`;
});
afterAll(async () => {
  await t.close();
});

/** POSTs one operation of a document over HTTP, as GraphiQL does, and returns the body. */
async function run(query: string, operationName: string, variables: Record<string, unknown> = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${company.token}` },
    body: JSON.stringify({ query, operationName, variables }),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as { data?: unknown; errors?: unknown };
}

describe('compiled queries', () => {
  it('run no code written in a string argument, whatever the string holds', async () => {
    // graphql-jit writes argument literals into the code it compiles, and turned its own
    // marker for dates (a constant of the package) followed by text into `new Date(<text>)`:
    // a VIEWER token could run any JavaScript in the server. Patched in patches/.
    const marker = '__MAGIC_DATE__33a9e76d_02e0_4128_8e92_3530ad3da74d';
    const flag = 'musterInjected';
    const search = `${marker}1),injected:(globalThis.${flag}=1`;
    const response = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${company.viewerToken}`,
      },
      body: JSON.stringify({
        query: `{ users(search: ${JSON.stringify(search)}) { totalCount } }`,
      }),
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ data: { users: { totalCount: 0 } } });
    expect((globalThis as Record<string, unknown>)[flag]).toBeUndefined();
  });

  it('run the operation named, in a document of several, whichever ran first', async () => {
    const document = `
      query Role { viewer { role } }
      query CompanyName { viewer { company { name } } }
      mutation Unused { revokeApiToken(input: { tokenId: "none" }) { __typename } }
    `;
    const role = { data: { viewer: { role: 'ADMIN' } } };
    const name = { data: { viewer: { company: { name: 'Compiled Queries Ltd' } } } };
    expect(await run(document, 'Role')).toEqual(role);
    expect(await run(document, 'CompanyName')).toEqual(name);
    expect(await run(document, 'Role')).toEqual(role);
    expect(await run(document, 'CompanyName')).toEqual(name);
  });

  it('apply @include and @skip on fragment spreads, for each value of the variable', async () => {
    const document = `
      query Viewer($withCompany: Boolean!) {
        viewer {
          role
          company { id }
          ...CompanyName @include(if: $withCompany)
          ...CompanyName @skip(if: true)
        }
      }
      fragment CompanyName on Viewer { company { name } }
    `;
    const id = company.companyId;
    const withCompany = { role: 'ADMIN', company: { id, name: 'Compiled Queries Ltd' } };
    for (const include of [true, false, true]) {
      expect(await run(document, 'Viewer', { withCompany: include })).toEqual({
        data: { viewer: include ? withCompany : { role: 'ADMIN', company: { id } } },
      });
    }
  });
});
