import { randomUUID } from 'node:crypto';
import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import ExcelJS from 'exceljs';
import { type GraphQLSchema, isObjectType } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSigningSecret } from '../../server/http/download-route.js';
import { signDownload } from '../../server/infrastructure/downloads.js';
import { createTestApp, type TestApp, type TestCompany } from '../support/app.js';
import {
  INTROSPECTION_QUERY,
  type InputSlot,
  type RootField,
  responseTexts,
  rootFields,
  schemaFromIntrospection,
  slotKey,
  variablesOf,
} from '../support/schema-walk.js';
import {
  type ApiResponse,
  companyRows,
  type GraphQLClient,
  graphqlClient,
  importUntil,
  mutate,
  rowsReferringTo,
  uploadWorkbook,
  waitUntilIdle,
  workbookBytes,
} from '../support/tenant-fixtures.js';

/**
 * Company A (the owner) has one of everything; company B (the intruder, with an ADMIN token)
 * calls every root field of the live schema with A's IDs and names. Nothing of A's may come
 * back, A's IDs must behave exactly like IDs that do not exist, and nothing of A's may change.
 * The operations come from introspection, so a new field is walked as soon as it exists.
 */

/** Every name A owns contains this, so any of A's text in a response is found by it. */
const OWNER_MARK = 'zqalpha';

/**
 * How deep the walk's selections go (graphql-armor's count, fragments included): deep enough
 * to see the objects inside a connection's nodes, well inside the server's limits.
 */
const WALK_DEPTH = 7;

/**
 * Root fields the generic walk cannot call, each with the reason and where it is covered.
 * A field listed here that no longer exists fails the walk, like a field missing from it.
 */
const HANDLED_SPECIALLY: Record<string, string> = {
  'Mutation.startImport':
    'its file is an Upload, which only a multipart request can carry, and it takes no ID: ' +
    '"imports with the other company\'s headers, emails and references as its own" uploads one',
  'Mutation.confirmColumns':
    'its columns are a list of input objects: "refuses to decide columns or fix rows of the ' +
    "owner's sessions\" sends the owner's session with real decisions",
  'Mutation.updateImportRows':
    'its rows are a list of input objects: "refuses to decide columns or fix rows of the ' +
    "owner's sessions\" sends the owner's session with a real row",
  'Mutation.replaceImportFile':
    'its file is an Upload, which only a multipart request can carry: test/import/row-edits.test.ts ' +
    '"takes a corrected file into the same session" sends one to another company\'s session',
};

/**
 * Answers that say "no such object" and nothing more. reorderDistributionRules answers a list
 * naming a rule the company does not have as a wrong order: the list is not all its rules.
 */
const NOT_FOUND_TYPES = new Set(['NotFoundError', 'InvalidRuleOrderError']);

let t: TestApp;
let api: GraphQLClient;
let baseUrl: string;
let owner: TestCompany;
let intruder: TestCompany;
let schema: GraphQLSchema;
let fields: RootField[];
/** Every ID A can see (global IDs and the company ID). */
let ownerIds: string[];
/** The database UUIDs behind them: found in any response, even inside an encoded value. */
let ownerUuids: string[];
/** Every text of A's that carries the mark, and every cursor A was given. */
let ownerStrings: string[];
let ownerCursors: string[];
let intruderIds: string[];
const ownerSessions: Record<string, string> = {};
let intruderSession: string;
let ownerBefore: { rows: unknown; view: unknown };

const GROUP =
  'mutation($name: String!) { createTrainingGroup(input: { name: $name }) { ... on TrainingGroup { id name } ... on Error { code message } } }';
const FIELD =
  'mutation($label: String!) { createCustomField(input: { label: $label }) { ... on CustomField { id key } ... on Error { code message } } }';
const RULE = `mutation($input: CreateDistributionRuleInput!) { createDistributionRule(input: $input) {
  ... on DistributionRule { id } ... on Error { code message } } }`;

/** A custom field, a group and a rule of the company's own: what its ID slots can name. */
async function settingsOf(company: TestCompany, mark: string) {
  const field = await mutate(api, company.token, FIELD, { label: `${mark} Dept` });
  const group = await mutate(api, company.token, GROUP, { name: `${mark} Group` });
  const rule = await mutate(api, company.token, RULE, {
    input: {
      fieldKey: field.key,
      operator: 'EQUALS',
      value: `${mark}-sales`,
      trainingGroupId: group.id,
    },
  });
  return { field, group, rule };
}

const HEADER = ['Email', 'userName', 'reference', 'Zqalpha Dept'];

