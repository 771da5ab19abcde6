import {
  buildClientSchema,
  type GraphQLArgument,
  type GraphQLInputType,
  type GraphQLNamedType,
  type GraphQLObjectType,
  type GraphQLSchema,
  getIntrospectionQuery,
  getNamedType,
  type IntrospectionQuery,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isLeafType,
  isListType,
  isNonNullType,
  isObjectType,
  isUnionType,
} from 'graphql';

/**
 * Operations for every root field of a schema, built from its introspection, so a test that
 * walks the whole API covers a field as soon as it exists.
 */

export const INTROSPECTION_QUERY = getIntrospectionQuery();

export function schemaFromIntrospection(data: unknown): GraphQLSchema {
  return buildClientSchema(data as IntrospectionQuery);
}

export type OperationKind = 'query' | 'mutation' | 'subscription';

/** What an input slot holds; `unsupported` is a scalar a walk cannot make up (Upload, …). */
export type SlotKind = 'ID' | 'String' | 'Boolean' | 'Int' | 'Float' | 'enum' | 'unsupported';

/** One leaf of a root field's arguments: an argument, or a field inside an input object. */
export interface InputSlot {
  /** The argument name, then the input field names down to the leaf. */
  path: string[];
  kind: SlotKind;
  /** The named type: ID, String, ImportStage, Upload, … */
  typeName: string;
  /** For enums, every value. */
  enumValues: string[];
  /** A list of values ([ID!]!) rather than one. */
  list: boolean;
  /** Must be given: non-null itself and on every input object above it. */
  required: boolean;
}

export interface RootField {
  operation: OperationKind;
  name: string;
  /** `Mutation.createTrainingGroup`: how lists of special cases name it. */
  coordinate: string;
  slots: InputSlot[];
  /** A document declaring one variable per argument (`$input`, `$id`, …). */
  document: string;
}

function unwrap(type: GraphQLInputType): { named: GraphQLNamedType; list: boolean } {
  let current = type;
  let list = false;
  while (isNonNullType(current) || isListType(current)) {
    if (isListType(current)) list = true;
    current = current.ofType as GraphQLInputType;
  }
  return { named: current as GraphQLNamedType, list };
}

function slotKind(named: GraphQLNamedType): SlotKind {
  if (isEnumType(named)) return 'enum';
  if (['ID', 'String', 'Boolean', 'Int', 'Float'].includes(named.name)) {
    return named.name as SlotKind;
  }
  return 'unsupported';
}

function collectSlots(
  type: GraphQLInputType,
  path: string[],
  parentRequired: boolean,
  slots: InputSlot[],
): void {
  const required = parentRequired && isNonNullType(type);
  const { named, list } = unwrap(type);
  if (isInputObjectType(named)) {
    // A list of input objects has no single shape to fill: leave it to a special case.
    if (list) {
      slots.push({
        path,
        kind: 'unsupported',
        typeName: `[${named.name}]`,
        enumValues: [],
        list,
        required,
      });
      return;
    }
    for (const field of Object.values(named.getFields())) {
      collectSlots(field.type, [...path, field.name], required, slots);
    }
    return;
  }
  slots.push({
    path,
    kind: slotKind(named),
    typeName: named.name,
    enumValues: isEnumType(named) ? named.getValues().map((value) => value.name) : [],
    list,
    required,
  });
}

/**
 * The selection of every field of `type` down to `maxDepth`, counted as graphql-armor counts
 * it (each field and each inline fragment one level; the root field is level 1). Unions and
 * interfaces get a fragment per possible type, so whatever comes back is seen in full; a field
 * whose name another fragment uses with another type gets an alias (`stage` is an enum on
 * ImportSession and a string on WrongStageError). Fields with required arguments are left out
 * (none exist below the root today).
 */
