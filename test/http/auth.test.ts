import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { revokeToken } from '../../server/infrastructure/auth.js';
import { createTestApp, type TestApp } from '../support/app.js';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(async () => {
  await t.close();
});

describe('authentication', () => {
  it('refuses a request without a token with 401 UNAUTHENTICATED', async () => {
    const result = await t.request(null, '{ viewer { role } }');
    expect(result.status).toBe(401);
    expect(result.data).toBeUndefined();
    expect(result.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('refuses an unknown token the same way', async () => {
    const result = await t.request('mst_not-a-real-token', '{ viewer { role } }');
    expect(result.status).toBe(401);
    expect(result.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('refuses a revoked token', async () => {
    const company = await t.createTestCompany();
    const before = await t.request(company.token, '{ viewer { role } }');
    expect(before.data?.viewer.role).toBe('ADMIN');
    const [row] = await t.db.query.apiTokens.findMany({
      where: { companyId: company.companyId, role: 'ADMIN' },
    });
    expect(await revokeToken(t.db, row?.id as string)).toBe(true);
    // On Postgres the server hears of it by NOTIFY (test/http/token-changes.postgres.test.ts).
    const status = async () => (await t.request(company.token, '{ viewer { role } }')).status;
    await expect.poll(status, { timeout: 5_000, interval: 20 }).toBe(401);
  });

  it('tells the caller its company and role', async () => {
    const company = await t.createTestCompany('Acme Training');
    const admin = await t.request(company.token, '{ viewer { role company { id name } } }');
    expect(admin.data?.viewer).toEqual({
      role: 'ADMIN',
      company: { id: company.companyId, name: 'Acme Training' },
    });
    const viewer = await t.request(company.viewerToken, '{ viewer { role } }');
    expect(viewer.data?.viewer.role).toBe('VIEWER');
  });
});

describe('authorization', () => {
  it('lets a VIEWER read but refuses every mutation with FORBIDDEN, changing nothing', async () => {
    const company = await t.createTestCompany();
    const mutations = [
      'mutation { createTrainingGroup(input: { name: "X" }) { __typename } }',
      'mutation { createCustomField(input: { label: "X" }) { __typename } }',
      'mutation { reorderDistributionRules(input: { ruleIds: [] }) { __typename } }',
    ];
    for (const mutation of mutations) {
      const result = await t.request(company.viewerToken, mutation);
      expect(result.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
      expect(result.errors?.[0]?.message).toContain('ADMIN');
    }
    const groups = await t.request(
      company.viewerToken,
      '{ trainingGroups { id } userFields { key } }',
    );
    expect(groups.data?.trainingGroups).toEqual([]);
    expect(groups.data?.userFields).toHaveLength(3);
  });
});

describe('error masking', () => {
  it('never shows SQL or internals in an unexpected error', async () => {
    const company = await t.createTestCompany();
    const result = await t.request(
      company.token,
      '{ users(first: 5, after: "bm90LWpzb24") { edges { cursor } } }',
    );
    expect(result.errors?.[0]?.message).toBe('The cursor is not valid for this list.');
    expect(JSON.stringify(result)).not.toMatch(/select|from "users"|stack/i);
  });
});