beforeAll(async () => {
  t = await createTestApp();
  baseUrl = await t.listen();
  api = graphqlClient(t);
  owner = await t.createTestCompany('Zqalpha Corp');
  intruder = await t.createTestCompany('Zqbeta Corp');

  await settingsOf(owner, 'Zqalpha');
  // Users through a committed import that adds a column as a custom field.
  ownerSessions.completed = await importUntil(
    api,
    baseUrl,
    owner.token,
    {
      name: 'zqalpha-complete.xlsx',
      comment: 'Zqalpha first import',
      rows: [
        [...HEADER, 'Zqalpha Extra'],
        ['ann.zqalpha@example.com', 'Zqalpha Ann', 'ZQALPHA-1', 'zqalpha-sales', 'zqalpha-x1'],
        ['bob.zqalpha@example.com', 'Zqalpha Bob', 'ZQALPHA-2', 'zqalpha-other', 'zqalpha-x2'],
      ],
    },
    'COMPLETED',
    ['Zqalpha Extra'],
  );
  // Sessions left at every stage that waits for the user: an intruder acting on one would
  // move it on.
  ownerSessions.customFields = await importUntil(
    api,
    baseUrl,
    owner.token,
    {
      name: 'zqalpha-pending.xlsx',
      comment: 'Zqalpha pending columns',
      rows: [
        [...HEADER, 'Zqalpha Pending'],
        ['cat.zqalpha@example.com', 'Zqalpha Cat', 'ZQALPHA-3', 'zqalpha-sales', 'zqalpha-p'],
      ],
    },
    'CUSTOM_FIELDS',
  );
  ownerSessions.validation = await importUntil(
    api,
    baseUrl,
    owner.token,
    {
      name: 'zqalpha-errors.xlsx',
      comment: 'Zqalpha with errors',
      rows: [
        HEADER,
        ['zqalpha-not-an-email', 'Zqalpha Bad', 'ZQALPHA-4', 'zqalpha-sales'],
        ['dan.zqalpha@example.com', 'Zqalpha Dan', 'ZQALPHA-5', 'zqalpha-sales'],
        // A duplicate in the file: a row in import_row_duplicates.
        ['DAN.zqalpha@example.com', 'Zqalpha Dan Again', 'ZQALPHA-8', 'zqalpha-sales'],
      ],
    },
    'VALIDATION',
  );
  ownerSessions.review = await importUntil(
    api,
    baseUrl,
    owner.token,
    {
      name: 'zqalpha-review.xlsx',
      comment: 'Zqalpha in review',
      rows: [HEADER, ['fay.zqalpha@example.com', 'Zqalpha Fay', 'ZQALPHA-7', 'zqalpha-sales']],
    },
    'REVIEW',
  );
  ownerSessions.groupAssignment = await importUntil(
    api,
    baseUrl,
    owner.token,
    {
      name: 'zqalpha-update.xlsx',
      comment: 'Zqalpha update',
      rows: [
        HEADER,
        ['ann.zqalpha@example.com', 'Zqalpha Ann Renamed', 'ZQALPHA-1', 'zqalpha-sales'],
        ['eve.zqalpha@example.com', 'Zqalpha Eve', 'ZQALPHA-6', 'zqalpha-sales'],
      ],
    },
    'GROUP_ASSIGNMENT',
  );

  // Mail sent, so the owner has rows in every table the snapshot compares.
  await mutate(
    api,
    owner.token,
    `mutation($id: ID!) { emailImportReport(input: { sessionId: $id, report: ERRORS, to: ["hr.zqalpha@example.com"] }) {
      __typename ... on Error { code message } } }`,
    { id: ownerSessions.validation },
  );

  // A row fixed in place (an audited edit), and a column mapped at stage 2 (remembered).
  await mutate(
    api,
    owner.token,
    `mutation($id: ID!) { updateImportRows(input: { sessionId: $id, rows: [{ rowNumber: 3, values: [{ header: "userName", value: "Zqalpha Dan Fixed" }] }] }) {
      __typename ... on Error { code message } } }`,
    { id: ownerSessions.validation },
  );
  const mapped = await importUntil(
    api,
    baseUrl,
    owner.token,
    {
      name: 'zqalpha-mapped.xlsx',
      comment: 'Zqalpha mapped',
      rows: [
        ['Zqalpha Mail', 'userName', 'reference'],
        ['hal.zqalpha@example.com', 'Zqalpha Hal', 'ZQALPHA-9'],
      ],
    },
    'CUSTOM_FIELDS',
  );
  await mutate(
    api,
    owner.token,
    `mutation($id: ID!) { confirmColumns(input: { sessionId: $id, columns: [{ header: "Zqalpha Mail", action: MAP, fieldKey: "email" }] }) {
      __typename ... on Error { code message } } }`,
    { id: mapped },
  );
  // Its validation runs in the background: the snapshots below need it at rest (at REVIEW).
  for (let stage = ''; stage !== 'REVIEW'; ) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const { body } = await api.request(
      owner.token,
      'query($id: ID!) { importSession(id: $id) { stage busy } }',
      { id: mapped },
    );
    const session = (body as any).data.importSession;
    stage = session.busy ? '' : session.stage;
  }

  await settingsOf(intruder, 'Zqbeta');
  intruderSession = await importUntil(
    api,
    baseUrl,
    intruder.token,
    {
      name: 'zqbeta.xlsx',
      comment: null,
      rows: [
        ['Email', 'userName', 'reference'],
        ['not-an-email', 'Zqbeta X', 'ZQBETA-1'],
      ],
    },
    'VALIDATION',
  );

  const introspection = await api.request(intruder.token, INTROSPECTION_QUERY);
  expect(introspection.body.errors, 'introspection of the live schema').toBeUndefined();
  schema = schemaFromIntrospection(introspection.body.data);
  fields = rootFields(schema, WALK_DEPTH);

  const ownerView = await harvest(owner.token);
  ownerIds = [...ownerView.ids];
  ownerUuids = ownerIds.map(uuidOf);
  // Names ignore case: one of each, so a company storing them in turn never collides with itself.
  ownerStrings = [
    ...new Map([...ownerView.strings].map((value) => [value.trim().toLowerCase(), value])).values(),
  ];
  ownerCursors = [...ownerView.cursors];
  intruderIds = [...(await harvest(intruder.token)).ids];
  ownerBefore = { rows: await companyRows(t.db, owner.companyId), view: ownerView.view };
});

