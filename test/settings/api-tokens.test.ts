import { print } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ApiTokensDocument,
  CreateApiTokenDocument,
  RevokeApiTokenDocument,
} from '../../client/gql/graphql.js';
import { createTestApp, type TestApp } from '../support/app.js';

/**
 * API tokens managed in GraphQL by an ADMIN token, with the client's own documents: made with
 * their secret shown once, listed without secrets, revoked; the company's last ADMIN token is
 * kept, with a typed error.
 */

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(async () => {
  await t.close();
});

const API_TOKENS = print(ApiTokensDocument);
const CREATE = print(CreateApiTokenDocument);
const REVOKE = print(RevokeApiTokenDocument);

describe('API tokens in GraphQL', () => {
  it('makes a VIEWER token whose secret reads but cannot change, lists it, and revokes it', async () => {
    const company = await t.createTestCompany();
    const created = await t.request(company.token, CREATE, {
      input: { role: 'VIEWER', label: '  reporting  ' },
    });
    expect(created.errors).toBeUndefined();
    const result = created.data?.createApiToken;
    expect(result.__typename).toBe('CreatedApiToken');
    expect(result.secret).toMatch(/^mst_/);
    expect(result.token).toMatchObject({ role: 'VIEWER', label: 'reporting', revokedAt: null });

    // The secret works, as a VIEWER: it reads, its mutations are refused.
    const viewer = await t.request(result.secret, '{ viewer { role } }');
    expect(viewer.data?.viewer.role).toBe('VIEWER');
    const refused = await t.request(result.secret, CREATE, {
      input: { role: 'ADMIN', label: 'escalation' },
    });
    expect(refused.data?.createApiToken ?? null).toBeNull();
    expect(refused.errors?.[0]?.extensions?.code).not.toBe(undefined);
    expect((await t.request(result.secret, API_TOKENS)).data?.apiTokens ?? null).toBeNull();

    // Listed without any secret, with when it was last used.
    await expect
      .poll(async () => {
        const listed = await t.request(company.token, API_TOKENS);
        return listed.data?.apiTokens.find((token: { id: string }) => token.id === result.token.id);
      })
      .toMatchObject({ role: 'VIEWER', label: 'reporting', lastUsedAt: expect.any(String) });
    const listed = await t.request(company.token, API_TOKENS);
    expect(JSON.stringify(listed)).not.toContain(result.secret);
    expect(listed.data?.apiTokens.map((token: { role: string }) => token.role).sort()).toEqual([
      'ADMIN',
      'VIEWER',
      'VIEWER',
    ]);

    const revoked = await t.request(company.token, REVOKE, { input: { tokenId: result.token.id } });
    expect(revoked.data?.revokeApiToken).toMatchObject({
      __typename: 'ApiToken',
      id: result.token.id,
      revokedAt: expect.any(String),
    });
    // On Postgres, every process's token cache drops it when the trigger's NOTIFY arrives.
    await expect
      .poll(async () => (await t.request(result.secret, '{ viewer { role } }')).status)
      .toBe(401);
    const again = await t.request(company.token, REVOKE, { input: { tokenId: result.token.id } });
    expect(again.data?.revokeApiToken).toMatchObject({ __typename: 'NotFoundError' });
  });

  it("keeps the company's last ADMIN token, and revokes an ADMIN token when another is left", async () => {
    const company = await t.createTestCompany();
    const tokens = await t.request(company.token, API_TOKENS);
    const admin = tokens.data?.apiTokens.find((token: { role: string }) => token.role === 'ADMIN');
    const last = await t.request(company.token, REVOKE, { input: { tokenId: admin.id } });
    expect(last.data?.revokeApiToken).toMatchObject({
      __typename: 'LastAdminTokenError',
      code: 'LAST_ADMIN_TOKEN',
    });
    expect((await t.request(company.token, '{ viewer { role } }')).data?.viewer.role).toBe('ADMIN');

    const second = await t.request(company.token, CREATE, {
      input: { role: 'ADMIN', label: 'second admin' },
    });
    const revoked = await t.request(second.data?.createApiToken.secret, REVOKE, {
      input: { tokenId: admin.id },
    });
    expect(revoked.data?.revokeApiToken.__typename).toBe('ApiToken');
    await expect
      .poll(async () => (await t.request(company.token, '{ viewer { role } }')).status)
      .toBe(401);
  });

  it("cannot revoke another company's token, and refuses an empty label", async () => {
    const mine = await t.createTestCompany();
    const theirs = await t.createTestCompany();
    const theirTokens = await t.request(theirs.token, API_TOKENS);
    const other = await t.request(mine.token, REVOKE, {
      input: { tokenId: theirTokens.data?.apiTokens[0].id },
    });
    expect(other.data?.revokeApiToken).toMatchObject({ __typename: 'NotFoundError' });
    expect((await t.request(theirs.token, '{ viewer { role } }')).data?.viewer.role).toBe('ADMIN');

    const empty = await t.request(mine.token, CREATE, { input: { role: 'VIEWER', label: ' ' } });
    expect(empty.data?.createApiToken.__typename).toBe('InvalidInputError');
  });
});
