import { GraphQLError } from 'graphql';
import { Repeater } from 'graphql-yoga';
import { z } from 'zod';
import type { ImportProgress } from '../drizzle/tables.js';
import {
  NameTakenError,
  NotFoundError,
  RateLimitedError,
  ReportNotAvailableError,
  RequiredFieldUnmappedError,
  TooManyFieldsError,
  UnknownHeaderError,
  WrongStageError,
} from '../server/errors.js';
import type { Context } from '../server/http/context.js';
import { countImportSessions } from '../server/import/counts.js';
import { emailImportReport } from '../server/import/email-report.js';
import {
  cancelImport,
  confirmCustomFields,
  continueImport,
  createImportSession,
  findImportSession,
  findImportSessions,
  type ImportSession,
  listImportSessionsPage,
  type SessionCursor,
} from '../server/import/sessions.js';
import { ArchiveLimitExceededError } from '../server/import/sync-archive.js';
import { receiveUpload } from '../server/import/upload.js';
import { InvalidRecipientsError } from '../server/infrastructure/mail.js';
import { builder } from './builder.js';
import { inputErrors, sessionActionErrors, uploadErrors } from './errors.js';
import { UserFieldRef } from './fields.js';
import { isUuid, localId } from './ids.js';
import { ImportFailureCodeEnum, ImportProgressPhaseEnum, ImportStageEnum } from './import-enums.js';
import { userFields } from './loaders.js';
import { countedConnection, keysetConnection, pageArgs } from './pagination.js';

export { ImportStageEnum };

import { multiLineText, singleLineText } from './validation.js';

const ENDED_STAGES = new Set(['COMPLETED', 'CANCELLED', 'FAILED', 'REVERTED']);

export const ImportModeEnum = builder.enumType('ImportMode', {
  description: 'What an import does with the users the file does not contain.',
  values: {
    ADD_AND_UPDATE: { description: 'Leaves them as they are: the file only adds and updates.' },
    SYNC: {
      description:
        'Archives the active users the file does not contain (action ARCHIVE in the review); past SYNC_ARCHIVE_LIMIT_PERCENT of the active users it waits for acknowledgeArchive. A file with no valid row archives nobody.',
    },
  },
});

const ReportKindEnum = builder.enumType('ImportReport', {
  description: 'A report of an import.',
  values: {
    ERRORS: { description: 'The uploaded rows that have errors, with the bad cells marked.' },
    IMPORTED_USERS: {
      description: 'The rows to be imported, with their action and training group.',
    },
  },
});

const ColumnStatusEnum = builder.enumType('ImportColumnStatus', {
  description: 'What happens to a column of the file.',
  values: {
    MATCHED: {
      description:
        'Found automatically: the header is a field label (ignoring case and spaces), or a mapping the company remembered (see matchSource).',
    },
    MAPPED: { description: 'Mapped by the admin at stage 2 to an existing field.' },
    NEW: { description: 'No user field matched this header yet; confirmColumns decides.' },
    ADDED: { description: 'Added to the company as a custom field for this import.' },
    IGNORED: { description: 'A new column that was not added: its values are not imported.' },
  },
});

export const ImportColumnRef = builder
  .objectRef<ImportSession['columns'][number] & { companyId: string; session: ImportSession }>(
    'ImportColumn',
  )
  .implement({
    description: 'A column of the uploaded sheet and the user field it maps to.',
    fields: (t) => ({
      header: t.exposeString('header', {
        description: 'The header as written in the file (trimmed).',
      }),
      columnIndex: t.exposeInt('columnIndex', {
        description: 'Position in the sheet, from 0 (column A).',
      }),
      status: t.field({
        type: ColumnStatusEnum,
        description: 'How the column is used.',
        resolve: (c) => c.status,
      }),
      field: t.field({
        type: UserFieldRef,
        nullable: true,
        description: 'The user field the column fills; null while NEW and when IGNORED.',
        resolve: async (column, _args, ctx, info) => {
          if (!column.fieldKey) return null;
          const fields = await userFields(ctx, info);
          return fields.find((field) => field.key === column.fieldKey) ?? null;
        },
      }),
    }),
  });