afterAll(async () => {
  await t.close();
});

const isUuid = (value: string) =>
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);

/** The database UUID of a global ID (the company ID is one already). */
function uuidOf(id: string): string {
  return isUuid(id) ? id : decodeGlobalID(id).id;
}

function uuidInside(value: string): string[] {
  try {
    const { id } = decodeGlobalID(value);
    return isUuid(id) ? [id] : [];
  } catch {
    return [];
  }
}

/** An ID of the same kind that names nothing. */
function nonexistentLike(id: string): string {
  return isUuid(id) ? randomUUID() : encodeGlobalID(decodeGlobalID(id).typename, randomUUID());
}

function requiredOnlyIds(field: RootField): InputSlot | null {
  const required = field.slots.filter((slot) => slot.required);
  return required.length === 1 && required[0]?.kind === 'ID' && !required[0].list
    ? required[0]
    : null;
}

/** Runs a root field's document the way its operation type is served. */
function call(token: string, field: RootField, variables: Record<string, unknown>) {
  return field.operation === 'subscription'
    ? api.subscribe(token, field.document, variables)
    : api.request(token, field.document, variables);
}

/**
 * Everything a company can read: every query field without required arguments, then every
 * query field taking one ID with each ID found, until no new ID turns up.
 */
async function harvest(token: string) {
  const ids = new Set<string>();
  const strings = new Set<string>();
  const cursors = new Set<string>();
  const view: Record<string, unknown> = {};
  const collect = (value: unknown, key = ''): void => {
    if (typeof value === 'string') {
      if (key === 'id') ids.add(value);
      if (/cursor$/i.test(key)) cursors.add(value);
      else if (value.toLowerCase().includes(OWNER_MARK)) strings.add(value);
    } else if (Array.isArray(value)) {
      for (const item of value) collect(item, key);
    } else if (value && typeof value === 'object') {
      for (const [name, item] of Object.entries(value)) collect(item, name);
    }
  };
  // Links are signed anew on every read: they are compared by what they serve, not by URL.
  const stable = (body: unknown) =>
    JSON.parse(JSON.stringify(body), (key, value) =>
      key === 'url' || key === 'expiresAt' ? undefined : value,
    );
  const queries = fields.filter((field) => field.operation === 'query');
  for (const field of queries.filter((candidate) =>
    candidate.slots.every((slot) => !slot.required),
  )) {
    const { body } = await api.request(token, field.document);
    expect(body.errors, field.coordinate).toBeUndefined();
    view[field.coordinate] = stable(body.data);
    collect(body.data);
  }
  const done = new Set<string>();
  for (let fresh = [...ids]; fresh.length > 0; fresh = [...ids].filter((id) => !done.has(id))) {
    for (const id of fresh) {
      done.add(id);
      for (const field of queries) {
        const slot = requiredOnlyIds(field);
        if (!slot) continue;
        const { body } = await api.request(
          token,
          field.document,
          variablesOf(field.slots, new Map([[slotKey(slot), id]])),
        );
        if (body.data?.[field.name] == null) continue;
        view[`${field.coordinate}(${id})`] = stable(body.data);
        collect(body.data);
      }
    }
  }
  return { ids, strings, cursors, view };
}

/**
 * Marks of A's data found in a response, after taking out what the request itself sent. With
 * `names: false` only A's IDs count: a company that stored one of A's names as its own gets
 * it back, changed too (a custom field's key is made from its label).
 */
function ownerDataIn(body: unknown, sent: string[], { names = true } = {}): string[] {
  let text = JSON.stringify(body) ?? '';
  for (const value of sent) {
    const escaped = JSON.stringify(value).slice(1, -1);
    if (escaped.length > 0) text = text.split(escaped).join('<sent>');
  }
  const texts = responseTexts(JSON.parse(text)).map((value) => value.toLowerCase());
  return [...(names ? [OWNER_MARK] : []), ...ownerIds, ...ownerUuids].filter((mark) =>
    texts.some((value) => value.includes(mark.toLowerCase())),
  );
}

/**
 * The strings a request sent, and the UUIDs inside the global IDs it sent: an answer may name
 * an ID either way (session errors name the UUID).
 */
function sentStrings(variables: unknown): string[] {
  const sent: string[] = [];
  const visit = (value: unknown): void => {
    if (typeof value === 'string') sent.push(value, ...uuidInside(value));
    else if (value && typeof value === 'object') Object.values(value).forEach(visit);
  };
  visit(variables);
  return sent;
}

