import { is } from 'drizzle-orm';
import { getTableConfig, PgTable } from 'drizzle-orm/pg-core';
import ExcelJS from 'exceljs';
import type { Database } from '../../drizzle/client.js';
import * as tables from '../../drizzle/tables.js';
import type { TestApp } from './app.js';
import { readSseEvents } from './sse.js';

/**
 * Helpers for tests that act as two companies: requests that carry the CSRF header like every
 * client of ours, uploads over real HTTP, imports driven to a stage, and a snapshot of every
 * row a company owns.
 */

export const CSRF_HEADERS = { 'x-graphql-yoga-csrf': '1' };

export interface ApiResponse {
  status: number;
  body: any;
}

/** GraphQL over the app's fetch (no port): JSON for queries and mutations, SSE for subscriptions. */
export function graphqlClient(t: TestApp) {
  const headers = (token: string) => ({
    ...CSRF_HEADERS,
    'content-type': 'application/json',
    authorization: `Bearer ${token}`,
  });

  async function request(
    token: string,
    query: string,
    variables: Record<string, unknown> = {},
  ): Promise<ApiResponse> {
    const response = await t.fetch('http://muster.test/graphql', {
      method: 'POST',
      headers: headers(token),
      body: JSON.stringify({ query, variables }),
    });
    const text = await response.text();
    try {
      return { status: response.status, body: JSON.parse(text) };
    } catch {
      return { status: response.status, body: text };
    }
  }

  /**
   * The events of a subscription until it ends, or until one carries data (a stream that
   * delivers data may go on for as long as the session lives), or `timeoutMs` passes.
   */
  async function subscribe(
    token: string,
    query: string,
    variables: Record<string, unknown> = {},
    timeoutMs = 5_000,
  ): Promise<ApiResponse> {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    const events: unknown[] = [];
    let status = 0;
    try {
      const response = await t.fetch('http://muster.test/graphql', {
        method: 'POST',
        headers: { ...headers(token), accept: 'text/event-stream' },
        body: JSON.stringify({ query, variables }),
        signal: abort.signal,
      });
      status = response.status;
      if (!response.body) return { status, body: await response.text() };
      for await (const event of readSseEvents(response.body)) {
        events.push(event);
        if (event.data) return { status, body: { events } };
      }
    } catch (error) {
      if (!abort.signal.aborted) throw error;
      events.push({ timedOut: true });
    } finally {
      clearTimeout(timer);
      abort.abort();
    }
    return { status, body: { events } };
  }

  return { request, subscribe };
}

export type GraphQLClient = ReturnType<typeof graphqlClient>;

export async function workbookBytes(rows: (string | null)[][]): Promise<Uint8Array<ArrayBuffer>> {
  const workbook = new ExcelJS.Workbook();
  const sheet = workbook.addWorksheet('Users');
  for (const row of rows) sheet.addRow(row);
  return new Uint8Array(await workbook.xlsx.writeBuffer());
}

export const START_IMPORT = `mutation($input: StartImportInput!) { startImport(input: $input) {
  __typename ... on ImportSession { id stage busy fileName comment columns { header status } }
  ... on Error { code message } } }`;

/** startImport as a GraphQL multipart request over real HTTP, with the CSRF header. */
export async function uploadWorkbook(
  baseUrl: string,
  token: string,
  file: { name: string; content: Uint8Array<ArrayBuffer> },
  comment: string | null,
): Promise<ApiResponse> {
  const form = new FormData();
  form.set(
    'operations',
    JSON.stringify({ query: START_IMPORT, variables: { input: { file: null, comment } } }),
  );
  form.set('map', JSON.stringify({ 0: ['variables.input.file'] }));
  form.set('0', new Blob([file.content]), file.name);
  const response = await fetch(`${baseUrl}/graphql`, {
    method: 'POST',
    headers: { ...CSRF_HEADERS, authorization: `Bearer ${token}` },
    body: form,
  });
  return { status: response.status, body: await response.json() };
}

const SESSION_STATE = `query($id: ID!) { importSession(id: $id) { stage busy failure { code message } } }`;

