import { join } from 'node:path';
import type { Database } from '../../drizzle/client.js';
import { mailOutbox } from '../../drizzle/tables.js';
import { ReportNotAvailableError } from '../errors.js';
import type { MailBudget } from '../http/rate-limit.js';
import type { Config } from '../infrastructure/config.js';
import type { Logger } from '../infrastructure/logger.js';
import {
  domainOf,
  InvalidRecipientsError,
  sendMail,
  validateRecipients,
} from '../infrastructure/mail.js';
import { reportMailDomains } from '../settings/report-mail-domains.js';
import {
  type ReportKind,
  reportAvailable,
  reportFileName,
  sessionReportBuffer,
} from './report-files.js';
import type { ImportSession } from './sessions.js';

const XLSX_TYPE = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';

/** Longest file name a mail quotes: it is the client's text, shown only as quoted data. */
const MAX_QUOTED_FILE_NAME = 80;

/** The uploaded file's name as a mail quotes it: one line, cut short, in quotation marks. */
function quotedFileName(name: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point.
  const line = name.replace(/[\u0000-\u001f\u007f\u2028\u2029]+/g, ' ').trim();
  const cut = line.length > MAX_QUOTED_FILE_NAME ? `${line.slice(0, MAX_QUOTED_FILE_NAME)}…` : line;
  return `"${cut.replace(/"/g, "'")}"`;
}

/**
 * Mails a report of an import as an .xlsx attachment: over SMTP when SMTP_URL is set, else into
 * the outbox under DATA_DIR. Recipients are checked first (plain addresses in the company's
 * report mail domains) and each gets a message of their own, so none learns the others. The uploaded
 * file's name is the client's text: it appears in the body only, quoted and cut short, never
 * in the subject. Each message spends one of the company's mail budget.
 */
export async function emailImportReport(
  db: Database,
  session: ImportSession,
  kind: ReportKind,
  to: string[],
  options: { config: Config; logger: Logger; mailBudget: MailBudget },
): Promise<{ recipients: string[]; deliveredTo: string }> {
  if (!reportAvailable(session, kind)) throw new ReportNotAvailableError(kind);
  const { valid, invalid } = validateRecipients(to);
  if (invalid.length > 0 || valid.length === 0) throw new InvalidRecipientsError(invalid);
  const allowed = (await reportMailDomains(db, session.companyId)).domains;
  const outside = valid.filter((address) => !allowed.includes(domainOf(address)));
  if (outside.length > 0) throw new InvalidRecipientsError(outside, allowed);
  await options.mailBudget.consume(session.companyId, valid.length);
  const fileName = reportFileName(session, kind);
  const quoted = quotedFileName(session.fileName);
  const subject = kind === 'ERRORS' ? 'Errors in an import' : 'Users to be imported';
  const text =
    kind === 'ERRORS'
      ? `The attached file lists the ${session.invalidRowCount} rows with errors of the import of the file ${quoted}, with the bad cells marked. Correct them and upload the file again, or continue the import without them.`
      : `The attached file lists the users that the import of the file ${quoted} creates or updates, with their training groups.`;
  const content = await sessionReportBuffer(db, session, kind);
  const delivered: string[] = [];
  for (const recipient of valid) {
    const sent = await sendMail(
      {
        smtpUrl: options.config.SMTP_URL,
        from: options.config.MAIL_FROM,
        outboxDir: join(options.config.DATA_DIR, 'outbox'),
      },
      {
        to: [recipient],
        subject,
        text,
        attachments: [{ filename: fileName, content, contentType: XLSX_TYPE }],
      },
      options.logger,
    );
    delivered.push(sent.deliveredTo);
  }
  await db.insert(mailOutbox).values({
    companyId: session.companyId,
    recipients: valid,
    subject,
    deliveredTo: delivered.join(' '),
  });
  return { recipients: valid, deliveredTo: delivered.join(' ') };
}