interface Outcome {
  /** The operation ran (it was not refused before execution, e.g. by validation). */
  executed: boolean;
  /** The root field's value: null, an object, a list. */
  value: any;
  errors: { message: string; extensions?: { code?: string } }[];
}

function outcomeOf(field: RootField, response: ApiResponse): Outcome {
  if (field.operation === 'subscription') {
    const [first] = (response.body?.events ?? []) as any[];
    const errors = first?.errors ?? [];
    const executed =
      first !== undefined &&
      !errors.some((error: any) => error.extensions?.code === 'GRAPHQL_VALIDATION_FAILED');
    return { executed, value: first?.data?.[field.name] ?? null, errors };
  }
  const data = response.body?.data;
  return {
    executed: data != null && field.name in data,
    value: data?.[field.name] ?? null,
    errors: response.body?.errors ?? [],
  };
}

function implementsError(typename: unknown): boolean {
  const type = typeof typename === 'string' ? schema.getType(typename) : undefined;
  return isObjectType(type) && type.getInterfaces().some((face) => face.name === 'Error');
}

/** What a caller can tell from an answer: which type or error code, or how many items. */
function signature(outcome: Outcome) {
  const { value } = outcome;
  return {
    value:
      value === null
        ? null
        : Array.isArray(value)
          ? `list of ${value.length}`
          : `${value.__typename}${value.code ? ` ${value.code}` : ''}`,
    errors: outcome.errors.map((error) => error.extensions?.code ?? error.message),
  };
}

const STRINGS = ['email', 'walk@example.com'];

/** Values a walk tries in a non-ID slot (a required slot gets the first). */
function valuesFor(slot: InputSlot): unknown[] {
  const one: unknown[] =
    slot.kind === 'String'
      ? STRINGS
      : slot.kind === 'Boolean'
        ? [true, false]
        : slot.kind === 'Int'
          ? [1]
          : slot.kind === 'Float'
            ? [1.5]
            : slot.kind === 'enum'
              ? slot.enumValues
              : [];
  return slot.list ? [[], ...one.map((value) => [value])] : one;
}

/**
 * Variable sets around a base (required slots filled, optional ones left out), changing one
 * slot at a time through its values and, when optional, leaving it out: every value of every
 * slot is tried without multiplying them all.
 */
function variants(
  field: RootField,
  base: Map<string, unknown>,
  valuesOf: (slot: InputSlot) => unknown[],
): Map<string, unknown>[] {
  const seen = new Set<string>();
  const all: Map<string, unknown>[] = [];
  const add = (values: Map<string, unknown>) => {
    const key = JSON.stringify([...values]);
    if (!seen.has(key)) {
      seen.add(key);
      all.push(values);
    }
  };
  add(base);
  for (const slot of field.slots) {
    const options = [...valuesOf(slot), ...(slot.required ? [] : [undefined])];
    for (const option of options) add(new Map(base).set(slotKey(slot), option));
  }
  return all;
}

function baseValues(field: RootField, fill: (slot: InputSlot) => unknown) {
  const base = new Map<string, unknown>();
  for (const slot of field.slots) if (slot.required) base.set(slotKey(slot), fill(slot));
  return base;
}

const unsupportedSlots = (field: RootField) =>
  field.slots.filter((slot) => slot.kind === 'unsupported');

interface Walk {
  problems: string[];
  /** Fields that ran at least once (not refused before execution). */
  walked: Set<string>;
  /** Fields that answered "no such object" at least once. */
  notFoundSeen: Set<string>;
  calls: number;
}

/** Problems any answer can have: the owner's data in it, or a masked error (something threw). */
function answerProblems(
  where: string,
  response: ApiResponse,
  variables: unknown,
  options: { names?: boolean } = {},
): string[] {
  const problems: string[] = [];
  const leaked = ownerDataIn(response.body, sentStrings(variables), options);
  if (leaked.length > 0) {
    problems.push(`${where}: shows ${leaked.join(', ')}: ${JSON.stringify(response.body)}`);
  }
  if (JSON.stringify(response.body).includes('"Unexpected error."')) {
    problems.push(`${where}: masked error: ${JSON.stringify(response.body)}`);
  }
  return problems;
}

/** A field that takes no ID: the intruder's own answers must hold nothing of the owner's. */
async function walkWithoutIds(field: RootField, walk: Walk): Promise<void> {
  const base = baseValues(field, (slot) => valuesFor(slot)[0]);
  for (const values of variants(field, base, valuesFor)) {
    const variables = variablesOf(field.slots, values);
    const response = await call(intruder.token, field, variables);
    walk.calls++;
    if (outcomeOf(field, response).executed) walk.walked.add(field.coordinate);
    walk.problems.push(
      ...answerProblems(`${field.coordinate} ${JSON.stringify(variables)}`, response, variables),
    );
  }
}

/**
 * A field that takes IDs: each of the owner's IDs in each ID slot (the other ID slots get the
 * same ID, or one of the intruder's own, or nothing), each other slot through its values. Each
 * call runs again with an ID of the same kind that names nothing: the answers must be the same.
 */
