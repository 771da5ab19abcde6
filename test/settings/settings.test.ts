import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { users } from '../../drizzle/tables.js';
import { ruleMatches } from '../../server/settings/distribution-rules.js';
import { createTestApp, type TestApp, type TestCompany } from '../support/app.js';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(async () => {
  await t.close();
});

const ERROR_FIELDS = '... on Error { __typename code message }';

async function createGroup(company: TestCompany, name: string): Promise<string> {
  const result = await t.request(
    company.token,
    `mutation($name: String!) { createTrainingGroup(input: { name: $name }) { ... on TrainingGroup { id name } ${ERROR_FIELDS} } }`,
    { name },
  );
  expect(result.data?.createTrainingGroup.name).toBe(name);
  return result.data?.createTrainingGroup.id;
}

async function createField(company: TestCompany, label: string) {
  const result = await t.request(
    company.token,
    `mutation($label: String!) { createCustomField(input: { label: $label }) { ... on CustomField { id key label } ${ERROR_FIELDS} } }`,
    { label },
  );
  return result.data?.createCustomField;
}

async function createRule(
  company: TestCompany,
  input: { fieldKey: string; operator: string; value: string; trainingGroupId: string },
) {
  const result = await t.request(
    company.token,
    `mutation($input: CreateDistributionRuleInput!) { createDistributionRule(input: $input) {
      ... on DistributionRule { id position value operator field { key } trainingGroup { id } }
      ${ERROR_FIELDS}
    } }`,
    { input },
  );
  return result.data?.createDistributionRule;
}

async function ruleIds(company: TestCompany): Promise<string[]> {
  const result = await t.request(company.token, '{ distributionRules { id position } }');
  const rules = result.data?.distributionRules as { id: string; position: number }[];
  expect(rules.map((rule) => rule.position)).toEqual(rules.map((_, index) => index));
  return rules.map((rule) => rule.id);
}

