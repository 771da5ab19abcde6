import { join } from 'node:path';
import type { Database } from '../../drizzle/client.js';
import { mailOutbox } from '../../drizzle/tables.js';
import { ReportNotAvailableError } from '../errors.js';
import type { Config } from '../infrastructure/config.js';
import type { Logger } from '../infrastructure/logger.js';
import { InvalidRecipientsError, sendMail, validateRecipients } from '../infrastructure/mail.js';
import {
  type ReportKind,
  reportAvailable,
  reportFileName,
  sessionReportBuffer,
} from './report-files.js';
import type { ImportSession } from './sessions.js';

const XLSX_TYPE = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';

/**
 * Mails a report of an import as an .xlsx attachment: over SMTP when SMTP_URL is set, else into
 * the outbox under DATA_DIR. Recipients are checked first; mail goes only to them, as typed.
 */
export async function emailImportReport(
  db: Database,
  session: ImportSession,
  kind: ReportKind,
  to: string[],
  options: { config: Config; logger: Logger },
): Promise<{ recipients: string[]; deliveredTo: string }> {
  if (!reportAvailable(session, kind)) throw new ReportNotAvailableError(kind);
  const { valid, invalid } = validateRecipients(to);
  if (invalid.length > 0 || valid.length === 0) throw new InvalidRecipientsError(invalid);
  const fileName = reportFileName(session, kind);
  const subject =
    kind === 'ERRORS'
      ? `Errors in the import of ${session.fileName}`
      : `Users to be imported from ${session.fileName}`;
  const text =
    kind === 'ERRORS'
      ? `The attached file lists the ${session.invalidRowCount} rows of ${session.fileName} that have errors, with the bad cells marked. Correct them and upload the file again, or continue the import without them.`
      : `The attached file lists the users that the import of ${session.fileName} creates or updates, with their training groups.`;
  const content = await sessionReportBuffer(db, session, kind);
  const sent = await sendMail(
    {
      smtpUrl: options.config.SMTP_URL,
      from: options.config.MAIL_FROM,
      outboxDir: join(options.config.DATA_DIR, 'outbox'),
    },
    {
      to: valid,
      subject,
      text,
      attachments: [{ filename: fileName, content, contentType: XLSX_TYPE }],
    },
    options.logger,
  );
  await db.insert(mailOutbox).values({
    companyId: session.companyId,
    recipients: valid,
    subject,
    deliveredTo: sent.deliveredTo,
  });
  return { recipients: valid, deliveredTo: sent.deliveredTo };
}