const ImportProgressRef = builder.objectRef<ImportProgress>('ImportProgress').implement({
  description: 'How far the current background step is.',
  fields: (t) => ({
    phase: t.field({
      type: ImportProgressPhaseEnum,
      description: 'What the background work is doing; IDLE when there is none.',
      resolve: (p) => p.phase,
    }),
    processed: t.int({ description: 'Bytes or rows done so far.', resolve: (p) => p.done }),
    total: t.int({
      nullable: true,
      description: 'Bytes or rows in all, when known.',
      resolve: (p) => p.total,
    }),
    percent: t.float({
      nullable: true,
      description: 'processed / total × 100, when the total is known.',
      resolve: (p) => (p.total ? Math.min(100, (p.done / p.total) * 100) : null),
    }),
  }),
});

const ImportFailureRef = builder
  .objectRef<{ code: string; message: string }>('ImportFailure')
  .implement({
    description: 'Why an import failed, in words a person can act on. Nothing was imported.',
    fields: (t) => ({
      code: t.field({
        type: ImportFailureCodeEnum,
        description: 'Why, as a code a program can switch on.',
        resolve: (failure) => failure.code as never,
      }),
      message: t.exposeString('message', { description: 'What went wrong and what to do.' }),
    }),
  });

const ImportSheetRef = builder
  .objectRef<{ name: string; hasRequiredHeaders: boolean; read: boolean }>('ImportSheet')
  .implement({
    description: 'A visible worksheet of the uploaded file.',
    fields: (t) => ({
      name: t.exposeString('name', { description: 'The sheet name, as on its tab.' }),
      hasRequiredHeaders: t.exposeBoolean('hasRequiredHeaders', {
        description:
          'Its first rows hold the Email, userName and reference headers, so it can be imported.',
      }),
      read: t.exposeBoolean('read', {
        description:
          'The sheet this import read: the one named at startImport, else the active tab if it has the headers, else the first sheet that has them.',
      }),
    }),
  });

export const ImportSessionRef = builder.objectRef<ImportSession>('ImportSession');

builder.node(ImportSessionRef, {
  description: 'One import of one file, through the stages of the import workflow.',
  id: { resolve: (session) => session.id },
  loadMany: async (ids, ctx) => {
    const found = await findImportSessions(ctx.db, ctx.auth.companyId, ids.filter(isUuid));
    return ids.map((id) => found.find((session) => session.id === id) ?? null);
  },
  fields: (t) => ({
    stage: t.field({
      type: ImportStageEnum,
      description: 'The current stage.',
      resolve: (s) => s.stage,
    }),
    busy: t.exposeBoolean('busy', {
      description:
        'True while background work runs for this stage; actions wait until it is false.',
    }),
    progress: t.field({
      type: ImportProgressRef,
      description: 'Progress of the background work (all zero when idle).',
      resolve: (s) => s.progress ?? ({ phase: 'IDLE', done: 0, total: null } as const),
    }),
    fileName: t.exposeString('fileName', { description: 'Name of the uploaded file.' }),
    fileSize: t.exposeInt('fileSize', { description: 'Size of the uploaded file in bytes.' }),
    comment: t.exposeString('comment', {
      nullable: true,
      description: 'The comment given at upload.',
    }),
    createdAt: t.expose('createdAt', {
      type: 'DateTime',
      description: 'When the file was uploaded.',
    }),
    updatedAt: t.expose('updatedAt', {
      type: 'DateTime',
      description: 'When the session last changed.',
    }),
    columns: t.field({
      type: [ImportColumnRef],
      description: 'Every non-blank header of the data sheet, in sheet order, with its status.',
      resolve: (s) =>
        s.columns.map((column) => ({ ...column, companyId: s.companyId, session: s })),
    }),
    sheets: t.field({
      type: [ImportSheetRef],
      description:
        'The visible worksheets of the file, once read: which have the required headers and which was read. Empty before.',
      resolve: (s) => s.sheets,
    }),
    rowCount: t.exposeInt('rowCount', {
      description: 'Data rows read from the file (blank rows are not rows).',
    }),
    validRowCount: t.exposeInt('validRowCount', { description: 'Rows without errors.' }),
    invalidRowCount: t.exposeInt('invalidRowCount', {
      description: 'Rows with at least one error.',
    }),
    failure: t.field({
      type: ImportFailureRef,
      nullable: true,
      description: 'Why the import failed, once FAILED.',
      resolve: (s) => s.failure ?? null,
    }),
  }),
});

