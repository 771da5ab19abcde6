import { readFileSync } from 'node:fs';
import {
  buildSchema,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isObjectType,
  isScalarType,
} from 'graphql';
import { describe, expect, it } from 'vitest';
import { printSortedSchema } from '../../schema/index.js';

const committed = readFileSync(new URL('../../schema/schema.graphql', import.meta.url), 'utf8');

describe('schema', () => {
  it('matches the committed schema/schema.graphql (run `npm run schema:print` after a change)', () => {
    expect(printSortedSchema()).toBe(committed);
  });

  it('describes every type, field, argument and enum value for GraphiQL readers', () => {
    const schema = buildSchema(committed);
    const missing: string[] = [];
    for (const type of Object.values(schema.getTypeMap())) {
      if (type.name.startsWith('__')) continue;
      if (isScalarType(type) && ['String', 'Int', 'Float', 'Boolean', 'ID'].includes(type.name))
        continue;
      if (!type.description) missing.push(type.name);
      if (isObjectType(type) || isInterfaceType(type) || isInputObjectType(type)) {
        for (const field of Object.values(type.getFields())) {
          if (!field.description) missing.push(`${type.name}.${field.name}`);
          for (const arg of 'args' in field ? field.args : []) {
            if (!arg.description) missing.push(`${type.name}.${field.name}(${arg.name})`);
          }
        }
      }
      if (isEnumType(type)) {
        for (const value of type.getValues()) {
          if (!value.description) missing.push(`${type.name}.${value.name}`);
        }
      }
    }
    expect(missing).toEqual([]);
  });

  it('keeps the contract names of docs/design.md §5', () => {
    const schema = buildSchema(committed);
    const query = schema.getQueryType()?.getFields() ?? {};
    expect(Object.keys(query)).toEqual(
      expect.arrayContaining([
        'viewer',
        'userFields',
        'trainingGroups',
        'distributionRules',
        'users',
        'node',
      ]),
    );
    const mutation = schema.getMutationType()?.getFields() ?? {};
    expect(Object.keys(mutation)).toEqual(
      expect.arrayContaining([
        'createCustomField',
        'renameCustomField',
        'deleteCustomField',
        'createTrainingGroup',
        'renameTrainingGroup',
        'deleteTrainingGroup',
        'createDistributionRule',
        'updateDistributionRule',
        'deleteDistributionRule',
        'reorderDistributionRules',
      ]),
    );
    expect(schema.getType('UserConnection')).toBeDefined();
    const operators = schema.getType('RuleOperator');
    expect(isEnumType(operators) && operators.getValues().map((value) => value.name)).toEqual([
      'CONTAINS',
      'ENDS_WITH',
      'EQUALS',
      'NOT_EQUALS',
      'STARTS_WITH',
    ]);
  });
});