async function walkWithOwnerIds(field: RootField, walk: Walk): Promise<void> {
  const wrap = (slot: InputSlot, id: unknown) => (slot.list ? [id] : id);
  for (const target of field.slots.filter((slot) => slot.kind === 'ID')) {
    for (const probe of ownerIds) {
      const base = baseValues(field, (slot) =>
        slot.kind === 'ID' ? wrap(slot, probe) : valuesFor(slot)[0],
      );
      base.set(slotKey(target), wrap(target, probe));
      const sets = variants(field, base, (slot) => {
        if (slot === target) {
          // A list mixing the owner's ID with the intruder's own, in both orders.
          return slot.list
            ? intruderIds.flatMap((own) => [
                [probe, own],
                [own, probe],
              ])
            : [];
        }
        return slot.kind === 'ID'
          ? [probe, ...intruderIds].map((id) => wrap(slot, id))
          : valuesFor(slot);
      });
      const absent = nonexistentLike(probe);
      for (const values of sets) {
        const variables = variablesOf(field.slots, values);
        const controlVariables = JSON.parse(JSON.stringify(variables).split(probe).join(absent));
        const response = await call(intruder.token, field, variables);
        const control = await call(intruder.token, field, controlVariables);
        walk.calls += 2;
        const where = `${field.coordinate} ${JSON.stringify(variables)}`;
        const outcome = outcomeOf(field, response);
        if (!outcome.executed) {
          walk.problems.push(`${where}: not executed: ${JSON.stringify(response.body)}`);
          continue;
        }
        walk.walked.add(field.coordinate);
        walk.problems.push(...answerProblems(where, response, variables));
        const { value, errors } = outcome;
        if (value !== null && !implementsError(value.__typename)) {
          walk.problems.push(`${where}: answered ${JSON.stringify(value)}, not null or an error`);
        }
        if (
          (value === null && errors.length === 0) ||
          NOT_FOUND_TYPES.has(value?.__typename) ||
          errors.some((error) => error.extensions?.code === 'NOT_FOUND')
        ) {
          walk.notFoundSeen.add(field.coordinate);
        }
        // Top-level errors too must be the same: the ID (or its UUID) is all that may differ.
        const normal = (answer: ApiResponse, id: string) =>
          [id, uuidOf(id)].reduce(
            (text, form) => text.split(form).join('<ID>'),
            JSON.stringify(answer),
          );
        if (normal(response, probe) !== normal(control, absent)) {
          walk.problems.push(
            `${where}: differs from an ID that does not exist:\n  owner's ID: ${JSON.stringify(response)}\n  no such ID: ${JSON.stringify(control)}`,
          );
        }
      }
    }
  }
}

/**
 * Required slots filled, and the caller's own objects named in the ID slots: the first choice
 * not answered "no such object" (else the last), so names are checked by code past the ID.
 */
async function ownIdsBase(
  field: RootField,
  caller: TestCompany,
  callerIds: string[],
): Promise<Map<string, unknown>> {
  const choices = field.slots
    .filter((slot) => slot.kind === 'ID')
    .reduce<Map<string, unknown>[]>(
      (sets, slot) =>
        sets.flatMap((set) =>
          [
            ...(slot.required ? [] : [undefined]),
            ...callerIds.map((id) => (slot.list ? [id] : id)),
          ].map((id) => new Map(set).set(slotKey(slot), id)),
        ),
      [new Map()],
    );
  let base = new Map<string, unknown>();
  for (const choice of choices) {
    base = new Map([...baseValues(field, (slot) => valuesFor(slot)[0]), ...choice]);
    const response = await call(caller.token, field, variablesOf(field.slots, base));
    const { executed, value } = outcomeOf(field, response);
    if (executed && value !== null && !NOT_FOUND_TYPES.has(value.__typename)) break;
  }
  return base;
}

