import { PassThrough } from 'node:stream';
import type { Database } from '../../drizzle/client.js';
import type { ImportColumn } from '../../drizzle/tables.js';
import { listTrainingGroups } from '../settings/training-groups.js';
import { writeErrorReport, writeImportedUsersReport } from './reports.js';
import { type ImportRowFilter, type ImportRowView, listImportRowsPage } from './rows.js';
import type { ImportSession } from './sessions.js';
import { archiveReportRows } from './sync-archive.js';

export type ReportKind = 'ERRORS' | 'IMPORTED_USERS';

const PAGE = 2_000;

/** The uploaded headers by column index ('' for blank headers), as the reports lay them out. */
export function sheetHeaders(columns: ImportColumn[]): string[] {
  const headers: string[] = [];
  for (const column of columns) headers[column.columnIndex] = column.header;
  return Array.from(headers, (header) => header ?? '');
}

/** Staged rows in row order, a keyset page at a time, so a report never holds them all. */
async function* stagedRows(db: Database, sessionId: string, filter: ImportRowFilter) {
  let after: number | null = null;
  for (;;) {
    const page: { rows: ImportRowView[]; hasNextPage: boolean } = await listImportRowsPage(
      db,
      sessionId,
      {
        limit: PAGE,
        after,
        filter,
      },
    );
    yield* page.rows;
    if (!page.hasNextPage) return;
    after = page.rows.at(-1)?.rowNumber ?? null;
  }
}

/** Whether the report has anything to show at the session's stage. */
export function reportAvailable(session: ImportSession, kind: ReportKind): boolean {
  if (kind === 'ERRORS') return session.invalidRowCount > 0 && session.stage !== 'CANCELLED';
  return ['REVIEW', 'GROUP_ASSIGNMENT', 'COMPLETED'].includes(session.stage);
}

export function reportFileName(session: ImportSession, kind: ReportKind): string {
  const base = session.fileName.replace(/\.xlsx$/i, '').replace(/[^\w.-]+/g, '_') || 'import';
  return `${base}-${kind === 'ERRORS' ? 'errors' : 'users'}.xlsx`;
}

/** Streams the report of a session to `output`, from its staged rows. */
export async function writeSessionReport(
  db: Database,
  session: ImportSession,
  kind: ReportKind,
  output: NodeJS.WritableStream,
): Promise<void> {
  const headers = sheetHeaders(session.columns);
  if (kind === 'ERRORS') {
    await writeErrorReport(output, {
      headers,
      rows: (async function* () {
        for await (const row of stagedRows(db, session.id, { withErrors: true })) {
          yield { rowNumber: row.rowNumber, cells: row.cells, errors: row.errors };
        }
      })(),
    });
    return;
  }
  const groups = new Map(
    (await listTrainingGroups(db, session.companyId)).map((group) => [group.id, group.name]),
  );
  await writeImportedUsersReport(output, {
    headers,
    rows: (async function* () {
      for await (const row of stagedRows(db, session.id, { withErrors: false })) {
        yield {
          rowNumber: row.rowNumber,
          cells: row.cells,
          originalCells: row.originalCells,
          action: (row.action ?? 'CREATE') as 'CREATE' | 'UPDATE' | 'UNCHANGED' | 'RESTORE',
          trainingGroup: row.trainingGroupId ? (groups.get(row.trainingGroupId) ?? null) : null,
        };
      }
      // A SYNC's leavers after the file's rows: archived users keep their group.
      for await (const row of archiveReportRows(db, session)) {
        yield {
          ...row,
          trainingGroup: row.trainingGroupId ? (groups.get(row.trainingGroupId) ?? null) : null,
        };
      }
    })(),
  });
}

/** The report as bytes, for a mail attachment. */
export async function sessionReportBuffer(
  db: Database,
  session: ImportSession,
  kind: ReportKind,
): Promise<Buffer> {
  const output = new PassThrough();
  const chunks: Buffer[] = [];
  output.on('data', (chunk: Buffer) => chunks.push(chunk));
  await writeSessionReport(db, session, kind, output);
  return Buffer.concat(chunks);
}
