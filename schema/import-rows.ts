import type { ImportRowError } from '../drizzle/tables.js';
import { createDownload } from '../server/http/download-route.js';
import { countImportRows, countRowErrors } from '../server/import/counts.js';
import { reportAvailable, reportFileName } from '../server/import/report-files.js';
import {
  countRowsByGroup,
  type FieldChange,
  type ImportRowView,
  listImportRowsPage,
  listRowErrorsPage,
  rowChanges,
} from '../server/import/rows.js';
import type { ImportSession } from '../server/import/sessions.js';
import type { UserField } from '../server/settings/fields.js';
import { builder } from './builder.js';
import { DownloadRef } from './downloads.js';
import { UserFieldRef } from './fields.js';
import { ImportSessionRef } from './import-session.js';
import { loaders, userFields } from './loaders.js';
import { countedConnection, keysetConnection, pageArgs } from './pagination.js';
import { DistributionRuleRef } from './rules.js';
import { TrainingGroupRef } from './training-groups.js';

const RowErrorCodeEnum = builder.enumType('ImportRowErrorCode', {
  description: 'Why a row cannot be imported.',
  values: {
    REQUIRED: { description: 'Email, userName or reference is blank.' },
    INVALID_EMAIL: { description: 'The email is not a valid address.' },
    TOO_LONG: {
      description:
        'The value is too long (email 254, userName 200, reference 100, custom fields 1,000 characters).',
    },
    DUPLICATE_IN_FILE: {
      description:
        'The email or reference already appears in an earlier row of the file; only the first row is imported.',
    },
    REFERENCE_TAKEN: {
      description: 'The reference belongs to another existing user of the company.',
    },
    CELL_ERROR_VALUE: {
      description: 'The cell holds an error value (#N/A, #VALUE!, #REF!…) instead of a value.',
    },
    FORMULA_WITHOUT_VALUE: {
      description:
        'The cell holds a formula that was never calculated (files written by scripts): open and save the file in a spreadsheet program.',
    },
    CELL_TOO_LONG: {
      description: "The cell holds more than 32,767 characters, Excel's limit for a cell.",
    },
  },
});

const RowActionEnum = builder.enumType('ImportRowAction', {
  description: 'What the import does with a row.',
  values: {
    CREATE: { description: 'A new user is created.' },
    UPDATE: { description: 'An existing user (same email, ignoring case) changes.' },
    UNCHANGED: { description: 'An existing user already has these values.' },
    RESTORE: {
      description:
        'An archived user (same email) comes back ACTIVE, with the changes the row makes.',
    },
    SKIP: { description: 'The row has errors and is not imported.' },
  },
});

interface RowErrorShape extends ImportRowError {
  rowNumber: number;
  header: string | null;
}

const ImportRowErrorRef = builder.objectRef<RowErrorShape>('ImportRowError').implement({
  description: 'One problem of one row of the file.',
  fields: (t) => ({
    rowNumber: t.exposeInt('rowNumber', { description: 'The row number as in the spreadsheet.' }),
    column: t.exposeString('header', {
      nullable: true,
      description: 'The header of the column concerned.',
    }),
    columnIndex: t.exposeInt('columnIndex', {
      nullable: true,
      description: 'Position of the column, from 0 (column A).',
    }),
    value: t.exposeString('value', { nullable: true, description: 'The offending value as read.' }),
    code: t.field({
      type: RowErrorCodeEnum,
      description: 'What is wrong.',
      resolve: (error) => error.code as never,
    }),
    message: t.exposeString('message', { description: 'What is wrong, for a person.' }),
  }),
});

function withHeader(
  session: ImportSession,
  rowNumber: number,
  error: ImportRowError,
): RowErrorShape {
  const column = session.columns.find((candidate) => candidate.columnIndex === error.columnIndex);
  return { ...error, rowNumber, header: column?.header ?? null };
}

interface RowValueShape {
  header: string;
  value: string | null;
  field: UserField | null;
}

const ImportRowValueRef = builder.objectRef<RowValueShape>('ImportRowValue').implement({
  description: 'The value of one column in one row.',
  fields: (t) => ({
    header: t.exposeString('header', { description: 'The column header.' }),
    value: t.exposeString('value', {
      nullable: true,
      description: 'The value as read; null when blank.',
    }),
    field: t.field({
      type: UserFieldRef,
      nullable: true,
      description: 'The user field it fills; null for new or ignored columns.',
      resolve: (value) => value.field,
    }),
  }),
});

/** The company's fields by key, once per list of fields loaded (once a request). */
const fieldsByKey = new WeakMap<UserField[], Map<string, UserField>>();