describe('another company, with an ADMIN token', () => {
  it('sees the owner through the walk: every kind of object, and every session stage', () => {
    const kinds = new Set(
      ownerIds.filter((id) => !isUuid(id)).map((id) => decodeGlobalID(id).typename),
    );
    expect([...kinds].sort()).toEqual([
      'ApiToken',
      'ColumnMapping',
      'CustomField',
      'DistributionRule',
      'ImportSession',
      'TrainingGroup',
      'User',
    ]);
    expect(ownerIds).toContain(owner.companyId);
    const sessions = (ownerBefore.view as any)['Query.importSessions'].importSessions.edges;
    expect(sessions.map((edge: any) => edge.node.stage).sort()).toEqual([
      'COMPLETED',
      'CUSTOM_FIELDS',
      'GROUP_ASSIGNMENT',
      // The session whose column was mapped at stage 2 (its rows have no errors).
      'REVIEW',
      'REVIEW',
      'VALIDATION',
    ]);
    expect(ownerIds).toEqual(expect.arrayContaining(Object.values(ownerSessions)));
    expect(ownerStrings).toEqual(
      expect.arrayContaining([
        'Zqalpha Group',
        'zqalpha_dept',
        'Zqalpha Ann Renamed',
        'Zqalpha Pending',
      ]),
    );
    expect(ownerCursors.length).toBeGreaterThan(0);
    // The snapshot compared at the end holds rows of every table.
    const empty = Object.entries(ownerBefore.rows as Record<string, unknown[]>)
      .filter(([, rows]) => rows.length === 0)
      .map(([table]) => table);
    expect(empty).toEqual([]);
    expect(intruderIds.some((id) => ownerIds.includes(id))).toBe(false);
    expect(fields.map((field) => field.operation)).toEqual(
      expect.arrayContaining(['query', 'mutation', 'subscription']),
    );
  });

  // Thousands of requests: beyond the default minute when both cores are busy.
  it("gets every root field's answer for the owner's IDs exactly as for IDs that do not exist", {
    timeout: 240_000,
  }, async () => {
    const walk: Walk = { problems: [], walked: new Set(), notFoundSeen: new Set(), calls: 0 };
    for (const field of fields) {
      if (field.coordinate in HANDLED_SPECIALLY) continue;
      const unsupported = unsupportedSlots(field);
      if (unsupported.length > 0) {
        const slots = unsupported.map((slot) => `${slotKey(slot)}: ${slot.typeName}`).join(', ');
        walk.problems.push(
          `${field.coordinate}: cannot fill ${slots}; add it to HANDLED_SPECIALLY`,
        );
      } else if (field.slots.some((slot) => slot.kind === 'ID')) {
        await walkWithOwnerIds(field, walk);
      } else {
        await walkWithoutIds(field, walk);
      }
    }
    const coordinates = fields.map((field) => field.coordinate);
    const unwalked = coordinates.filter(
      (coordinate) => !walk.walked.has(coordinate) && !(coordinate in HANDLED_SPECIALLY),
    );
    const stale = Object.keys(HANDLED_SPECIALLY).filter(
      (coordinate) => !coordinates.includes(coordinate),
    );
    // Every field taking an ID must have reached its "no such object" answer at least once,
    // so the walk did not stop short of the ID check everywhere (at a validation error, say).
    const neverNotFound = fields
      .filter((field) => field.slots.some((slot) => slot.kind === 'ID'))
      .map((field) => field.coordinate)
      .filter((coordinate) => walk.walked.has(coordinate) && !walk.notFoundSeen.has(coordinate));
    expect({
      problems: walk.problems.slice(0, 30),
      problemCount: walk.problems.length,
      unwalked,
      stale,
      neverNotFound,
    }).toEqual({ problems: [], problemCount: 0, unwalked: [], stale: [], neverNotFound: [] });
    expect(walk.calls).toBeGreaterThan(fields.length * ownerIds.length);
  });

  it("gets the same answers for the owner's names, keys, emails and cursors as for names nobody has", async () => {
    const problems: string[] = [];
    let fresh = 0;
    for (const field of fields) {
      const stringSlots = field.slots.filter((slot) => slot.kind === 'String');
      if (
        stringSlots.length === 0 ||
        field.coordinate in HANDLED_SPECIALLY ||
        unsupportedSlots(field).length > 0
      ) {
        continue;
      }
      // Reads run as the intruder. Changes run in a new company of their own each, so a name
      // one of them stores (a group renamed to A's group name) shows up in no other answer.
      const readOnly = field.operation === 'query';
      const caller = readOnly ? intruder : await t.createTestCompany('Zqgamma Corp');
      const callerIds = readOnly
        ? intruderIds
        : Object.values(await settingsOf(caller, `Zqgamma${fresh}`)).map(
            (object) => object.id as string,
          );
      const base = await ownIdsBase(field, caller, callerIds);
      const probes = readOnly ? [...ownerStrings, ...ownerCursors] : ownerStrings;
      for (const slot of stringSlots) {
        for (const probe of probes) {
          const wrap = (value: string) => (slot.list ? [value] : value);
          const variables = variablesOf(field.slots, new Map(base).set(slotKey(slot), wrap(probe)));
          const response = await call(caller.token, field, variables);
          const where = `${field.coordinate} ${JSON.stringify(variables)}`;
          const outcome = outcomeOf(field, response);
          if (!outcome.executed && !readOnly) {
            problems.push(`${where}: not executed: ${JSON.stringify(response.body)}`);
            continue;
          }
          problems.push(...answerProblems(where, response, variables, { names: readOnly }));
          if (readOnly) continue;
          // The same text with A's mark replaced: same shape, but nobody's.
          fresh++;
          const unowned = probe.replace(new RegExp(OWNER_MARK, 'gi'), `zqfresh${fresh}`);
          const controlVariables = variablesOf(
            field.slots,
            new Map(base).set(slotKey(slot), wrap(unowned)),
          );
          const control = outcomeOf(field, await call(caller.token, field, controlVariables));
          if (JSON.stringify(signature(outcome)) !== JSON.stringify(signature(control))) {
            problems.push(
              `${where}: ${JSON.stringify(signature(outcome))}, but for ${JSON.stringify(unowned)}: ${JSON.stringify(signature(control))}`,
            );
          }
        }
      }
    }
    expect({ problems: problems.slice(0, 30), problemCount: problems.length }).toEqual({
      problems: [],
      problemCount: 0,
    });
  });
});

