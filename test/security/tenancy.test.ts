import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { users } from '../../drizzle/tables.js';
import { globalId } from '../../schema/ids.js';
import { createTestApp, type TestApp, type TestCompany } from '../support/app.js';

let t: TestApp;
let owner: TestCompany;
let intruder: TestCompany;
const ids: Record<string, string> = {};

beforeAll(async () => {
  t = await createTestApp();
  owner = await t.createTestCompany('Owner');
  intruder = await t.createTestCompany('Intruder');
  const group = await t.request(
    owner.token,
    'mutation { createTrainingGroup(input: { name: "Owners" }) { ... on TrainingGroup { id } } }',
  );
  ids.group = group.data?.createTrainingGroup.id;
  const field = await t.request(
    owner.token,
    'mutation { createCustomField(input: { label: "Secret" }) { ... on CustomField { id key } } }',
  );
  ids.field = field.data?.createCustomField.id;
  const rule = await t.request(
    owner.token,
    `mutation($group: ID!) { createDistributionRule(input: {
      fieldKey: "secret", operator: EQUALS, value: "x", trainingGroupId: $group }) { ... on DistributionRule { id } } }`,
    { group: ids.group },
  );
  ids.rule = rule.data?.createDistributionRule.id;
  const [user] = await t.db
    .insert(users)
    .values({
      companyId: owner.companyId,
      email: 'owner@example.com',
      userName: 'O',
      reference: 'O1',
    })
    .returning();
  ids.user = globalId('User', user?.id as string);
  expect(Object.values(ids).every(Boolean)).toBe(true);
});

afterAll(async () => {
  await t.close();
});

const ownerState = `{
  trainingGroups { id name }
  userFields { key label }
  distributionRules { id value field { key } trainingGroup { id } }
  users(first: 10) { edges { node { id email } } }
}`;

describe('tenant isolation', () => {
  it("resolves another company's IDs through node as null, like IDs that do not exist", async () => {
    for (const id of Object.values(ids)) {
      const own = await t.request(owner.token, 'query($id: ID!) { node(id: $id) { id } }', { id });
      expect(own.data?.node).toEqual({ id });
      const foreign = await t.request(intruder.token, 'query($id: ID!) { node(id: $id) { id } }', {
        id,
      });
      expect(foreign.data?.node).toBeNull();
      expect(foreign.errors).toBeUndefined();
    }
  });

  it("lists none of another company's data", async () => {
    const result = await t.request(intruder.token, ownerState);
    expect(result.data).toEqual({
      trainingGroups: [],
      userFields: [
        { key: 'email', label: 'Email' },
        { key: 'userName', label: 'userName' },
        { key: 'reference', label: 'reference' },
      ],
      distributionRules: [],
      users: { edges: [] },
    });
  });

  it("changes nothing of another company's and answers NotFoundError", async () => {
    const before = await t.request(owner.token, ownerState);
    const attempts: [string, Record<string, unknown>][] = [
      [
        'mutation($id: ID!) { renameTrainingGroup(input: { id: $id, name: "Hacked" }) { ... on Error { code } } }',
        { id: ids.group },
      ],
      [
        'mutation($id: ID!) { deleteTrainingGroup(input: { id: $id }) { ... on Error { code } } }',
        { id: ids.group },
      ],
      [
        'mutation($id: ID!) { renameCustomField(input: { id: $id, label: "Hacked" }) { ... on Error { code } } }',
        { id: ids.field },
      ],
      [
        'mutation($id: ID!) { deleteCustomField(input: { id: $id }) { ... on Error { code } } }',
        { id: ids.field },
      ],
      [
        'mutation($id: ID!) { updateDistributionRule(input: { id: $id, value: "hacked" }) { ... on Error { code } } }',
        { id: ids.rule },
      ],
      [
        'mutation($id: ID!) { deleteDistributionRule(input: { id: $id }) { ... on Error { code } } }',
        { id: ids.rule },
      ],
    ];
    for (const [mutation, variables] of attempts) {
      const result = await t.request(intruder.token, mutation, variables);
      const [payload] = Object.values(result.data ?? {}) as { code: string }[];
      expect(payload?.code).toBe('NOT_FOUND');
    }
    const intruderGroup = await t.request(
      intruder.token,
      'mutation { createTrainingGroup(input: { name: "Mine" }) { ... on TrainingGroup { id } } }',
    );
    const crossGroup = await t.request(
      intruder.token,
      `mutation($group: ID!) { createDistributionRule(input: {
        fieldKey: "email", operator: EQUALS, value: "x", trainingGroupId: $group }) { ... on Error { code } } }`,
      { group: ids.group },
    );
    expect(crossGroup.data?.createDistributionRule.code).toBe('NOT_FOUND');
    const crossField = await t.request(
      intruder.token,
      `mutation($group: ID!) { createDistributionRule(input: {
        fieldKey: "secret", operator: EQUALS, value: "x", trainingGroupId: $group }) { ... on Error { code } } }`,
      { group: intruderGroup.data?.createTrainingGroup.id },
    );
    expect(crossField.data?.createDistributionRule.code).toBe('UNKNOWN_FIELD');
    const reorder = await t.request(
      intruder.token,
      'mutation($ids: [ID!]!) { reorderDistributionRules(input: { ruleIds: $ids }) { ... on Error { code } } }',
      { ids: [ids.rule] },
    );
    expect(reorder.data?.reorderDistributionRules.code).toBe('INVALID_RULE_ORDER');

    const after = await t.request(owner.token, ownerState);
    expect(after.data).toEqual(before.data);
  });

  it('treats malformed and wrong-type IDs like IDs that do not exist', async () => {
    for (const id of ['nonsense', globalId('User', 'not-a-uuid'), ids.user]) {
      const result = await t.request(
        owner.token,
        'mutation($id: ID!) { renameTrainingGroup(input: { id: $id, name: "X" }) { ... on Error { code } } }',
        { id },
      );
      expect(result.data?.renameTrainingGroup.code).toBe('NOT_FOUND');
    }
    const node = await t.request(owner.token, 'query($id: ID!) { node(id: $id) { id } }', {
      id: globalId('TrainingGroup', 'not-a-uuid'),
    });
    expect(node.data?.node).toBeNull();
  });
});