export function selectionSet(
  schema: GraphQLSchema,
  type: GraphQLNamedType,
  depth: number,
  maxDepth: number,
): string | null {
  if (depth > maxDepth || isLeafType(type)) return null;
  // Response name → what it selects, shared by the fragments of one selection set.
  const used = new Map<string, string>();
  const fieldsOf = (object: GraphQLObjectType, fieldDepth: number) => {
    const parts: string[] = [];
    for (const field of Object.values(object.getFields())) {
      if (field.args.some((arg) => isNonNullType(arg.type) && arg.defaultValue === undefined)) {
        continue;
      }
      const named = getNamedType(field.type);
      const nested = isLeafType(named) ? '' : selectionSet(schema, named, fieldDepth + 1, maxDepth);
      if (nested === null) continue;
      const shape = `${String(field.type)} ${nested}`;
      const alias = used.has(field.name) && used.get(field.name) !== shape;
      if (!alias) used.set(field.name, shape);
      parts.push(`${alias ? `${field.name}_${object.name}: ` : ''}${field.name} ${nested}`.trim());
    }
    return parts;
  };
  const parts = ['__typename'];
  if (isObjectType(type)) {
    parts.push(...fieldsOf(type, depth));
  } else if (isUnionType(type) || isInterfaceType(type)) {
    for (const possible of schema.getPossibleTypes(type)) {
      if (depth + 1 > maxDepth) continue;
      parts.push(
        `... on ${possible.name} { __typename ${fieldsOf(possible, depth + 1).join(' ')} }`,
      );
    }
  }
  return `{ ${parts.join(' ')} }`;
}

function document(
  schema: GraphQLSchema,
  operation: OperationKind,
  name: string,
  args: readonly GraphQLArgument[],
  returnType: GraphQLNamedType,
  maxDepth: number,
): string {
  const declarations = args.map((arg) => `$${arg.name}: ${String(arg.type)}`).join(', ');
  const passed = args.map((arg) => `${arg.name}: $${arg.name}`).join(', ');
  const selection = selectionSet(schema, returnType, 2, maxDepth) ?? '';
  return `${operation} Walk${declarations ? `(${declarations})` : ''} { ${name}${
    passed ? `(${passed})` : ''
  } ${selection} }`;
}

/** Every field of Query, Mutation and Subscription, with its input slots and a document. */
export function rootFields(schema: GraphQLSchema, maxDepth: number): RootField[] {
  const roots: [OperationKind, ReturnType<GraphQLSchema['getQueryType']>][] = [
    ['query', schema.getQueryType()],
    ['mutation', schema.getMutationType()],
    ['subscription', schema.getSubscriptionType()],
  ];
  return roots.flatMap(([operation, type]) =>
    type
      ? Object.values(type.getFields()).map((field) => {
          const slots: InputSlot[] = [];
          for (const arg of field.args) collectSlots(arg.type, [arg.name], true, slots);
          return {
            operation,
            name: field.name,
            coordinate: `${type.name}.${field.name}`,
            slots,
            document: document(
              schema,
              operation,
              field.name,
              field.args,
              getNamedType(field.type),
              maxDepth,
            ),
          };
        })
      : [],
  );
}

export const slotKey = (slot: InputSlot): string => slot.path.join('.');

/** Variables from values by slot key; a slot without a value is left out. */
export function variablesOf(slots: InputSlot[], values: Map<string, unknown>) {
  const variables: Record<string, any> = {};
  for (const slot of slots) {
    const value = values.get(slotKey(slot));
    if (value === undefined) continue;
    let target = variables;
    for (const part of slot.path.slice(0, -1)) {
      target[part] ??= {};
      target = target[part];
    }
    target[slot.path.at(-1) as string] = value;
  }
  return variables;
}

/**
 * Every text a response carries, for leak checks: the JSON itself, and what base64 tokens in
 * it decode to (global IDs, cursors and download links carry IDs and names that way), twice
 * over for tokens nested inside decoded text.
 */
export function responseTexts(body: unknown): string[] {
  const texts = [JSON.stringify(body) ?? ''];
  for (let round = 0; round < 2; round++) {
    const decoded: string[] = [];
    for (const text of texts) {
      for (const match of text.match(/[A-Za-z0-9+/_-]{16,}={0,2}/g) ?? []) {
        for (const token of new Set([match, ...match.split('/')])) {
          if (token.length >= 16) decoded.push(Buffer.from(token, 'base64').toString('utf8'));
        }
      }
    }
    texts.push(...decoded.filter((text) => !texts.includes(text)));
  }
  return texts;
}
