import { type AuditResult, serverAudits } from 'graphql-http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';

/**
 * The GraphQL over HTTP spec's server audits (graphql-http) against the app over real HTTP.
 * Every request carries an ADMIN token (the endpoint answers nothing without one) and the CSRF
 * header (required on GET and form-like POSTs), as any client of ours does.
 */

/**
 * SHOULD and MAY audits the server does not pass, by audit id and name, with the reason. A new
 * failure, or one of these passing, fails the test: update the list (and docs/security.md).
 * With the CSRF header, as our clients send it, there are none.
 */
const ACCEPTED_EXCEPTIONS: Record<string, string> = {};

/**
 * The same without the CSRF header, as a plain link or form in a browser would ask: CSRF
 * prevention refuses GET requests (403) before they reach GraphQL. POSTs of JSON need no
 * header (their content type forces a CORS preflight already), so nothing else changes.
 */
const ACCEPTED_EXCEPTIONS_WITHOUT_CSRF_HEADER: Record<string, string> = {
  '5A70 MAY accept application/x-www-form-urlencoded formatted GET requests':
    'GET needs the x-graphql-yoga-csrf header (CSRF prevention): 403 without it',
  '6A70 MAY allow URL-encoded JSON string {variables} parameter in GETs when accepting application/json':
    'GET needs the x-graphql-yoga-csrf header (CSRF prevention): 403 without it',
  'D6D5 MAY allow URL-encoded JSON string {variables} parameter in GETs when accepting application/graphql-response+json':
    'GET needs the x-graphql-yoga-csrf header (CSRF prevention): 403 without it',
};

let t: TestApp;
let endpoint: string;
let token: string;
beforeAll(async () => {
  t = await createTestApp();
  endpoint = `${await t.listen()}/graphql`;
  token = (await t.createTestCompany()).token;
});
afterAll(async () => {
  await t.close();
});

/** A fetch that adds the token, and the CSRF header unless told not to. */
function authorizedFetch({ csrfHeader }: { csrfHeader: boolean }) {
  return (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const headers = new Headers(init?.headers);
    headers.set('authorization', `Bearer ${token}`);
    if (csrfHeader) headers.set('x-graphql-yoga-csrf', '1');
    return fetch(input, { ...init, headers });
  };
}

const audits = serverAudits({
  url: () => endpoint,
  fetchFn: authorizedFetch({ csrfHeader: true }),
});

/** The reason of a failed audit with the response body, to show what the server said. */
async function explain(result: AuditResult): Promise<string> {
  if (result.status === 'ok') return 'ok';
  const body = await result.response.text().catch(() => '<body already read>');
  return `${result.status}: ${result.reason} (HTTP ${result.response.status}: ${body.slice(0, 300)})`;
}

describe('GraphQL over HTTP: MUST audits', () => {
  const musts = audits.filter((audit) => audit.name.startsWith('MUST'));
  it('finds the MUST audits to run', () => {
    expect(musts.length).toBeGreaterThan(10);
  });
  for (const audit of musts) {
    it(`${audit.id}: ${audit.name}`, async () => {
      const result = await audit.fn();
      expect(await explain(result), audit.name).toBe('ok');
    });
  }
});

/** Runs the SHOULD and MAY audits; compares the failing ones with the accepted exceptions. */
async function expectOptionalFailures(
  optional: typeof audits,
  accepted: Record<string, string>,
): Promise<void> {
  expect(optional.length).toBeGreaterThan(10);
  expect(optional.every((audit) => /^(SHOULD|MAY) /.test(audit.name))).toBe(true);
  const failing: Record<string, string> = {};
  for (const audit of optional) {
    const result = await audit.fn();
    if (result.status !== 'ok') failing[`${audit.id} ${audit.name}`] = await explain(result);
  }
  const unexpected = Object.fromEntries(
    Object.entries(failing).filter(([name]) => !(name in accepted)),
  );
  const nowPassing = Object.keys(accepted).filter((name) => !(name in failing));
  expect({ unexpected, nowPassing }).toEqual({ unexpected: {}, nowPassing: [] });
}

describe('GraphQL over HTTP: SHOULD and MAY audits', () => {
  it('fail only where an accepted exception says why', async () => {
    await expectOptionalFailures(
      audits.filter((audit) => !audit.name.startsWith('MUST')),
      ACCEPTED_EXCEPTIONS,
    );
  });

  it('without the CSRF header, fail only for GET, which CSRF prevention refuses', async () => {
    const withoutHeader = serverAudits({
      url: () => endpoint,
      fetchFn: authorizedFetch({ csrfHeader: false }),
    });
    await expectOptionalFailures(
      withoutHeader.filter((audit) => !audit.name.startsWith('MUST')),
      ACCEPTED_EXCEPTIONS_WITHOUT_CSRF_HEADER,
    );
  });
});