describe('another company fixing rows', () => {
  it("refuses to decide columns or fix rows of the owner's sessions", async () => {
    const confirm = await api.request(
      intruder.token,
      `mutation($id: ID!) { confirmColumns(input: { sessionId: $id, columns: [{ header: "Zqalpha Pending", action: ADD }] }) {
        __typename } }`,
      { id: ownerSessions.customFields },
    );
    expect(confirm.body).toEqual({ data: { confirmColumns: { __typename: 'NotFoundError' } } });
    const update = await api.request(
      intruder.token,
      `mutation($id: ID!) { updateImportRows(input: { sessionId: $id, rows: [{ rowNumber: 3, values: [{ header: "userName", value: "Zqbeta" }] }] }) {
        __typename } }`,
      { id: ownerSessions.validation },
    );
    expect(update.body).toEqual({ data: { updateImportRows: { __typename: 'NotFoundError' } } });
  });
});

describe('another company importing', () => {
  it("imports a file with the owner's headers, emails and references as its own", async () => {
    const other = await t.createTestCompany('Zqdelta Corp');
    const responses: unknown[] = [];
    const request = async (query: string, variables: Record<string, unknown>) => {
      const { body } = await api.request(other.token, query, variables);
      responses.push(body);
      return body.data;
    };
    const upload = await uploadWorkbook(
      baseUrl,
      other.token,
      {
        name: 'theirs.xlsx',
        content: await workbookBytes([
          [...HEADER, 'Zqalpha Extra'],
          ['ANN.zqalpha@example.com', 'Zqalpha Ann', 'ZQALPHA-1', 'zqalpha-sales', 'zqalpha-x1'],
          ['bob.zqalpha@example.com', 'Someone Else', 'ZQALPHA-2', 'zqalpha-sales', 'x'],
        ]),
      },
      null,
    );
    responses.push(upload.body);
    const id = upload.body.data.startImport.id;
    const SESSION = `query($id: ID!) { importSession(id: $id) {
      stage busy invalidRowCount columns { header status field { key } }
      errors { edges { node { rowNumber code message } } }
      rows { edges { node { rowNumber action changes { from to } trainingGroup { id } matchedRule { id } } } }
      groupAssignment { trainingGroup { id } userCount }
      result { created updated unchanged skipped } } }`;
    const idle = async () => {
      await waitUntilIdle(api, other.token, id);
      return (await request(SESSION, { id })).importSession;
    };

    // The owner's custom fields are no columns of this company's: they are new here.
    const atCustomFields = await idle();
    expect(atCustomFields.stage).toBe('CUSTOM_FIELDS');
    expect(atCustomFields.columns.slice(3)).toEqual([
      { header: 'Zqalpha Dept', status: 'NEW', field: null },
      { header: 'Zqalpha Extra', status: 'NEW', field: null },
    ]);
    await request(
      'mutation($id: ID!) { confirmCustomFields(input: { sessionId: $id, addToDatabase: [] }) { __typename } }',
      { id },
    );
    // The owner's emails and references are free here: no conflict, every row a new user.
    const reviewed = await idle();
    expect(reviewed).toMatchObject({ stage: 'REVIEW', invalidRowCount: 0, errors: { edges: [] } });
    expect(reviewed.rows.edges.map((edge: any) => edge.node)).toEqual([
      { rowNumber: 2, action: 'CREATE', changes: [], trainingGroup: null, matchedRule: null },
      { rowNumber: 3, action: 'CREATE', changes: [], trainingGroup: null, matchedRule: null },
    ]);
    const CONTINUE = `mutation($id: ID!, $stage: ImportStage!) { continueImport(input: { sessionId: $id, stage: $stage }) { __typename } }`;
    await request(CONTINUE, { id, stage: 'REVIEW' });
    // The owner's rule (Zqalpha Dept = zqalpha-sales) does not assign this company's users.
    const assigned = await idle();
    expect(assigned.groupAssignment).toEqual([{ trainingGroup: null, userCount: 2 }]);
    await request(CONTINUE, { id, stage: 'GROUP_ASSIGNMENT' });
    const committed = await idle();
    expect(committed).toMatchObject({
      stage: 'COMPLETED',
      result: { created: 2, updated: 0, unchanged: 0, skipped: 0 },
    });
    const users = await request(
      '{ users { edges { node { email userName customFieldValues { fieldKey } trainingGroup { id } } } } }',
      {},
    );
    expect(users.users.edges.map((edge: any) => edge.node)).toEqual([
      {
        email: 'ANN.zqalpha@example.com',
        userName: 'Zqalpha Ann',
        customFieldValues: [],
        trainingGroup: null,
      },
      {
        email: 'bob.zqalpha@example.com',
        userName: 'Someone Else',
        customFieldValues: [],
        trainingGroup: null,
      },
    ]);
    for (const body of responses) expect(ownerDataIn(body, [], { names: false })).toEqual([]);
  });
});

