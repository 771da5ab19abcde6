/** Steps of an import as a client takes them over real HTTP: upload, wait, mutate. */
import ExcelJS from 'exceljs';
import { expect } from 'vitest';
import type { TestApp, TestCompany } from './app.js';
import { START_IMPORT, subscribeSse, uploadFile } from './http.js';

export async function workbookBytes(rows: (string | null)[][]): Promise<Uint8Array<ArrayBuffer>> {
  const workbook = new ExcelJS.Workbook();
  const sheet = workbook.addWorksheet('Users');
  for (const row of rows) sheet.addRow(row);
  return new Uint8Array(await workbook.xlsx.writeBuffer());
}

export function importSteps(t: TestApp, baseUrl: string) {
  async function startImport(
    company: TestCompany,
    rows: (string | null)[][],
  ): Promise<{ id: string }> {
    const { status, body } = await uploadFile(
      baseUrl,
      company.token,
      START_IMPORT,
      { input: { file: null } },
      { name: 'users.xlsx', content: await workbookBytes(rows) },
    );
    expect(status, JSON.stringify(body)).toBe(200);
    expect(body.data?.startImport?.__typename, JSON.stringify(body)).toBe('ImportSession');
    return body.data.startImport;
  }

  /** Follows the session until it is idle; returns it with `fields` selected. */
  async function waitUntilIdle(company: TestCompany, id: string, fields: string) {
    const events = await subscribeSse(
      baseUrl,
      company.token,
      `subscription($id: ID!) { importSessionUpdated(id: $id) { busy ${fields} } }`,
      { id },
      (event) => event.data?.importSessionUpdated?.busy === false,
    );
    const last = events.at(-1)?.data?.importSessionUpdated;
    expect(last?.busy, JSON.stringify(events.at(-1))).toBe(false);
    return last;
  }

  /** Runs a mutation and returns its (only) result field, whatever its member. */
  async function mutation(token: string, query: string, variables: Record<string, unknown>) {
    const result = await t.request(token, query, variables);
    expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
    const [payload] = Object.values(result.data ?? {}) as any[];
    return payload;
  }

  async function query(token: string, text: string, variables: Record<string, unknown> = {}) {
    const result = await t.request(token, text, variables);
    expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
    return result.data as any;
  }

  return { startImport, waitUntilIdle, mutation, query };
}
