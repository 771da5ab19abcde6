import { z } from 'zod';
import { InvalidRuleOrderError, NotFoundError, UnknownFieldError } from '../server/errors.js';
import type { Context } from '../server/http/context.js';
import {
  createDistributionRule,
  type DistributionRule,
  deleteDistributionRule,
  findDistributionRule,
  listDistributionRules,
  type RulesChange,
  reorderDistributionRules,
  updateDistributionRule,
} from '../server/settings/distribution-rules.js';
import { builder } from './builder.js';

import { inputErrors } from './errors.js';
import { UserFieldRef } from './fields.js';
import { isUuid, localId } from './ids.js';
import { loaders, userFields } from './loaders.js';
import { TrainingGroupRef } from './training-groups.js';
import { singleLineText } from './validation.js';

const ruleValue = singleLineText('The value', 1000).pipe(
  z
    .string()
    .trim()
    .min(1, 'The value must not be empty.')
    .max(200, 'The value must be at most 200 characters.'),
);

const fieldKey = singleLineText('The field key', 100);

export const RuleOperatorEnum = builder.enumType('RuleOperator', {
  description: 'How a rule compares a user field with its value; always ignoring case.',
  values: {
    EQUALS: { description: 'The field equals the value.' },
    NOT_EQUALS: { description: 'The field differs from the value (an empty field differs too).' },
    CONTAINS: { description: 'The field contains the value.' },
    STARTS_WITH: { description: 'The field starts with the value.' },
    ENDS_WITH: { description: 'The field ends with the value.' },
  },
});

export const DistributionRuleRef = builder.objectRef<DistributionRule>('DistributionRule');

builder.node(DistributionRuleRef, {
  description:
    'Assigns a training group to users whose field matches. Rules apply in order; the first match wins.',
  id: { resolve: (rule) => rule.id },
  loadOne: async (id, ctx) =>
    isUuid(id) ? ((await findDistributionRule(ctx.db, ctx.auth.companyId, id)) ?? null) : null,
  fields: (t) => ({
    position: t.exposeInt('position', {
      description: 'Place in the order of application, from 0.',
    }),
    field: t.field({
      type: UserFieldRef,
      description: 'The user field the rule tests.',
      resolve: async (rule, _args, ctx, info) => {
        const fields = await userFields(ctx, info);
        const field = fields.find((candidate) => candidate.key === rule.fieldKey);
        if (!field) throw new Error(`rule ${rule.id} tests a missing field`);
        return field;
      },
    }),
    operator: t.field({
      type: RuleOperatorEnum,
      description: 'How the field is compared.',
      resolve: (rule) => rule.operator,
    }),
    value: t.exposeString('value', { description: 'The value compared with, ignoring case.' }),
    trainingGroup: t.field({
      type: TrainingGroupRef,
      description: 'The group assigned when the rule matches.',
      resolve: async (rule, _args, ctx, info) => {
        const group = await loaders(ctx, info).trainingGroups.load(rule.trainingGroupId);
        if (!group) throw new Error(`rule ${rule.id} assigns a missing group`);
        return group;
      },
    }),
  }),
});

const DistributionRuleListRef = builder
  .objectRef<{ rules: DistributionRule[] }>('DistributionRuleList')
  .implement({
    description: 'All distribution rules of the company, in the order they apply.',
    fields: (t) => ({
      rules: t.field({
        type: [DistributionRuleRef],
        description: 'The rules, first applied first.',
        resolve: (list) => list.rules,
      }),
    }),
  });

builder.queryFields((t) => ({
  distributionRules: t.field({
    type: [DistributionRuleRef],
    description: 'The distribution rules in the order they are applied.',
    resolve: (_root, _args, ctx) => listDistributionRules(ctx.db, ctx.auth.companyId),
  }),
}));

/** Rules changed: the previews it queued to recompute get a worker, and their followers are told. */
async function afterRulesChanged<Result>(
  ctx: Context,
  change: Promise<RulesChange<Result>>,
): Promise<Result> {
  const { result, refreshedSessionIds } = await change;
  for (const id of refreshedSessionIds) ctx.events.publishSessionUpdated(id);
  if (refreshedSessionIds.length > 0) ctx.importWorker.wake();
  return result;
}