function fieldByKey(fields: UserField[]): Map<string, UserField> {
  let byKey = fieldsByKey.get(fields);
  if (!byKey) {
    byKey = new Map(fields.map((field) => [field.key, field]));
    fieldsByKey.set(fields, byKey);
  }
  return byKey;
}

const FieldChangeRef = builder.objectRef<FieldChange>('FieldChange').implement({
  description: 'One field an UPDATE changes.',
  fields: (t) => ({
    field: t.field({
      type: UserFieldRef,
      description: 'The field.',
      resolve: (change) => change.field,
    }),
    from: t.exposeString('from', { nullable: true, description: 'The stored value now.' }),
    to: t.exposeString('to', { description: 'The value after the import.' }),
  }),
});

type RowShape = ImportRowView & { session: ImportSession };

export const ImportRowRef = builder.objectRef<RowShape>('ImportRow').implement({
  description: 'One data row of the file, with what the import does with it.',
  fields: (t) => ({
    rowNumber: t.exposeInt('rowNumber', { description: 'The row number as in the spreadsheet.' }),
    values: t.field({
      type: [ImportRowValueRef],
      description: 'The values of the row, one per column of the sheet.',
      // The fields are looked up here, once a row, rather than by each cell.
      resolve: async (row, _args, ctx, info) => {
        const fields = fieldByKey(await userFields(ctx, info));
        return row.session.columns.map((column) => ({
          header: column.header,
          value: row.cells[column.columnIndex] ?? null,
          field:
            column.status === 'IGNORED' || column.status === 'NEW' || !column.fieldKey
              ? null
              : (fields.get(column.fieldKey) ?? null),
        }));
      },
    }),
    action: t.field({
      type: RowActionEnum,
      nullable: true,
      description: 'What the import does with the row; null until the review stage labels it.',
      resolve: (row) => row.action,
    }),
    errors: t.field({
      type: [ImportRowErrorRef],
      description: 'The problems of the row (empty when valid).',
      resolve: (row) => row.errors.map((error) => withHeader(row.session, row.rowNumber, error)),
    }),
    changes: t.field({
      type: [FieldChangeRef],
      description: 'For an UPDATE or a RESTORE, each field that changes (old → new).',
      resolve: async (row, _args, ctx, info) =>
        rowChanges(row.session, row, await userFields(ctx, info)),
    }),
    trainingGroup: t.field({
      type: TrainingGroupRef,
      nullable: true,
      description:
        'The group the user will have after the import (an existing user keeps theirs); null when none.',
      resolve: (row, _args, ctx, info) =>
        row.trainingGroupId ? loaders(ctx, info).trainingGroups.load(row.trainingGroupId) : null,
    }),
    matchedRule: t.field({
      type: DistributionRuleRef,
      nullable: true,
      description: 'The first distribution rule that matched the row; null when none did.',
      resolve: (row, _args, ctx, info) =>
        row.matchedRuleId ? loaders(ctx, info).distributionRules.load(row.matchedRuleId) : null,
    }),
  }),
});

const ImportRowFilterRef = builder.inputType('ImportRowFilter', {
  description: 'Which rows to list.',
  fields: (t) => ({
    action: t.field({ type: RowActionEnum, description: 'Only rows with this action.' }),
    withErrors: t.boolean({ description: 'true: only rows with errors; false: only valid rows.' }),
  }),
});

const GroupAssignmentCountRef = builder
  .objectRef<{ trainingGroupId: string | null; userCount: number }>('GroupAssignmentCount')
  .implement({
    description: 'How many imported users end up in a training group.',
    fields: (t) => ({
      trainingGroup: t.field({
        type: TrainingGroupRef,
        nullable: true,
        description: 'The group; null counts the users no rule matched (and who have no group).',
        resolve: (count, _args, ctx, info) =>
          count.trainingGroupId
            ? loaders(ctx, info).trainingGroups.load(count.trainingGroupId)
            : null,
      }),
      userCount: t.exposeInt('userCount', { description: 'Number of users.' }),
    }),
  });

const ImportResultRef = builder
  .objectRef<{
    created: number;
    updated: number;
    unchanged: number;
    skipped: number;
    archived?: number;
    restored?: number;
  }>('ImportResult')
  .implement({
    description: 'What the commit did.',
    fields: (t) => ({
      created: t.exposeInt('created', { description: 'Users created.' }),
      updated: t.exposeInt('updated', { description: 'Existing users changed.' }),
      unchanged: t.exposeInt('unchanged', { description: 'Existing users left as they were.' }),
      skipped: t.exposeInt('skipped', { description: 'Rows with errors, not imported.' }),
      archived: t.int({
        description: 'Active users a SYNC archived because the file did not contain them.',
        resolve: (result) => result.archived ?? 0,
      }),
      restored: t.int({
        description: 'Archived users the file contained, ACTIVE again.',
        resolve: (result) => result.restored ?? 0,
      }),
    }),
  });