describe('custom fields', () => {
  it('lists built-ins first, then custom fields in creation order', async () => {
    const company = await t.createTestCompany();
    await createField(company, 'Department');
    await createField(company, 'Hire date');
    const result = await t.request(
      company.token,
      '{ userFields { key label builtIn customField { id } } }',
    );
    expect(result.data?.userFields).toEqual([
      { key: 'email', label: 'Email', builtIn: true, customField: null },
      { key: 'userName', label: 'userName', builtIn: true, customField: null },
      { key: 'reference', label: 'reference', builtIn: true, customField: null },
      {
        key: 'department',
        label: 'Department',
        builtIn: false,
        customField: { id: expect.any(String) },
      },
      {
        key: 'hire_date',
        label: 'Hire date',
        builtIn: false,
        customField: { id: expect.any(String) },
      },
    ]);
  });

  it('refuses a label that is taken, ignoring case, including the built-ins', async () => {
    const company = await t.createTestCompany();
    await createField(company, 'City');
    for (const label of ['city', 'EMAIL', 'Reference']) {
      const field = await createField(company, label);
      expect(field).toMatchObject({ __typename: 'NameTakenError', code: 'NAME_TAKEN' });
    }
  });

  it('refuses an empty or too long label with InvalidInputError', async () => {
    const company = await t.createTestCompany();
    for (const label of ['   ', 'x'.repeat(101)]) {
      const result = await t.request(
        company.token,
        `mutation($label: String!) { createCustomField(input: { label: $label }) {
          ... on InvalidInputError { code issues { path message } } } }`,
        { label },
      );
      expect(result.data?.createCustomField.code).toBe('INVALID_INPUT');
      expect(result.data?.createCustomField.issues[0].path).toEqual(['input', 'label']);
    }
    const list = await t.request(company.token, '{ userFields { key } }');
    expect(list.data?.userFields).toHaveLength(3);
  });

  it('gives distinct keys to labels that slug alike, and keeps the key on rename', async () => {
    const company = await t.createTestCompany();
    const first = await createField(company, 'Hire date');
    const second = await createField(company, 'Hire-Date!');
    expect([first.key, second.key]).toEqual(['hire_date', 'hire_date_2']);
    const renamed = await t.request(
      company.token,
      `mutation($id: ID!) { renameCustomField(input: { id: $id, label: "Start date" }) {
        ... on CustomField { key label } ${ERROR_FIELDS} } }`,
      { id: first.id },
    );
    expect(renamed.data?.renameCustomField).toEqual({ key: 'hire_date', label: 'Start date' });
    const taken = await t.request(
      company.token,
      `mutation($id: ID!) { renameCustomField(input: { id: $id, label: "start DATE" }) { ${ERROR_FIELDS} } }`,
      { id: second.id },
    );
    expect(taken.data?.renameCustomField.code).toBe('NAME_TAKEN');
  });

  it('deletes a field with every user value of it, unless a rule tests it', async () => {
    const company = await t.createTestCompany();
    const field = await createField(company, 'Region');
    await t.db.insert(users).values({
      companyId: company.companyId,
      email: 'ann@example.com',
      userName: 'Ann',
      reference: 'A1',
      customValues: { region: 'North', other: 'kept' },
    });
    const groupId = await createGroup(company, 'Northerners');
    const rule = await createRule(company, {
      fieldKey: field.key,
      operator: 'EQUALS',
      value: 'north',
      trainingGroupId: groupId,
    });
    const deleteField = `mutation($id: ID!) { deleteCustomField(input: { id: $id }) {
      ... on CustomField { key } ... on InUseError { code ruleIds } ${ERROR_FIELDS} } }`;
    const refused = await t.request(company.token, deleteField, { id: field.id });
    expect(refused.data?.deleteCustomField).toMatchObject({ code: 'IN_USE', ruleIds: [rule.id] });

    await t.request(
      company.token,
      'mutation($id: ID!) { deleteDistributionRule(input: { id: $id }) { __typename } }',
      {
        id: rule.id,
      },
    );
    const deleted = await t.request(company.token, deleteField, { id: field.id });
    expect(deleted.data?.deleteCustomField).toEqual({ key: 'region' });
    const [user] = await t.db
      .select({ values: users.customValues })
      .from(users)
      .where(sql`${users.companyId} = ${company.companyId}`);
    expect(user?.values).toEqual({ other: 'kept' });
    const again = await t.request(company.token, deleteField, { id: field.id });
    expect(again.data?.deleteCustomField.code).toBe('NOT_FOUND');
  });
});

describe('training groups', () => {
  it('creates, lists by name, renames and deletes', async () => {
    const company = await t.createTestCompany();
    const sales = await createGroup(company, 'Sales');
    await createGroup(company, 'administration');
    const list = await t.request(company.token, '{ trainingGroups { name } }');
    expect(list.data?.trainingGroups).toEqual([{ name: 'administration' }, { name: 'Sales' }]);

    const renamed = await t.request(
      company.token,
      `mutation($id: ID!) { renameTrainingGroup(input: { id: $id, name: "Field sales" }) { ... on TrainingGroup { name } } }`,
      { id: sales },
    );
    expect(renamed.data?.renameTrainingGroup.name).toBe('Field sales');
    const deleted = await t.request(
      company.token,
      `mutation($id: ID!) { deleteTrainingGroup(input: { id: $id }) { ... on TrainingGroup { name } } }`,
      { id: sales },
    );
    expect(deleted.data?.deleteTrainingGroup.name).toBe('Field sales');
    const after = await t.request(company.token, '{ trainingGroups { name } }');
    expect(after.data?.trainingGroups).toEqual([{ name: 'administration' }]);
  });

  it('refuses duplicate names ignoring case, on create and on rename', async () => {
    const company = await t.createTestCompany();
    await createGroup(company, 'Sales');
    const other = await createGroup(company, 'Support');
    const duplicate = await t.request(
      company.token,
      `mutation { createTrainingGroup(input: { name: "SALES" }) { ${ERROR_FIELDS} ... on NameTakenError { takenName } } }`,
    );
    expect(duplicate.data?.createTrainingGroup).toMatchObject({
      code: 'NAME_TAKEN',
      takenName: 'SALES',
    });
    const rename = await t.request(
      company.token,
      `mutation($id: ID!) { renameTrainingGroup(input: { id: $id, name: "sales" }) { ${ERROR_FIELDS} } }`,
      { id: other },
    );
    expect(rename.data?.renameTrainingGroup.code).toBe('NAME_TAKEN');
  });

  it('refuses to delete a group a rule assigns', async () => {
    const company = await t.createTestCompany();
    const groupId = await createGroup(company, 'Engineers');
    const rule = await createRule(company, {
      fieldKey: 'email',
      operator: 'ENDS_WITH',
      value: '@eng.example.com',
      trainingGroupId: groupId,
    });
    const result = await t.request(
      company.token,
      `mutation($id: ID!) { deleteTrainingGroup(input: { id: $id }) { ... on InUseError { code ruleIds message } } }`,
      { id: groupId },
    );
    expect(result.data?.deleteTrainingGroup).toMatchObject({ code: 'IN_USE', ruleIds: [rule.id] });
    expect(result.data?.deleteTrainingGroup.message).toContain('Engineers');
  });
});