builder.mutationFields((t) => ({
  createDistributionRule: t.fieldWithInput({
    type: DistributionRuleRef,
    description: 'Adds a rule at the end of the order.',
    typeOptions: { description: 'What the new rule tests and which group it assigns.' },
    errors: { types: [UnknownFieldError, NotFoundError, ...inputErrors] },
    input: {
      fieldKey: t.input.string({
        required: true,
        description: 'Key of the user field to test (see userFields).',
        validate: fieldKey,
      }),
      operator: t.input.field({
        type: RuleOperatorEnum,
        required: true,
        description: 'How to compare.',
      }),
      value: t.input.string({
        required: true,
        description: 'The value to compare with.',
        validate: ruleValue,
      }),
      trainingGroupId: t.input.id({
        required: true,
        description: 'The group to assign on a match.',
      }),
    },
    resolve: (_root, { input }, ctx) =>
      afterRulesChanged(
        ctx,
        createDistributionRule(ctx.db, ctx.auth.companyId, {
          ...input,
          trainingGroupId: localId(input.trainingGroupId, 'TrainingGroup', 'training group'),
        }),
      ),
  }),
  updateDistributionRule: t.fieldWithInput({
    type: DistributionRuleRef,
    description: 'Changes a rule; fields left out stay as they are.',
    typeOptions: { description: 'Which rule to change, and what to change.' },
    errors: { types: [UnknownFieldError, NotFoundError, ...inputErrors] },
    input: {
      id: t.input.id({ required: true, description: 'The rule to change.' }),
      fieldKey: t.input.string({
        description: 'New key of the user field to test.',
        validate: fieldKey.optional(),
      }),
      operator: t.input.field({ type: RuleOperatorEnum, description: 'New comparison.' }),
      value: t.input.string({
        description: 'New value to compare with.',
        validate: ruleValue.optional(),
      }),
      trainingGroupId: t.input.id({ description: 'New group to assign.' }),
    },
    resolve: (_root, { input }, ctx) =>
      afterRulesChanged(
        ctx,
        updateDistributionRule(
          ctx.db,
          ctx.auth.companyId,
          localId(input.id, 'DistributionRule', 'distribution rule'),
          {
            fieldKey: input.fieldKey ?? undefined,
            operator: input.operator ?? undefined,
            value: input.value ?? undefined,
            trainingGroupId: input.trainingGroupId
              ? localId(input.trainingGroupId, 'TrainingGroup', 'training group')
              : undefined,
          },
        ),
      ),
  }),
  deleteDistributionRule: t.fieldWithInput({
    type: DistributionRuleRef,
    description: 'Deletes a rule; the rules after it move up.',
    typeOptions: { description: 'Which rule to delete.' },
    errors: { types: [NotFoundError] },
    input: { id: t.input.id({ required: true, description: 'The rule to delete.' }) },
    resolve: (_root, { input }, ctx) =>
      afterRulesChanged(
        ctx,
        deleteDistributionRule(
          ctx.db,
          ctx.auth.companyId,
          localId(input.id, 'DistributionRule', 'distribution rule'),
        ),
      ),
  }),
  reorderDistributionRules: t.fieldWithInput({
    type: DistributionRuleListRef,
    description: 'Sets the order in which rules apply. Returns the rules in their new order.',
    typeOptions: { description: 'Every rule of the company, each once, in the new order.' },
    errors: { types: [InvalidRuleOrderError] },
    input: {
      ruleIds: t.input.idList({ required: true, description: 'All rule IDs in the new order.' }),
    },
    resolve: async (_root, { input }, ctx) => {
      const ids = input.ruleIds.map((id) => {
        try {
          return localId(id, 'DistributionRule', 'distribution rule');
        } catch {
          throw new InvalidRuleOrderError(
            `${JSON.stringify(id)} is not a distribution rule of your company.`,
          );
        }
      });
      return {
        rules: await afterRulesChanged(
          ctx,
          reorderDistributionRules(ctx.db, ctx.auth.companyId, ids),
        ),
      };
    },
  }),
}));
