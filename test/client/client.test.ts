import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateDistributionRuleDocument,
  CreateTrainingGroupDocument,
  createMusterClient,
  DistributionRulesDocument,
  ViewerDocument,
} from '../../client/index.js';
import { createTestApp, type TestApp } from '../support/app.js';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(async () => {
  await t.close();
});

describe('@muster/client', () => {
  it('runs the generated typed documents with the bearer token', async () => {
    const company = await t.createTestCompany('Client Co');
    const client = createMusterClient({
      url: 'http://muster.test/graphql',
      token: company.token,
      fetch: t.fetch,
    });
    const viewer = await client.query(ViewerDocument, {}).toPromise();
    expect(viewer.data?.viewer.company.name).toBe('Client Co');

    const group = await client
      .mutation(CreateTrainingGroupDocument, { input: { name: 'Typed' } })
      .toPromise();
    const created = group.data?.createTrainingGroup;
    if (created?.__typename !== 'TrainingGroup')
      throw new Error(`unexpected ${created?.__typename}`);
    const rule = await client
      .mutation(CreateDistributionRuleDocument, {
        input: {
          fieldKey: 'email',
          operator: 'ENDS_WITH',
          value: '@typed.example',
          trainingGroupId: created.id,
        },
      })
      .toPromise();
    expect(rule.data?.createDistributionRule.__typename).toBe('DistributionRule');
    const rules = await client.query(DistributionRulesDocument, {}).toPromise();
    expect(rules.data?.distributionRules).toEqual([
      expect.objectContaining({
        operator: 'ENDS_WITH',
        trainingGroup: { id: created.id, name: 'Typed' },
      }),
    ]);
  });

  it('surfaces an authentication error for a bad token', async () => {
    const client = createMusterClient({
      url: 'http://muster.test/graphql',
      token: 'mst_wrong',
      fetch: t.fetch,
    });
    const viewer = await client.query(ViewerDocument, {}).toPromise();
    expect(viewer.error?.graphQLErrors[0]?.extensions.code).toBe('UNAUTHENTICATED');
  });
});
