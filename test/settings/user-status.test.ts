import { encodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { users } from '../../drizzle/tables.js';
import { createTestApp, type TestApp, type TestCompany } from '../support/app.js';

/** archiveUsers / restoreUsers and the `users` status filter, through the API. */

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(async () => {
  await t.close();
});

const ARCHIVE = `mutation($ids: [ID!]!) { archiveUsers(input: { userIds: $ids }) {
  __typename ... on UsersStatusChanged { users { email status archivedAt } }
  ... on Error { code message } } }`;
const RESTORE = ARCHIVE.replace('archiveUsers', 'restoreUsers');
const LIST = `query($status: UserStatus) { users(first: 100, status: $status) {
  edges { node { id email status } } } }`;

async function companyWithUsers(): Promise<{ company: TestCompany; ids: string[] }> {
  const company = await t.createTestCompany();
  const inserted = await t.db
    .insert(users)
    .values(
      ['a', 'b', 'c'].map((name) => ({
        companyId: company.companyId,
        email: `${name}@example.com`,
        userName: name,
        reference: `R-${name}`,
      })),
    )
    .returning({ id: users.id, email: users.email });
  const ids = inserted
    .sort((x, y) => x.email.localeCompare(y.email))
    .map((user) => encodeGlobalID('User', user.id));
  return { company, ids };
}

const emailsOf = (result: any) =>
  result.data?.users.edges.map((edge: any) => edge.node.email).sort();

describe('archiving users', () => {
  it('takes them out of the default list, keeps their values, and restores them', async () => {
    const { company, ids } = await companyWithUsers();
    const archived = await t.request(company.token, ARCHIVE, { ids: [ids[0]] });
    expect(archived.data?.archiveUsers).toMatchObject({
      __typename: 'UsersStatusChanged',
      users: [{ email: 'a@example.com', status: 'ARCHIVED', archivedAt: expect.any(String) }],
    });
    expect(emailsOf(await t.request(company.token, LIST))).toEqual([
      'b@example.com',
      'c@example.com',
    ]);
    expect(emailsOf(await t.request(company.token, LIST, { status: 'ARCHIVED' }))).toEqual([
      'a@example.com',
    ]);
    const restored = await t.request(company.token, RESTORE, { ids: [ids[0]] });
    expect(restored.data?.restoreUsers).toMatchObject({
      users: [{ email: 'a@example.com', status: 'ACTIVE', archivedAt: null }],
    });
    expect(emailsOf(await t.request(company.token, LIST))).toHaveLength(3);
  });

  it('changes nobody when one ID is unknown or of another company', async () => {
    const { company, ids } = await companyWithUsers();
    const other = await companyWithUsers();
    const refused = await t.request(company.token, ARCHIVE, { ids: [ids[1], other.ids[0]] });
    expect(refused.data?.archiveUsers).toMatchObject({
      __typename: 'NotFoundError',
      code: 'NOT_FOUND',
    });
    expect(emailsOf(await t.request(company.token, LIST))).toHaveLength(3);
    expect(emailsOf(await t.request(other.company.token, LIST))).toHaveLength(3);
    const empty = await t.request(company.token, ARCHIVE, { ids: [] });
    expect(empty.data?.archiveUsers).toMatchObject({ code: 'INVALID_INPUT' });
  });

  it('is refused to a VIEWER token', async () => {
    const { company, ids } = await companyWithUsers();
    const refused = await t.request(company.viewerToken, ARCHIVE, { ids: [ids[0]] });
    expect(refused.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(emailsOf(await t.request(company.token, LIST))).toHaveLength(3);
  });
});