const isSessionCursor = (value: unknown): value is SessionCursor =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as SessionCursor).createdAt === 'string' &&
  typeof (value as SessionCursor).id === 'string' &&
  isUuid((value as SessionCursor).id);

const ImportSessionConnectionRef = countedConnection(ImportSessionRef, {
  name: 'ImportSessionConnection',
  description: 'A page of import sessions.',
  edgeName: 'ImportSessionEdge',
  edgeDescription: 'An import session and its cursor.',
});

builder.queryFields((t) => ({
  importSession: t.field({
    type: ImportSessionRef,
    nullable: true,
    description: 'One import session of your company; null if there is none with this ID.',
    args: { id: t.arg.id({ required: true, description: 'The session ID.' }) },
    resolve: async (_root, args, ctx) => {
      try {
        const id = localId(args.id, 'ImportSession', 'import session');
        return (await findImportSession(ctx.db, ctx.auth.companyId, id)) ?? null;
      } catch (error) {
        if (error instanceof NotFoundError) return null;
        throw error;
      }
    },
  }),
  importSessions: t.field({
    type: ImportSessionConnectionRef,
    description: 'Import sessions of your company, newest first.',
    args: pageArgs(t.arg),
    resolve: (_root, args, ctx) =>
      keysetConnection(
        args,
        {
          isValid: isSessionCursor,
          of: (session: ImportSession) => ({
            createdAt: session.createdAt.toISOString(),
            id: session.id,
          }),
        },
        async ({ limit, after }) => {
          const page = await listImportSessionsPage(ctx.db, ctx.auth.companyId, { limit, after });
          return { nodes: page.sessions, hasNextPage: page.hasNextPage };
        },
        () => countImportSessions(ctx.db, ctx.auth.companyId),
      ),
  }),
}));

export function sessionId(globalId: string): string {
  return localId(globalId, 'ImportSession', 'import session');
}

/**
 * After a mutation moved a session on: its followers hear of it, and a worker wakes for the
 * background work the change queued (a cancelled session's worker notices on its next write).
 */
export function announceChange(ctx: Context, session: ImportSession): ImportSession {
  ctx.events.publishSessionUpdated(session.id);
  if (session.busy) ctx.importWorker.wake(session.id);
  return session;
}

