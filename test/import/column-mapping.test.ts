import { print } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CancelImportDocument,
  ColumnMappingsDocument,
  ConfirmColumnsDocument,
  CreateCustomFieldDocument,
  DeleteCustomFieldDocument,
  ImportSessionDocument,
  StartImportDocument,
} from '../../client/index.js';
import { createTestApp, type TestApp, type TestCompany } from '../support/app.js';
import { uploadFile } from '../support/http.js';
import { importSteps, workbookBytes } from '../support/import-steps.js';

let t: TestApp;
let baseUrl: string;
let steps: ReturnType<typeof importSteps>;
beforeAll(async () => {
  t = await createTestApp();
  baseUrl = await t.listen();
  steps = importSteps(t, baseUrl);
});
afterAll(async () => {
  await t.close();
});

const SESSION = `id stage rowCount validRowCount invalidRowCount failure { code message }
  unmappedFields { key }
  columns { header status matchSource field { key }
    suggestions { field { key } score reason explanation } }`;

const CONFIRM_COLUMNS = `mutation($input: ConfirmColumnsInput!) { confirmColumns(input: $input) {
  __typename
  ... on ImportSession { id stage busy }
  ... on Error { code message }
  ... on FieldMappedTwiceError { fieldKey headers }
  ... on RequiredFieldUnmappedError { fieldKeys }
  ... on UnknownHeaderError { headers }
} }`;

const CONFIRM_CUSTOM_FIELDS = `mutation($input: ConfirmCustomFieldsInput!) { confirmCustomFields(input: $input) {
  __typename ... on Error { code message } } }`;

const MAPPINGS = '{ columnMappings { id header field { key } } }';

/** A German HR export: no header is a field label; Kontakt holds the addresses. */
const HR_EXPORT: (string | null)[][] = [
  ['Kontakt', 'Name', 'Personalnummer', 'Abteilung'],
  ['anna@example.com', 'Anna Berg', 'P-1', 'Vertrieb'],
  ['bert@example.com', 'Bert Ritter', 'P-2', 'Einkauf'],
  ['carla@example.com', 'Carla Horn', 'P-3', null],
];

const column = (session: any, header: string) =>
  session.columns.find((candidate: any) => candidate.header === header);

async function atColumns(company: TestCompany, rows = HR_EXPORT) {
  const started = await steps.startImport(company, rows);
  const session = await steps.waitUntilIdle(company, started.id, SESSION);
  return session;
}

