import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { users } from '../../drizzle/tables.js';
import { createTestApp, type GraphQLResponse, type TestApp } from '../support/app.js';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(async () => {
  await t.close();
});

const page = `query($first: Int, $after: String, $search: String) {
  users(first: $first, after: $after, search: $search) {
    edges { cursor node { id email userName reference customFieldValues { fieldKey label value } trainingGroup { name } } }
    pageInfo { hasNextPage endCursor }
  }
}`;

describe('users', () => {
  it('pages through every user once, ordered by email ignoring case', async () => {
    const company = await t.createTestCompany();
    const emails = Array.from(
      { length: 23 },
      (_, i) => `${i % 2 ? 'User' : 'user'}${String(i).padStart(2, '0')}@example.com`,
    );
    await t.db.insert(users).values(
      emails.map((email, i) => ({
        companyId: company.companyId,
        email,
        userName: `U${i}`,
        reference: `R${i}`,
      })),
    );
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const result: GraphQLResponse = await t.request(company.viewerToken, page, {
        first: 10,
        after,
      });
      const connection: any = result.data?.users;
      seen.push(...connection.edges.map((edge: { node: { email: string } }) => edge.node.email));
      after = connection.pageInfo.hasNextPage ? connection.pageInfo.endCursor : null;
      pages++;
    } while (after);
    expect(pages).toBe(3);
    expect(seen).toEqual(
      [...emails].sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase())),
    );
  });

  it('searches email, userName and reference, ignoring case, with LIKE wildcards taken literally', async () => {
    const company = await t.createTestCompany();
    await t.db.insert(users).values([
      {
        companyId: company.companyId,
        email: 'ann@north.example',
        userName: 'Ann',
        reference: 'N-1',
      },
      {
        companyId: company.companyId,
        email: 'bob@south.example',
        userName: 'Bob North',
        reference: 'S-1',
      },
      {
        companyId: company.companyId,
        email: 'cy@south.example',
        userName: 'Cy',
        reference: '100%',
      },
    ]);
    const north = await t.request(company.token, page, { search: 'NORTH' });
    expect(north.data?.users.edges.map((edge: any) => edge.node.userName)).toEqual([
      'Ann',
      'Bob North',
    ]);
    const percent = await t.request(company.token, page, { search: '0%' });
    expect(percent.data?.users.edges.map((edge: any) => edge.node.userName)).toEqual(['Cy']);
  });

  it('shows custom field values with their current labels, and the training group', async () => {
    const company = await t.createTestCompany();
    const field = await t.request(
      company.token,
      'mutation { createCustomField(input: { label: "Department" }) { ... on CustomField { key } } }',
    );
    const group = await t.request(
      company.token,
      'mutation { createTrainingGroup(input: { name: "Sales" }) { ... on TrainingGroup { id } } }',
    );
    const groupRow = await t.db.query.trainingGroups.findFirst({
      where: { companyId: company.companyId },
    });
    expect(group.data?.createTrainingGroup.id).toBeTruthy();
    await t.db.insert(users).values({
      companyId: company.companyId,
      email: 'dee@example.com',
      userName: 'Dee',
      reference: 'D1',
      customValues: { [field.data?.createCustomField.key]: 'Sales' },
      trainingGroupId: groupRow?.id,
    });
    const result = await t.request(company.token, page);
    expect(result.data?.users.edges[0].node).toMatchObject({
      email: 'dee@example.com',
      customFieldValues: [{ fieldKey: 'department', label: 'Department', value: 'Sales' }],
      trainingGroup: { name: 'Sales' },
    });
  });

  it('caps page size and rejects a malformed cursor', async () => {
    const company = await t.createTestCompany();
    const tooMany = await t.request(company.token, page, { first: 101 });
    expect(tooMany.errors?.[0]?.message).toContain('between 0 and 100');
    const badCursor = await t.request(company.token, page, { after: 'garbage' });
    expect(badCursor.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });
});