builder.mutationFields((t) => ({
  startImport: t.fieldWithInput({
    type: ImportSessionRef,
    description:
      'Stage 1: uploads an .xlsx file (multipart request) and starts reading it in the background. Returns at once with the session at UPLOAD and busy; follow it with importSessionUpdated.',
    typeOptions: {
      description: 'The file to import, an optional comment and optionally the sheet to read.',
    },
    errors: {
      types: [...uploadErrors, ...inputErrors],
    },
    input: {
      file: t.input.field({ type: 'Upload', required: true, description: 'The .xlsx file.' }),
      comment: t.input.string({
        description: 'A note kept with the import (at most 1,000 characters).',
        validate: multiLineText('The comment', 1000).optional(),
      }),
      sheet: t.input.string({
        description:
          'The name of the sheet to import. By default: the active tab if it has the required headers, else the first sheet that has them.',
      }),
      mode: t.input.field({
        type: ImportModeEnum,
        defaultValue: 'ADD_AND_UPDATE',
        description:
          'ADD_AND_UPDATE (default) or SYNC, which also archives the users the file lacks.',
      }),
    },
    resolve: async (_root, { input }, ctx) => {
      await ctx.workRateLimiter.consume(ctx.auth.tokenId);
      const upload = await receiveUpload(input.file, ctx.config.MAX_UPLOAD_BYTES);
      const session = await createImportSession(ctx.db, {
        companyId: ctx.auth.companyId,
        fileName: upload.fileName,
        chunks: upload.chunks,
        maxBytes: ctx.config.MAX_UPLOAD_BYTES,
        comment: input.comment?.trim().slice(0, 1000) || null,
        sheet: input.sheet?.slice(0, 200) || null,
        mode: input.mode ?? 'ADD_AND_UPDATE',
      });
      ctx.logger.info('import session created', {
        sessionId: session.id,
        companyId: session.companyId,
        fileName: session.fileName,
        fileSize: session.fileSize,
      });
      ctx.importWorker.wake(session.id);
      return session;
    },
  }),
  confirmCustomFields: t.fieldWithInput({
    type: ImportSessionRef,
    deprecationReason:
      'Use confirmColumns: it also maps columns to existing fields (a required one included) and remembers the mappings.',
    description:
      'Stage 2: adds the chosen new columns as custom fields of the company (for all its users) and ignores the other new columns; the import moves on.',
    typeOptions: { description: 'The session and the headers of the new columns to add.' },
    errors: {
      types: [
        ...sessionActionErrors,
        UnknownHeaderError,
        NameTakenError,
        RequiredFieldUnmappedError,
        TooManyFieldsError,
        ...inputErrors,
      ],
    },
    input: {
      sessionId: t.input.id({ required: true, description: 'The import session.' }),
      addToDatabase: t.input.stringList({
        required: true,
        description: 'Headers (status NEW) to add as custom fields; an empty list adds none.',
        validate: z
          .array(singleLineText('A header', 1000))
          .max(1000, 'Give at most 1,000 headers.'),
      }),
    },
    resolve: async (_root, { input }, ctx) => {
      const session = await confirmCustomFields(
        ctx.db,
        ctx.auth.companyId,
        sessionId(input.sessionId),
        input.addToDatabase,
        { maxCustomFields: ctx.config.MAX_CUSTOM_FIELDS },
      );
      return announceChange(ctx, session);
    },
  }),
  continueImport: t.fieldWithInput({
    type: ImportSessionRef,
    description:
      'Moves on from the stage you are at: from VALIDATION (continue as-is: rows with errors are skipped) to REVIEW, from REVIEW to GROUP_ASSIGNMENT, and from GROUP_ASSIGNMENT to the commit. The work runs in the background; follow it with importSessionUpdated.',
    typeOptions: { description: 'The session and the stage you are continuing from.' },
    errors: {
      types: [...sessionActionErrors, ArchiveLimitExceededError],
    },
    input: {
      sessionId: t.input.id({ required: true, description: 'The import session.' }),
      stage: t.input.field({
        type: ImportStageEnum,
        required: true,
        description: 'The stage you are continuing from; a stale or repeated call changes nothing.',
      }),
      acknowledgeArchive: t.input.boolean({
        description:
          'For a SYNC that would archive more than SYNC_ARCHIVE_LIMIT_PERCENT of the active users: true confirms it (kept for the rest of the import). Without it such a SYNC gets ArchiveLimitExceededError and stays where it is.',
      }),
    },
    resolve: async (_root, { input }, ctx) => {
      const session = await continueImport(
        ctx.db,
        ctx.auth.companyId,
        sessionId(input.sessionId),
        input.stage,
        {
          acknowledgeArchive: input.acknowledgeArchive,
          archiveLimitPercent: ctx.config.SYNC_ARCHIVE_LIMIT_PERCENT,
        },
      );
      return announceChange(ctx, session);
    },
  }),
  emailImportReport: t.fieldWithInput({
    type: ImportSessionRef,
    description:
      'Mails a report of the import as an .xlsx attachment: ERRORS (the rows with errors, bad cells marked) or IMPORTED_USERS (from REVIEW on).',
    typeOptions: { description: 'The session, which report, and to whom.' },
    errors: {
      types: [NotFoundError, ReportNotAvailableError, InvalidRecipientsError, RateLimitedError],
    },
    input: {
      sessionId: t.input.id({ required: true, description: 'The import session.' }),
      report: t.input.field({ type: ReportKindEnum, required: true, description: 'Which report.' }),
      to: t.input.stringList({
        required: true,
        description: 'Up to 20 plain addresses (name@example.com), no display names.',
      }),
    },
    resolve: async (_root, { input }, ctx) => {
      const id = sessionId(input.sessionId);
      const session = await findImportSession(ctx.db, ctx.auth.companyId, id);
      if (!session) throw new NotFoundError('import session', input.sessionId);
      await ctx.workRateLimiter.consume(ctx.auth.tokenId);
      await emailImportReport(ctx.db, session, input.report, input.to, ctx);
      return session;
    },
  }),
  cancelImport: t.fieldWithInput({
    type: ImportSessionRef,
    description:
      'Cancels an import at any stage before the commit, stopping its background work. No user is changed.',
    typeOptions: { description: 'The session to cancel.' },
    errors: { types: [NotFoundError, WrongStageError] },
    input: { sessionId: t.input.id({ required: true, description: 'The import session.' }) },
    resolve: async (_root, { input }, ctx) => {
      const session = await cancelImport(ctx.db, ctx.auth.companyId, sessionId(input.sessionId));
      return announceChange(ctx, session);
    },
  }),
}));