describe('stage 2: columns the admin maps', () => {
  it('stops at stage 2 with the required fields unmapped, suggesting by alias and by values', async () => {
    const company = await t.createTestCompany();
    const session = await atColumns(company);
    expect(session.stage).toBe('CUSTOM_FIELDS');
    expect(session.failure).toBeNull();
    expect(session.rowCount).toBe(3);
    expect(session.unmappedFields.map((field: any) => field.key)).toEqual([
      'email',
      'userName',
      'reference',
    ]);
    expect(session.columns.map((c: any) => c.status)).toEqual(['NEW', 'NEW', 'NEW', 'NEW']);

    const [kontakt] = column(session, 'Kontakt').suggestions;
    expect(kontakt).toMatchObject({ field: { key: 'email' }, reason: 'VALUES' });
    expect(kontakt.explanation).toContain('100%');
    const [name] = column(session, 'Name').suggestions;
    expect(name).toMatchObject({ field: { key: 'userName' }, reason: 'ALIAS' });
    const [personalnummer] = column(session, 'Personalnummer').suggestions;
    expect(personalnummer).toMatchObject({ field: { key: 'reference' }, reason: 'ALIAS' });
    expect(personalnummer.explanation).toContain('German');
    expect(column(session, 'Abteilung').suggestions).toEqual([]);
  });

  it('ranks aliases in French, Spanish and Russian, normalized names and near misses', async () => {
    const company = await t.createTestCompany();
    const session = await atColumns(company, [
      ['Courriel', 'Nombre completo', 'Табельный номер', 'E-MAIL', 'Refrence', 'Почта'],
      ['a@example.com', 'A', '1', 'b@example.com', 'x', 'c@example.com'],
    ]);
    expect(session.stage).toBe('CUSTOM_FIELDS');
    const top = (header: string) => column(session, header).suggestions[0];
    expect(top('Courriel')).toMatchObject({ field: { key: 'email' }, reason: 'ALIAS' });
    expect(top('Courriel').explanation).toContain('French');
    expect(top('Nombre completo')).toMatchObject({ field: { key: 'userName' }, reason: 'ALIAS' });
    expect(top('Табельный номер')).toMatchObject({ field: { key: 'reference' }, reason: 'ALIAS' });
    expect(top('E-MAIL')).toMatchObject({ field: { key: 'email' }, reason: 'NORMALIZED_NAME' });
    expect(top('Refrence')).toMatchObject({ field: { key: 'reference' }, reason: 'SIMILAR_NAME' });
    expect(top('Почта')).toMatchObject({ field: { key: 'email' }, reason: 'ALIAS' });
    // Ranked best first, scores between 0 and 1.
    for (const c of session.columns) {
      const scores = c.suggestions.map((s: any) => s.score);
      expect(scores).toEqual([...scores].sort((a, b) => b - a));
      for (const score of scores) expect(score).toBeGreaterThan(0);
      for (const score of scores) expect(score).toBeLessThanOrEqual(1);
    }
  });

  it('refuses bad decisions with typed errors and changes nothing', async () => {
    const company = await t.createTestCompany();
    const session = await atColumns(company);
    const confirm = (columns: unknown[]) =>
      steps.mutation(company.token, CONFIRM_COLUMNS, { input: { sessionId: session.id, columns } });
    const good = [
      { header: 'Kontakt', action: 'MAP', fieldKey: 'email' },
      { header: 'Name', action: 'MAP', fieldKey: 'userName' },
      { header: 'Personalnummer', action: 'MAP', fieldKey: 'reference' },
    ];

    const unknown = await confirm([...good, { header: 'Telefon', action: 'IGNORE' }]);
    expect(unknown).toMatchObject({ __typename: 'UnknownHeaderError', headers: ['Telefon'] });

    const twice = await confirm([
      ...good,
      { header: 'Abteilung', action: 'MAP', fieldKey: 'email' },
    ]);
    expect(twice).toMatchObject({
      __typename: 'FieldMappedTwiceError',
      fieldKey: 'email',
      headers: ['Kontakt', 'Abteilung'],
    });

    const unmapped = await confirm([good[0], good[1], { header: 'Personalnummer', action: 'ADD' }]);
    expect(unmapped).toMatchObject({
      __typename: 'RequiredFieldUnmappedError',
      fieldKeys: ['reference'],
    });

    const noField = await confirm([...good.slice(1), { header: 'Kontakt', action: 'MAP' }]);
    expect(noField.__typename).toBe('InvalidColumnDecisionError');

    const unknownField = await confirm([
      ...good,
      { header: 'Abteilung', action: 'MAP', fieldKey: 'department' },
    ]);
    expect(unknownField.__typename).toBe('UnknownFieldError');

    const deprecated = await steps.mutation(company.token, CONFIRM_CUSTOM_FIELDS, {
      input: { sessionId: session.id, addToDatabase: ['Abteilung'] },
    });
    expect(deprecated).toMatchObject({
      __typename: 'RequiredFieldUnmappedError',
      code: 'REQUIRED_FIELD_UNMAPPED',
    });

    const after = await steps.query(
      company.token,
      `query($id: ID!) { importSession(id: $id) { stage busy } userFields { key } columnMappings { id } }`,
      { id: session.id },
    );
    expect(after.importSession).toEqual({ stage: 'CUSTOM_FIELDS', busy: false });
    expect(after.userFields.map((field: any) => field.key)).toEqual([
      'email',
      'userName',
      'reference',
    ]);
    expect(after.columnMappings).toEqual([]);

    const viewer = await t.request(company.viewerToken, CONFIRM_COLUMNS, {
      input: { sessionId: session.id, columns: good },
    });
    expect(viewer.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  it('maps, adds and ignores; remembers the mappings for the next file, until deleted', async () => {
    const company = await t.createTestCompany();
    const first = await atColumns(company);
    const confirmed = await steps.mutation(company.token, CONFIRM_COLUMNS, {
      input: {
        sessionId: first.id,
        columns: [
          { header: 'Kontakt', action: 'MAP', fieldKey: 'email' },
          { header: 'Name', action: 'MAP', fieldKey: 'userName' },
          { header: 'Personalnummer', action: 'MAP', fieldKey: 'reference' },
          { header: 'Abteilung', action: 'ADD' },
        ],
      },
    });
    expect(confirmed).toMatchObject({ __typename: 'ImportSession', stage: 'VALIDATION' });
    const validated = await steps.waitUntilIdle(company, first.id, SESSION);
    expect(validated).toMatchObject({ stage: 'REVIEW', validRowCount: 3, invalidRowCount: 0 });
    expect(validated.unmappedFields).toEqual([]);
    expect(validated.columns.map((c: any) => [c.header, c.status, c.field?.key ?? null])).toEqual([
      ['Kontakt', 'MAPPED', 'email'],
      ['Name', 'MAPPED', 'userName'],
      ['Personalnummer', 'MAPPED', 'reference'],
      ['Abteilung', 'ADDED', 'abteilung'],
    ]);
    const { importSession } = await steps.query(
      company.token,
      `query($id: ID!) { importSession(id: $id) { rows(first: 1) { edges { node {
        values { header value field { key } } } } } } }`,
      { id: first.id },
    );
    expect(importSession.rows.edges[0].node.values).toEqual([
      { header: 'Kontakt', value: 'anna@example.com', field: { key: 'email' } },
      { header: 'Name', value: 'Anna Berg', field: { key: 'userName' } },
      { header: 'Personalnummer', value: 'P-1', field: { key: 'reference' } },
      { header: 'Abteilung', value: 'Vertrieb', field: { key: 'abteilung' } },
    ]);

    const { columnMappings } = await steps.query(company.token, MAPPINGS);
    expect(columnMappings.map((m: any) => [m.header, m.field.key])).toEqual([
      ['Kontakt', 'email'],
      ['Name', 'userName'],
      ['Personalnummer', 'reference'],
    ]);

    // The next export writes the headers a little differently: still remembered.
    const second = await steps.startImport(company, [
      ['kontakt', 'NAME', 'Personal-Nummer', 'Abteilung'],
      ['dora@example.com', 'Dora', 'P-4', 'Vertrieb'],
    ]);
    const remembered = await steps.waitUntilIdle(company, second.id, SESSION);
    expect(remembered.stage).toBe('REVIEW');
    expect(
      remembered.columns.map((c: any) => [c.header, c.status, c.matchSource, c.field.key]),
    ).toEqual([
      ['kontakt', 'MATCHED', 'REMEMBERED', 'email'],
      ['NAME', 'MATCHED', 'REMEMBERED', 'userName'],
      ['Personal-Nummer', 'MATCHED', 'REMEMBERED', 'reference'],
      ['Abteilung', 'MATCHED', 'HEADER', 'abteilung'],
    ]);

    // Another company remembers nothing of it.
    const other = await t.createTestCompany();
    expect((await steps.query(other.token, MAPPINGS)).columnMappings).toEqual([]);
    const foreign = await steps.mutation(
      other.token,
      'mutation($id: ID!) { deleteColumnMapping(input: { id: $id }) { __typename } }',
      { id: columnMappings[0].id },
    );
    expect(foreign.__typename).toBe('NotFoundError');

    const deleted = await steps.mutation(
      company.token,
      'mutation($id: ID!) { deleteColumnMapping(input: { id: $id }) { __typename ... on ColumnMapping { header } } }',
      { id: columnMappings[0].id },
    );
    expect(deleted).toEqual({ __typename: 'ColumnMapping', header: 'Kontakt' });
    const third = await atColumns(company);
    expect(third.stage).toBe('CUSTOM_FIELDS');
    expect(third.unmappedFields.map((field: any) => field.key)).toEqual(['email']);
    expect(column(third, 'Kontakt').status).toBe('NEW');
  }, 180_000);

  it('keeps MATCHED columns and ignores NEW ones not named', async () => {
    const company = await t.createTestCompany();
    const session = await atColumns(company, [
      ['Email', 'userName', 'ID', 'Notizen'],
      ['eve@example.com', 'Eve', 'E-1', 'x'],
    ]);
    expect(session.stage).toBe('CUSTOM_FIELDS');
    expect(session.unmappedFields.map((field: any) => field.key)).toEqual(['reference']);
    const confirmed = await steps.mutation(company.token, CONFIRM_COLUMNS, {
      input: {
        sessionId: session.id,
        columns: [
          { header: 'Email', action: 'MATCHED' },
          { header: 'ID', action: 'MAP', fieldKey: 'reference' },
        ],
      },
    });
    expect(confirmed.__typename).toBe('ImportSession');
    const done = await steps.waitUntilIdle(company, session.id, SESSION);
    expect(done.stage).toBe('REVIEW');
    expect(done.columns.map((c: any) => [c.header, c.status])).toEqual([
      ['Email', 'MATCHED'],
      ['userName', 'MATCHED'],
      ['ID', 'MAPPED'],
      ['Notizen', 'IGNORED'],
    ]);
  });

  it('fails MISSING_COLUMNS only when no column can be recognised', async () => {
    const company = await t.createTestCompany();
    const session = await atColumns(company, [
      ['Foo', 'Bar', 'Baz'],
      ['1', '2', '3'],
    ]);
    expect(session.stage).toBe('FAILED');
    expect(session.failure.code).toBe('MISSING_COLUMNS');
    expect(session.rowCount).toBe(0);
  });

  it('forgets the mappings to a custom field when the field is deleted', async () => {
    const company = await t.createTestCompany();
    const createField = async (label: string) => {
      const created = await t.send(company.token, CreateCustomFieldDocument, { input: { label } });
      const field = created.data?.createCustomField;
      if (field?.__typename !== 'CustomField') throw new Error(JSON.stringify(created));
      return field;
    };
    /** The client's own StartImport, as a multipart request; then the session once idle. */
    const importHrExport = async () => {
      const { body } = await uploadFile(
        baseUrl,
        company.token,
        print(StartImportDocument),
        { input: { file: null } },
        { name: 'hr.xlsx', content: await workbookBytes(HR_EXPORT) },
      );
      expect(body.data?.startImport?.__typename, JSON.stringify(body)).toBe('ImportSession');
      const { id } = body.data.startImport;
      await steps.waitUntilIdle(company, id, 'id');
      const read = await t.send(company.token, ImportSessionDocument, { id });
      const session = read.data?.importSession;
      if (!session) throw new Error(JSON.stringify(read));
      return session;
    };
    const department = await createField('Department');
    expect(department.key).toBe('department');

    const first = await importHrExport();
    expect(first.stage).toBe('CUSTOM_FIELDS');
    const confirmed = await t.send(company.token, ConfirmColumnsDocument, {
      input: {
        sessionId: first.id,
        columns: [
          { header: 'Kontakt', action: 'MAP', fieldKey: 'email' },
          { header: 'Name', action: 'MAP', fieldKey: 'userName' },
          { header: 'Personalnummer', action: 'MAP', fieldKey: 'reference' },
          { header: 'Abteilung', action: 'MAP', fieldKey: 'department' },
        ],
      },
    });
    expect(confirmed.data?.confirmColumns.__typename).toBe('ImportSession');
    await steps.waitUntilIdle(company, first.id, 'id');
    const cancelled = await t.send(company.token, CancelImportDocument, {
      input: { sessionId: first.id },
    });
    expect(cancelled.data?.cancelImport.__typename).toBe('ImportSession');
    const remembered = await t.send(company.token, ColumnMappingsDocument);
    expect(remembered.data?.columnMappings.map((m) => [m.header, m.field?.key])).toEqual([
      ['Abteilung', 'department'],
      ['Kontakt', 'email'],
      ['Name', 'userName'],
      ['Personalnummer', 'reference'],
    ]);

    const deleted = await t.send(company.token, DeleteCustomFieldDocument, {
      input: { id: department.id },
    });
    expect(deleted.data?.deleteCustomField.__typename).toBe('CustomField');
    const left = await t.send(company.token, ColumnMappingsDocument);
    expect(left.data?.columnMappings.map((m) => [m.header, m.field?.key])).toEqual([
      ['Kontakt', 'email'],
      ['Name', 'userName'],
      ['Personalnummer', 'reference'],
    ]);

    // A new field with the same label gets the same key: the old mapping must not come back.
    expect((await createField('Department')).key).toBe('department');
    const second = await importHrExport();
    expect(second.stage).toBe('CUSTOM_FIELDS');
    expect(second.columns.map((c) => [c.header, c.status, c.matchSource])).toEqual([
      ['Kontakt', 'MATCHED', 'REMEMBERED'],
      ['Name', 'MATCHED', 'REMEMBERED'],
      ['Personalnummer', 'MATCHED', 'REMEMBERED'],
      ['Abteilung', 'NEW', null],
    ]);
  }, 180_000);
});