const isErrorCursor = (value: unknown): value is { rowNumber: number; position: number } =>
  typeof value === 'object' &&
  value !== null &&
  Number.isInteger((value as { rowNumber: unknown }).rowNumber) &&
  Number.isInteger((value as { position: unknown }).position);

const isRowCursor = (value: unknown): value is { rowNumber: number } =>
  typeof value === 'object' &&
  value !== null &&
  Number.isInteger((value as { rowNumber: unknown }).rowNumber);

const ImportRowErrorConnectionRef = countedConnection(ImportRowErrorRef, {
  name: 'ImportRowErrorConnection',
  description: 'A page of row errors.',
  edgeName: 'ImportRowErrorEdge',
  edgeDescription: 'A row error and its cursor.',
});

const ImportRowConnectionRef = countedConnection(ImportRowRef, {
  name: 'ImportRowConnection',
  description: 'A page of rows.',
  edgeName: 'ImportRowEdge',
  edgeDescription: 'A row and its cursor.',
});

builder.objectFields(ImportSessionRef, (t) => ({
  errors: t.field({
    type: ImportRowErrorConnectionRef,
    description: 'Every row error, in row order, a page at a time (by keyset).',
    args: pageArgs(t.arg),
    resolve: (session, args, ctx) =>
      keysetConnection(
        args,
        {
          isValid: isErrorCursor,
          of: (error: RowErrorShape & { position: number }) => ({
            rowNumber: error.rowNumber,
            position: error.position,
          }),
        },
        async ({ limit, after }) => {
          const page = await listRowErrorsPage(ctx.db, session.id, { limit, after });
          return {
            nodes: page.errors.map((error) => ({
              ...withHeader(session, error.rowNumber, error),
              position: error.position,
            })),
            hasNextPage: page.hasNextPage,
          };
        },
        () => countRowErrors(ctx.db, session.id),
      ),
  }),
  rows: t.field({
    type: ImportRowConnectionRef,
    description:
      'The data rows with their values, action, errors, changes and training group, in row order (by keyset).',
    args: {
      ...pageArgs(t.arg),
      filter: t.arg({
        type: ImportRowFilterRef,
        description: 'Which rows to list; all when absent.',
      }),
    },
    resolve: (session, args, ctx) =>
      keysetConnection(
        args,
        { isValid: isRowCursor, of: (row: RowShape) => ({ rowNumber: row.rowNumber }) },
        async ({ limit, after }) => {
          const page = await listImportRowsPage(ctx.db, session.id, {
            limit,
            after: after?.rowNumber,
            filter: args.filter,
          });
          return {
            nodes: page.rows.map((row) => ({ ...row, session })),
            hasNextPage: page.hasNextPage,
          };
        },
        () => countImportRows(ctx.db, session, args.filter),
      ),
  }),
  groupAssignment: t.field({
    type: [GroupAssignmentCountRef],
    description:
      'At GROUP_ASSIGNMENT and after: imported users per training group, largest first; a null group counts users no rule matched.',
    resolve: (session, _args, ctx) =>
      session.stage === 'GROUP_ASSIGNMENT' || session.stage === 'COMPLETED'
        ? countRowsByGroup(ctx.db, session.id)
        : [],
  }),
  errorReport: t.field({
    type: DownloadRef,
    nullable: true,
    description:
      'The uploaded rows that have errors, with an Errors column and the bad cells marked red with a note; null when there are no errors.',
    resolve: async (session, _args, ctx) =>
      reportAvailable(session, 'ERRORS')
        ? createDownload(
            await ctx.signingSecret(),
            ctx.publicUrl,
            { kind: 'ERROR_REPORT', companyId: session.companyId, sessionId: session.id },
            reportFileName(session, 'ERRORS'),
          )
        : null,
  }),
  importedUsersReport: t.field({
    type: DownloadRef,
    nullable: true,
    description:
      'From REVIEW on: the rows that will be imported, with their action and training group; null before.',
    resolve: async (session, _args, ctx) =>
      reportAvailable(session, 'IMPORTED_USERS')
        ? createDownload(
            await ctx.signingSecret(),
            ctx.publicUrl,
            { kind: 'IMPORTED_USERS_REPORT', companyId: session.companyId, sessionId: session.id },
            reportFileName(session, 'IMPORTED_USERS'),
          )
        : null,
  }),
  result: t.field({
    type: ImportResultRef,
    nullable: true,
    description: 'What the commit did, once COMPLETED.',
    resolve: (session) => session.result ?? null,
  }),
}));