describe('download links', () => {
  /** The link as served, fetched from the test server (links name the request's origin). */
  const fetchLink = (url: string, init?: RequestInit) => {
    const link = new URL(url);
    link.host = new URL(baseUrl).host;
    return fetch(link, init);
  };
  const ownerErrorReport = async () => {
    const { body } = await api.request(
      owner.token,
      'query($id: ID!) { importSession(id: $id) { errorReport { url } } }',
      { id: ownerSessions.validation },
    );
    return body.data.importSession.errorReport.url as string;
  };
  const sheetRows = async (response: Response) => {
    const workbook = new ExcelJS.Workbook();
    await workbook.xlsx.load(await response.arrayBuffer());
    return workbook.worksheets[0]?.getSheetValues().map((row) => JSON.stringify(row));
  };
  /** The link with its token (`<payload>.<signature>`) rewritten. */
  const withToken = (url: string, change: (payload: any, signature: string) => string) => {
    const link = new URL(url);
    const [, , token = '', name] = link.pathname.split('/');
    const [payload = '', signature = ''] = token.split('.');
    link.pathname = `/downloads/${change(JSON.parse(Buffer.from(payload, 'base64url').toString()), signature)}/${name}`;
    return link.toString();
  };
  const encode = (payload: unknown) => Buffer.from(JSON.stringify(payload)).toString('base64url');

  it("serves the owner's link to whoever holds it: another company's token changes nothing", async () => {
    const url = await ownerErrorReport();
    const plain = await fetchLink(url);
    expect(plain.status).toBe(200);
    const rows = await sheetRows(plain);
    expect(rows?.join()).toContain('zqalpha-not-an-email');
    const asIntruder = await fetchLink(url, {
      headers: { authorization: `Bearer ${intruder.token}` },
    });
    expect(asIntruder.status).toBe(200);
    expect(await sheetRows(asIntruder)).toEqual(rows);
  });

  it('refuses a link whose signature, session or company was changed', async () => {
    const url = await ownerErrorReport();
    const changed = {
      signature: withToken(
        url,
        (payload, signature) =>
          `${encode(payload)}.${signature.slice(0, -1)}${signature.endsWith('A') ? 'B' : 'A'}`,
      ),
      session: withToken(
        url,
        (payload, signature) =>
          `${encode({ ...payload, sessionId: uuidOf(ownerSessions.groupAssignment as string) })}.${signature}`,
      ),
      company: withToken(
        url,
        (payload, signature) =>
          `${encode({ ...payload, companyId: intruder.companyId })}.${signature}`,
      ),
    };
    for (const [what, link] of Object.entries(changed)) {
      const response = await fetchLink(link);
      expect({ what, status: response.status, body: await response.json() }).toEqual({
        what,
        status: 404,
        body: { error: 'This download link is not valid.' },
      });
    }
  });

  it('says an expired link expired', async () => {
    const secret = await loadSigningSecret(t.db);
    const token = signDownload(secret, {
      kind: 'ERROR_REPORT',
      companyId: owner.companyId,
      sessionId: uuidOf(ownerSessions.validation as string),
      expiresAt: new Date(Date.now() - 1000),
    });
    const response = await fetchLink(`${baseUrl}/downloads/${token}/report.xlsx`);
    expect(response.status).toBe(410);
    expect((await response.json()).error).toMatch(/expired/);
  });

  it("serves nothing for a signed link naming one company's session under another company", async () => {
    const secret = await loadSigningSecret(t.db);
    const expiresAt = new Date(Date.now() + 60_000);
    for (const claims of [
      { companyId: intruder.companyId, sessionId: uuidOf(ownerSessions.validation as string) },
      { companyId: owner.companyId, sessionId: uuidOf(intruderSession) },
    ]) {
      for (const kind of ['ERROR_REPORT', 'IMPORTED_USERS_REPORT'] as const) {
        const token = signDownload(secret, { kind, ...claims, expiresAt });
        const response = await fetchLink(`${baseUrl}/downloads/${token}/report.xlsx`);
        expect({ kind, ...claims, status: response.status }).toEqual({
          kind,
          ...claims,
          status: 404,
        });
      }
    }
  });

  it('gives another company a template of its own columns only', async () => {
    const { body } = await api.request(
      intruder.token,
      '{ importTemplate { url } userFields { label } }',
    );
    const response = await fetchLink(body.data.importTemplate.url);
    expect(response.status).toBe(200);
    const [, header] = (await sheetRows(response)) ?? [];
    const labels = body.data.userFields.map((field: { label: string }) => field.label);
    expect(labels).toContain('Zqbeta Dept');
    expect(header).toBe(JSON.stringify([null, ...labels]));
    expect(header?.toLowerCase()).not.toContain(OWNER_MARK);
  });
});

describe('after all of it', () => {
  it("the owner's rows and everything the owner reads are as they were", async () => {
    expect(await companyRows(t.db, owner.companyId)).toEqual(ownerBefore.rows);
    // A token's last use moves with the owner's own requests (the harvest itself), whoever
    // else calls: it is left out of the comparison.
    const withoutLastUse = (view: unknown) =>
      JSON.parse(JSON.stringify(view, (key, value) => (key === 'lastUsedAt' ? null : value)));
    expect(withoutLastUse((await harvest(owner.token)).view)).toEqual(
      withoutLastUse(ownerBefore.view),
    );
    // …and no other company's row names one of the owner's (a rule assigning its group).
    expect(await rowsReferringTo(t.db, owner.companyId)).toEqual([]);
  });
});
