/**
 * Steps of an import as a client takes them over real HTTP, with the client's typed documents:
 * upload a workbook, follow the session's events, continue it stage by stage, mutate.
 */
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import ExcelJS from 'exceljs';
import { print } from 'graphql';
import { expect } from 'vitest';
import {
  ContinueImportDocument,
  type ImportSessionPartsFragment,
  ImportSessionUpdatedDocument,
  type ImportStage,
  StartImportDocument,
} from '../../client/index.js';
import type { TestApp, TestCompany } from './app.js';
import { type SubscriptionEvent, subscribeSse, uploadFile } from './http.js';

export async function workbookBytes(rows: (string | null)[][]): Promise<Uint8Array<ArrayBuffer>> {
  const workbook = new ExcelJS.Workbook();
  const sheet = workbook.addWorksheet('Users');
  for (const row of rows) sheet.addRow(row);
  return new Uint8Array(await workbook.xlsx.writeBuffer());
}

/** A session as the client's documents show it (fragment ImportSessionParts). */
export type ImportSessionView = ImportSessionPartsFragment;

type Document = string | TypedDocumentNode<any, any>;
const text = (document: Document) => (typeof document === 'string' ? document : print(document));

export function importSteps(t: TestApp, baseUrl: string) {
  /**
   * Uploads a workbook (its rows, or its bytes) with the client's startImport and returns the
   * new session, checked to be one.
   */
  async function startImport(
    company: TestCompany,
    file: (string | null)[][] | Uint8Array<ArrayBuffer>,
    fileName = 'users.xlsx',
  ): Promise<ImportSessionView> {
    const content = file instanceof Uint8Array ? file : await workbookBytes(file);
    const { status, body } = await uploadFile(
      baseUrl,
      company.token,
      print(StartImportDocument),
      { input: { file: null } },
      { name: fileName, content },
    );
    expect(status, JSON.stringify(body)).toBe(200);
    expect(body.data?.startImport?.__typename, JSON.stringify(body)).toBe('ImportSession');
    return body.data.startImport;
  }

  /**
   * Follows a session over SSE with the client's importSessionUpdated until `until` accepts an
   * event (or the stream ends); returns every event, errors included.
   */
  function followEvents(
    token: string,
    id: string,
    until: (event: SubscriptionEvent<{ importSessionUpdated: ImportSessionView }>) => boolean,
    timeoutMs?: number,
  ) {
    return subscribeSse(baseUrl, token, ImportSessionUpdatedDocument, { id }, until, timeoutMs);
  }

  /**
   * The session's states as they are published, until `until` accepts one (or the stream
   * ends); an event without a session (an error) fails the test.
   */
  async function follow(
    company: TestCompany,
    id: string,
    until: (session: ImportSessionView) => boolean,
    timeoutMs?: number,
  ): Promise<ImportSessionView[]> {
    const events = await followEvents(
      company.token,
      id,
      (event) => !event.data || until(event.data.importSessionUpdated),
      timeoutMs,
    );
    for (const event of events) expect(event.data, JSON.stringify(event)).toBeTruthy();
    return events.map((event) => event.data?.importSessionUpdated as ImportSessionView);
  }

  /**
   * Follows the session until it is idle and returns it: as the client's document shows it,
   * or with `fields` selected.
   */
  function waitUntilIdle(company: TestCompany, id: string): Promise<ImportSessionView>;
  function waitUntilIdle(company: TestCompany, id: string, fields: string): Promise<any>;
  async function waitUntilIdle(company: TestCompany, id: string, fields?: string) {
    const until = (event: SubscriptionEvent) => event.data?.importSessionUpdated?.busy === false;
    const events = fields
      ? await subscribeSse(
          baseUrl,
          company.token,
          `subscription($id: ID!) { importSessionUpdated(id: $id) { busy ${fields} } }`,
          { id },
          until,
        )
      : await followEvents(company.token, id, until);
    const last = events.at(-1)?.data?.importSessionUpdated;
    expect(last?.busy, JSON.stringify(events.at(-1))).toBe(false);
    return last;
  }

  /** The client's continueImport from `stage`: the session, or the error, it answers with. */
  async function continueFrom(
    company: TestCompany,
    id: string,
    stage: ImportStage,
    acknowledgeArchive?: boolean,
  ) {
    const result = await t.send(company.token, ContinueImportDocument, {
      input: {
        sessionId: id,
        stage,
        ...(acknowledgeArchive === undefined ? {} : { acknowledgeArchive }),
      },
    });
    expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
    return result.data?.continueImport as Exclude<
      NonNullable<typeof result.data>['continueImport'],
      undefined
    >;
  }

  /** Continues from each of `stages` in turn, waiting each step out; returns the last state. */
  async function continueThrough(company: TestCompany, id: string, stages: ImportStage[]) {
    let session: ImportSessionView | null = null;
    for (const stage of stages) {
      const moved = await continueFrom(company, id, stage);
      expect(moved.__typename, JSON.stringify(moved)).toBe('ImportSession');
      session = await waitUntilIdle(company, id);
    }
    return session;
  }

  /** Runs a mutation and returns its (only) result field, whatever its member. */
  async function mutation(token: string, document: Document, variables: Record<string, unknown>) {
    const result = await t.request(token, text(document), variables);
    expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
    const [payload] = Object.values(result.data ?? {}) as any[];
    return payload;
  }

  async function query(token: string, document: Document, variables: Record<string, unknown> = {}) {
    const result = await t.request(token, text(document), variables);
    expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
    return result.data as any;
  }

  return {
    startImport,
    followEvents,
    follow,
    waitUntilIdle,
    continueFrom,
    continueThrough,
    mutation,
    query,
  };
}

export type ImportSteps = ReturnType<typeof importSteps>;
