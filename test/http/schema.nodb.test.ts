import { readFileSync } from 'node:fs';
import {
  buildSchema,
  type GraphQLArgument,
  type GraphQLInputField,
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

describe('closed sets', () => {
  /** Two or more CONSTANT_NAMES listed with commas or "or": a description naming a fixed list. */
  const LISTED_CONSTANTS =
    /\b[A-Z][A-Z0-9]*_?[A-Z0-9_]*\b(?:\s*\([^)]*\))?(?:,\s*|\s+or\s+)[A-Z][A-Z0-9_]+\b/;
  /** Names that always mean one of a fixed list in this API. */
  const CLOSED_NAMES = /^(stage|expectedStages|phase|entity|status|action|operator|role|report)$/;

  it('are enums: no String field or argument is documented as one of a fixed list', () => {
    const schema = buildSchema(committed);
    const strings: string[] = [];
    for (const type of Object.values(schema.getTypeMap())) {
      if (type.name.startsWith('__')) continue;
      if (!isObjectType(type) && !isInterfaceType(type) && !isInputObjectType(type)) continue;
      for (const field of Object.values(type.getFields())) {
        const args: readonly GraphQLArgument[] = 'args' in field ? field.args : [];
        const slots: {
          name: string;
          where: string;
          field: GraphQLInputField | GraphQLArgument | typeof field;
        }[] = [
          { name: field.name, where: `${type.name}.${field.name}`, field },
          ...args.map((arg) => ({
            name: arg.name,
            where: `${type.name}.${field.name}(${arg.name})`,
            field: arg,
          })),
        ];
        for (const slot of slots) {
          if (String(slot.field.type).replace(/[[\]!]/g, '') !== 'String') continue;
          if (CLOSED_NAMES.test(slot.name) || LISTED_CONSTANTS.test(slot.field.description ?? '')) {
            strings.push(slot.where);
          }
        }
      }
    }
    expect(strings).toEqual([]);
  });

  it('can be selected beside the same field of another type in one selection', () => {
    const schema = buildSchema(committed);
    const stageType = (typeName: string) => {
      const type = schema.getType(typeName);
      return isObjectType(type) ? String(type.getFields().stage?.type) : null;
    };
    expect(stageType('WrongStageError')).toBe(stageType('ImportSession'));
    expect(stageType('SessionBusyError')).toBe(stageType('ImportSession'));
  });
});