builder.subscriptionType({
  description: 'Live updates, over Server-Sent Events or graphql-ws on /graphql.',
  fields: (t) => ({
    importSessionUpdated: t.field({
      type: ImportSessionRef,
      description:
        'The session now, then again on every change: stage, busy, and progress (the read reports every 150 ms, the later steps every ~125 ms, range by range). While busy, it comes at least every 250 ms: when nothing was published for 150 ms (a step inside a statement that cannot report), the session comes again with its progress unchanged (on the embedded database, during the commit too, whose progress then comes without the session being read again; not while one long statement runs, such as the duplicate check in validation). Ends after the session reaches COMPLETED, CANCELLED or FAILED.',
      args: { id: t.arg.id({ required: true, description: 'The import session to follow.' }) },
      subscribe: (_root, args, ctx) => {
        const notFound = () =>
          new GraphQLError(
            `No import session with ID ${JSON.stringify(args.id)} exists in your company.`,
            { extensions: { code: 'NOT_FOUND' } },
          );
        return new Repeater<ImportSession>(async (push, stop) => {
          let id: string;
          try {
            id = sessionId(args.id);
          } catch (error) {
            // A malformed ID, or one of another type, ends like an unknown one (not masked).
            if (!(error instanceof NotFoundError)) throw error;
            stop(notFound());
            return;
          }
          const updates = ctx.events.subscribeSessionUpdated(id)[Symbol.asyncIterator]();
          stop.then(() => updates.return?.());
          // Listen before loading the session, so no change between the two is missed.
          let nextUpdate = updates.next();
          let session = await findImportSession(ctx.db, ctx.auth.companyId, id);
          if (!session) {
            stop(notFound());
            return;
          }
          await push(session);
          // A COMPLETED import being reverted is busy: followers hear the revert too.
          while (!ENDED_STAGES.has(session.stage) || session.busy) {
            const next = await Promise.race([nextUpdate, stop.then(() => null)]);
            // The updates end on shutdown: end this subscription properly then (a Repeater
            // whose executor returns without stop() stays open until the connection is cut).
            if (!next || next.done) {
              stop();
              return;
            }
            nextUpdate = updates.next();
            const { progress } = next.value;
            session = progress
              ? { ...session, busy: true, progress }
              : ((await findImportSession(ctx.db, ctx.auth.companyId, id)) ?? session);
            await push(session);
          }
          stop();
        });
      },
      resolve: (session) => session,
    }),
  }),
});