describe('distribution rules', () => {
  it('appends rules in order and exposes their field and group', async () => {
    const company = await t.createTestCompany();
    const groupId = await createGroup(company, 'Managers');
    const first = await createRule(company, {
      fieldKey: 'userName',
      operator: 'STARTS_WITH',
      value: 'Boss',
      trainingGroupId: groupId,
    });
    const second = await createRule(company, {
      fieldKey: 'reference',
      operator: 'CONTAINS',
      value: 'MGR',
      trainingGroupId: groupId,
    });
    expect(first).toMatchObject({
      position: 0,
      field: { key: 'userName' },
      trainingGroup: { id: groupId },
    });
    expect(second).toMatchObject({ position: 1, operator: 'CONTAINS' });
  });

  it('refuses an unknown field, a missing group and an empty value', async () => {
    const company = await t.createTestCompany();
    const groupId = await createGroup(company, 'Any');
    const unknownField = await createRule(company, {
      fieldKey: 'shoeSize',
      operator: 'EQUALS',
      value: '42',
      trainingGroupId: groupId,
    });
    expect(unknownField).toMatchObject({ __typename: 'UnknownFieldError', code: 'UNKNOWN_FIELD' });
    const missingGroup = await createRule(company, {
      fieldKey: 'email',
      operator: 'EQUALS',
      value: 'x',
      trainingGroupId: 'VHJhaW5pbmdHcm91cDowMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDA=',
    });
    expect(missingGroup).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
    const emptyValue = await createRule(company, {
      fieldKey: 'email',
      operator: 'EQUALS',
      value: ' ',
      trainingGroupId: groupId,
    });
    expect(emptyValue).toMatchObject({ __typename: 'InvalidInputError', code: 'INVALID_INPUT' });
    expect(await ruleIds(company)).toEqual([]);
  });

  it('updates only the given parts of a rule', async () => {
    const company = await t.createTestCompany();
    const groupA = await createGroup(company, 'A');
    const groupB = await createGroup(company, 'B');
    const field = await createField(company, 'Country');
    const rule = await createRule(company, {
      fieldKey: 'email',
      operator: 'EQUALS',
      value: 'x@example.com',
      trainingGroupId: groupA,
    });
    const updated = await t.request(
      company.token,
      `mutation($input: UpdateDistributionRuleInput!) { updateDistributionRule(input: $input) {
        ... on DistributionRule { field { key } operator value trainingGroup { name } } ${ERROR_FIELDS} } }`,
      { input: { id: rule.id, fieldKey: field.key, trainingGroupId: groupB } },
    );
    expect(updated.data?.updateDistributionRule).toEqual({
      field: { key: 'country' },
      operator: 'EQUALS',
      value: 'x@example.com',
      trainingGroup: { name: 'B' },
    });
    const unknown = await t.request(
      company.token,
      `mutation($id: ID!) { updateDistributionRule(input: { id: $id, fieldKey: "nope" }) { ${ERROR_FIELDS} } }`,
      { id: rule.id },
    );
    expect(unknown.data?.updateDistributionRule.code).toBe('UNKNOWN_FIELD');
  });

  it('reorders by a permutation and refuses anything else', async () => {
    const company = await t.createTestCompany();
    const groupId = await createGroup(company, 'G');
    const created = [];
    for (const value of ['a', 'b', 'c']) {
      created.push(
        await createRule(company, {
          fieldKey: 'email',
          operator: 'CONTAINS',
          value,
          trainingGroupId: groupId,
        }),
      );
    }
    const [a, b, c] = created.map((rule) => rule.id as string);
    const reorder = `mutation($ids: [ID!]!) { reorderDistributionRules(input: { ruleIds: $ids }) {
      ... on DistributionRuleList { rules { id value position } } ${ERROR_FIELDS} } }`;
    const reordered = await t.request(company.token, reorder, { ids: [c, a, b] });
    expect(reordered.data?.reorderDistributionRules.rules).toEqual([
      { id: c, value: 'c', position: 0 },
      { id: a, value: 'a', position: 1 },
      { id: b, value: 'b', position: 2 },
    ]);
    const other = await t.createTestCompany();
    const otherGroup = await createGroup(other, 'G');
    const foreign = await createRule(other, {
      fieldKey: 'email',
      operator: 'CONTAINS',
      value: 'z',
      trainingGroupId: otherGroup,
    });
    for (const ids of [
      [a, b],
      [a, a, b, c],
      [a, b, c, c],
      [a, b, foreign.id],
      [a, b, 'not-an-id'],
    ]) {
      const refused = await t.request(company.token, reorder, { ids });
      expect(refused.data?.reorderDistributionRules.code).toBe('INVALID_RULE_ORDER');
    }
    expect(await ruleIds(company)).toEqual([c, a, b]);
    expect(await ruleIds(other)).toEqual([foreign.id]);
  });

  it('closes the gap when a rule is deleted', async () => {
    const company = await t.createTestCompany();
    const groupId = await createGroup(company, 'G');
    const created = [];
    for (const value of ['a', 'b', 'c']) {
      created.push(
        await createRule(company, {
          fieldKey: 'email',
          operator: 'CONTAINS',
          value,
          trainingGroupId: groupId,
        }),
      );
    }
    await t.request(
      company.token,
      'mutation($id: ID!) { deleteDistributionRule(input: { id: $id }) { __typename } }',
      {
        id: created[1].id,
      },
    );
    expect(await ruleIds(company)).toEqual([created[0].id, created[2].id]);
    const next = await createRule(company, {
      fieldKey: 'email',
      operator: 'CONTAINS',
      value: 'd',
      trainingGroupId: groupId,
    });
    expect(next.position).toBe(2);
  });

  it('matches case-insensitively with every operator', () => {
    expect(ruleMatches('EQUALS', 'Sales', 'sALES')).toBe(true);
    expect(ruleMatches('EQUALS', 'Sales', 'Sales team')).toBe(false);
    expect(ruleMatches('NOT_EQUALS', 'Sales', 'SALES')).toBe(false);
    expect(ruleMatches('NOT_EQUALS', 'Sales', '')).toBe(true);
    expect(ruleMatches('CONTAINS', 'ale', 'SALES')).toBe(true);
    expect(ruleMatches('CONTAINS', 'x', 'SALES')).toBe(false);
    expect(ruleMatches('STARTS_WITH', 'sa', 'Sales')).toBe(true);
    expect(ruleMatches('STARTS_WITH', 'les', 'Sales')).toBe(false);
    expect(ruleMatches('ENDS_WITH', '@EXAMPLE.com', 'ann@example.COM')).toBe(true);
    expect(ruleMatches('ENDS_WITH', 'sa', 'Sales')).toBe(false);
  });
});
