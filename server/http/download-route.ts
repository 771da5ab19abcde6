import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { eq } from 'drizzle-orm';
import type { Database } from '../../drizzle/client.js';
import { companies, serverSecrets } from '../../drizzle/tables.js';
import { reportAvailable, writeSessionReport } from '../import/report-files.js';
import { findImportSession } from '../import/sessions.js';
import { writeImportTemplate } from '../import/template.js';
import {
  DOWNLOAD_TTL_MS,
  type DownloadKind,
  DownloadLinkError,
  signDownload,
  verifyDownload,
} from '../infrastructure/downloads.js';
import type { Logger } from '../infrastructure/logger.js';
import { listUserFields } from '../settings/fields.js';

export const DOWNLOAD_PATH = '/downloads/';

/**
 * The secret that signs download links, shared by every process on the database: created once
 * by whichever process asks first, so a link made by one process is valid on all.
 */
export async function loadSigningSecret(db: Database): Promise<string> {
  await db
    .insert(serverSecrets)
    .values({ name: 'download-signing', value: randomBytes(32).toString('base64url') })
    .onConflictDoNothing();
  const [row] = await db
    .select({ value: serverSecrets.value })
    .from(serverSecrets)
    .where(eq(serverSecrets.name, 'download-signing'));
  if (!row) throw new Error('signing secret missing after insert');
  return row.value;
}

export interface Download {
  url: string;
  fileName: string;
  expiresAt: Date;
}

/** A signed link for the company's file of this kind; `baseUrl` is PUBLIC_URL or the origin. */
export function createDownload(
  secret: string,
  baseUrl: string,
  claims: { kind: DownloadKind; companyId: string; sessionId?: string },
  fileName: string,
): Download {
  const expiresAt = new Date(Date.now() + DOWNLOAD_TTL_MS);
  const token = signDownload(secret, { ...claims, expiresAt });
  const url = new URL(`${DOWNLOAD_PATH}${token}/${encodeURIComponent(fileName)}`, baseUrl);
  return { url: url.toString(), fileName, expiresAt };
}

function refuse(response: ServerResponse, status: number, message: string): void {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify({ error: message }));
}

const XLSX_TYPE = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';

/** GET /downloads/<token>/<file name>: the link is the only credential. */
export async function serveDownload(
  db: Database,
  secret: string,
  path: string,
  response: ServerResponse,
  logger: Logger,
): Promise<void> {
  const [token = '', rawName = ''] = path.slice(DOWNLOAD_PATH.length).split('/');
  // The name part only names the saved file; keep it to plain characters.
  const fileName = rawName.replace(/%[0-9a-f]{2}|[^\w.-]/gi, '_') || 'download.xlsx';
  let claims: ReturnType<typeof verifyDownload>;
  try {
    claims = verifyDownload(secret, token);
  } catch (error) {
    if (error instanceof DownloadLinkError) {
      refuse(response, error.code === 'EXPIRED' ? 410 : 404, error.message);
      return;
    }
    throw error;
  }
  const [company] = await db
    .select({ id: companies.id })
    .from(companies)
    .where(eq(companies.id, claims.companyId));
  if (!company) {
    refuse(response, 404, 'This download link is not valid.');
    return;
  }
  const send = (write: (output: ServerResponse) => Promise<void>) => {
    response.writeHead(200, {
      'content-type': XLSX_TYPE,
      'content-disposition': `attachment; filename="${fileName}"`,
      'cache-control': 'private, no-store',
    });
    return write(response).catch((error: unknown) => {
      logger.warn('download interrupted', { error: String(error) });
      response.destroy();
    });
  };
  if (claims.kind === 'IMPORT_TEMPLATE') {
    const fields = await listUserFields(db, claims.companyId);
    await send((output) =>
      writeImportTemplate(
        output,
        fields.map((field) => field.label),
      ),
    );
    return;
  }
  const kind = claims.kind === 'ERROR_REPORT' ? 'ERRORS' : 'IMPORTED_USERS';
  const session = claims.sessionId
    ? await findImportSession(db, claims.companyId, claims.sessionId)
    : undefined;
  if (!session || !reportAvailable(session, kind)) {
    refuse(response, 404, 'This report is no longer available.');
    return;
  }
  await send((output) => writeSessionReport(db, session, kind, output));
}