/** Polls the session until its background work is done. */
export async function waitUntilIdle(api: GraphQLClient, token: string, id: string) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const { body } = await api.request(token, SESSION_STATE, { id });
    const session = body.data?.importSession;
    if (!session) throw new Error(`session ${id} not readable: ${JSON.stringify(body)}`);
    if (!session.busy) return session as { stage: string; failure: unknown };
    if (Date.now() > deadline) throw new Error(`session ${id} still busy at ${session.stage}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const CONTINUE = `mutation($id: ID!, $stage: ImportStage!) { continueImport(input: { sessionId: $id, stage: $stage }) {
  __typename ... on Error { code message } } }`;
const CONFIRM = `mutation($id: ID!, $add: [String!]!) { confirmCustomFields(input: { sessionId: $id, addToDatabase: $add }) {
  __typename ... on Error { code message } } }`;

/** The stages of an import that goes through, in order. */
const STAGE_ORDER: string[] = tables.importStage.enumValues.filter(
  (stage) => stage !== 'CANCELLED' && stage !== 'FAILED',
);

/**
 * Uploads a workbook and drives its session through the wizard until it rests at `stopAt`
 * (COMPLETED commits). New columns listed in `addToDatabase` become custom fields.
 */
export async function importUntil(
  api: GraphQLClient,
  baseUrl: string,
  token: string,
  file: { name: string; rows: (string | null)[][]; comment: string | null },
  stopAt: string,
  addToDatabase: string[] = [],
): Promise<string> {
  const upload = await uploadWorkbook(
    baseUrl,
    token,
    { name: file.name, content: await workbookBytes(file.rows) },
    file.comment,
  );
  const id = upload.body.data?.startImport?.id;
  if (!id) throw new Error(`upload failed: ${JSON.stringify(upload.body)}`);
  for (;;) {
    const { stage, failure } = await waitUntilIdle(api, token, id);
    if (stage === stopAt) return id;
    if (STAGE_ORDER.indexOf(stage) > STAGE_ORDER.indexOf(stopAt) || failure) {
      throw new Error(`session ${id} went past ${stopAt}: ${stage} ${JSON.stringify(failure)}`);
    }
    const { body } =
      stage === 'CUSTOM_FIELDS'
        ? await api.request(token, CONFIRM, { id, add: addToDatabase })
        : await api.request(token, CONTINUE, { id, stage });
    const payload = Object.values(body.data ?? {})[0] as { __typename?: string } | undefined;
    if (payload?.__typename !== 'ImportSession') {
      throw new Error(`session ${id} did not move on from ${stage}: ${JSON.stringify(body)}`);
    }
  }
}

/** Succeeds or throws with the response: for setting up data through the API. */
export async function mutate(
  api: GraphQLClient,
  token: string,
  mutation: string,
  variables: Record<string, unknown> = {},
): Promise<any> {
  const { body } = await api.request(token, mutation, variables);
  const payload = Object.values(body.data ?? {})[0] as { code?: string } | undefined;
  if (!payload || payload.code) throw new Error(`mutation failed: ${JSON.stringify(body)}`);
  return payload;
}

/** How a table without a company_id column belongs to a company, for the snapshot. */
type Scope = (
  context: {
    companyId: string;
    sessionIds: Set<string>;
    uploadFileIds: Set<string>;
    tokenIds: string[];
  },
  row: any,
) => boolean;

const SCOPES_WITHOUT_COMPANY: Record<string, Scope> = {
  companies: ({ companyId }, row) => row.id === companyId,
  // Staged rows, their previews and the duplicates found among them belong to their session.
  import_rows: ({ sessionIds }, row) => sessionIds.has(row.sessionId),
  import_row_previews: ({ sessionIds }, row) => sessionIds.has(row.sessionId),
  import_row_duplicates: ({ sessionIds }, row) => sessionIds.has(row.sessionId),
  // What a commit did to each user, and the audit of row fixes, belong to their session.
  import_user_changes: ({ sessionIds }, row) => sessionIds.has(row.sessionId),
  import_session_edits: ({ sessionIds }, row) => sessionIds.has(row.sessionId),
  // An upload's pieces belong to the upload.
  upload_file_pieces: ({ uploadFileIds }, row) => uploadFileIds.has(row.uploadFileId),
  // rate-limiter-flexible keys are `<prefix>:<token id>`, and `mail:<company id>` for a
  // company's mail budget.
  rate_limits: ({ tokenIds, companyId }, row) =>
    [...tokenIds, companyId].some((id) => String(row.key).includes(id)),
  // Server-wide (the download signing secret): nobody's request may change it.
  server_secrets: () => true,
};

/** Every table's rows, each marked whether it belongs to the company. */
async function rowsByTable(db: Database, companyId: string) {
  const all = (Object.values(tables) as unknown[]).filter((value): value is PgTable =>
    is(value, PgTable),
  );
  const rowsOf = async (table: PgTable) => (await db.select().from(table as any)) as any[];
  const sessionIds = new Set(
    (await rowsOf(tables.importSessions))
      .filter((row) => row.companyId === companyId)
      .map((row) => row.id as string),
  );
  const uploadFileIds = new Set(
    (await rowsOf(tables.uploadFiles))
      .filter((row) => row.companyId === companyId)
      .map((row) => row.id as string),
  );
  const tokenIds = (await rowsOf(tables.apiTokens))
    .filter((row) => row.companyId === companyId)
    .map((row) => row.id as string);
  const result: { name: string; rows: { row: unknown; owned: boolean }[] }[] = [];
  for (const table of all) {
    const { name, columns } = getTableConfig(table);
    const hasCompany = columns.some((column) => column.name === 'company_id');
    const scope = SCOPES_WITHOUT_COMPANY[name];
    if (!hasCompany && !scope) {
      throw new Error(`rowsByTable: say how rows of ${name} belong to a company`);
    }
    const rows = (await rowsOf(table)).map((row) => ({
      row,
      owned: hasCompany
        ? row.companyId === companyId
        : Boolean(scope?.({ companyId, sessionIds, uploadFileIds, tokenIds }, row)),
    }));
    result.push({ name, rows });
  }
  return result;
}

const rowText = (row: unknown) =>
  JSON.stringify(row, (_key, value) =>
    value instanceof Uint8Array ? Buffer.from(value).toString('base64') : value,
  );

/**
 * Every row of every table that belongs to the company, by table name, in a stable order.
 * A table added to drizzle/tables.ts without a company_id column fails here until
 * SCOPES_WITHOUT_COMPANY says how it belongs to a company.
 */
export async function companyRows(db: Database, companyId: string) {
  const snapshot: Record<string, string[]> = {};
  for (const { name, rows } of await rowsByTable(db, companyId)) {
    snapshot[name] = rows
      .filter(({ owned }) => owned)
      // A token's last use moves with the owner's own requests, whoever else calls.
      .map(({ row }) =>
        rowText(name === 'api_tokens' ? { ...(row as object), lastUsedAt: null } : row),
      )
      .sort();
  }
  return snapshot;
}

/**
 * Rows of other companies that name one of the company's rows (a rule of theirs assigning
 * its group, a staged row matched to its user): every UUID in the company's rows is looked
 * for in every row that is not the company's.
 */
export async function rowsReferringTo(db: Database, companyId: string): Promise<string[]> {
  const tablesRows = await rowsByTable(db, companyId);
  const uuids = new Set<string>();
  for (const { rows } of tablesRows) {
    for (const { row, owned } of rows) {
      if (!owned) continue;
      for (const match of rowText(row).match(/[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}/gi) ??
        []) {
        uuids.add(match.toLowerCase());
      }
    }
  }
  const found: string[] = [];
  for (const { name, rows } of tablesRows) {
    for (const { row, owned } of rows) {
      const text = rowText(row).toLowerCase();
      if (!owned && [...uuids].some((uuid) => text.includes(uuid))) found.push(`${name}: ${text}`);
    }
  }
  return found;
}
