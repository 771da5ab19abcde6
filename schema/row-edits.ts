import { z } from 'zod';
import { EditTooLargeError, RowNotFoundError, UnknownHeaderError } from '../server/errors.js';
import {
  type Editor,
  type ImportSessionEdit,
  listSessionEdits,
  MAX_CELL_LENGTH,
  MAX_EDITED_CELLS,
  replaceImportFile,
  replaceInColumn,
  revertImportRows,
  updateImportRows,
} from '../server/import/row-edits.js';
import { receiveUpload } from '../server/import/upload.js';
import { builder } from './builder.js';
import { ErrorInterface, inputErrors, sessionActionErrors, uploadErrors } from './errors.js';
import { globalId } from './ids.js';
import { ImportRowRef } from './import-rows.js';
import { announceChange, ImportSessionRef, sessionId } from './import-session.js';

builder.objectType(RowNotFoundError, {
  name: 'RowNotFoundError',
  description: "The file has no data row with this number: use the numbers of the session's rows.",
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof RowNotFoundError,
  fields: (t) => ({
    rowNumbers: t.exposeIntList('rowNumbers', { description: 'The row numbers not found.' }),
  }),
});

builder.objectType(EditTooLargeError, {
  name: 'EditTooLargeError',
  description:
    'More cells than one call may change: split the edit, or use replaceInColumn or replaceImportFile.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof EditTooLargeError,
  fields: (t) => ({
    limit: t.exposeInt('limit', {
      description: 'Most cells (or rows to revert) one call may name.',
    }),
  }),
});

const EditKindEnum = builder.enumType('ImportEditKind', {
  description: 'How staged rows were fixed during an import.',
  values: {
    UPDATE_ROWS: { description: 'Cells set by updateImportRows.' },
    REVERT_ROWS: { description: "Rows given back the file's values by revertImportRows." },
    REPLACE_IN_COLUMN: { description: 'A find-and-replace over one column (replaceInColumn).' },
    REPLACE_FILE: {
      description: 'A corrected file uploaded into the session (replaceImportFile).',
    },
  },
});

const ImportSessionEditRef = builder.objectRef<ImportSessionEdit>('ImportSessionEdit').implement({
  description: 'One fix of the staged rows during an import: who, when, and how much.',
  fields: (t) => ({
    kind: t.field({ type: EditKindEnum, description: 'What was done.', resolve: (e) => e.kind }),
    tokenId: t.id({
      nullable: true,
      description: 'Global ID of the API token that made the change.',
      resolve: (edit) => (edit.tokenId ? globalId('ApiToken', edit.tokenId) : null),
    }),
    rowCount: t.exposeInt('rowCount', { description: 'Rows changed.' }),
    cellCount: t.exposeInt('cellCount', { description: 'Cells changed.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When.' }),
  }),
});

builder.objectFields(ImportSessionRef, (t) => ({
  edits: t.field({
    type: [ImportSessionEditRef],
    description: 'The fixes made to the staged rows during this import, oldest first.',
    resolve: (session, _args, ctx) => listSessionEdits(ctx.db, session.id),
  }),
}));

const EditedValueRef = builder
  .objectRef<{ header: string; value: string | null; fileValue: string | null }>(
    'ImportRowEditedValue',
  )
  .implement({
    description: 'A cell of a row edited during the import.',
    fields: (t) => ({
      header: t.exposeString('header', { description: 'The column header.' }),
      value: t.exposeString('value', { nullable: true, description: 'The value now.' }),
      fileValue: t.exposeString('fileValue', {
        nullable: true,
        description: 'The value the file had (what revertImportRows restores).',
      }),
    }),
  });

builder.objectFields(ImportRowRef, (t) => ({
  edited: t.boolean({
    description: 'True when the admin changed a value of the row during the import.',
    resolve: (row) => row.originalCells !== null,
  }),
  editedValues: t.field({
    type: [EditedValueRef],
    description: 'The cells edited during the import, with the values the file had.',
    resolve: (row) => {
      const original = row.originalCells;
      if (!original) return [];
      return row.session.columns.flatMap((column) => {
        const value = row.cells[column.columnIndex] ?? null;
        const fileValue = original[column.columnIndex] ?? null;
        return value === fileValue ? [] : [{ header: column.header, value, fileValue }];
      });
    },
  }),
}));

const editor = (ctx: { auth: { companyId: string; tokenId: string } }): Editor => ({
  companyId: ctx.auth.companyId,
  tokenId: ctx.auth.tokenId,
});

const CellInput = builder.inputType('ImportCellInput', {
  description: 'A new value for one cell of a row.',
  fields: (t) => ({
    header: t.string({ required: true, description: "The column's header." }),
    value: t.string({
      description: `The new value (at most ${MAX_CELL_LENGTH} characters); null or blank empties the cell.`,
      validate: z.string().max(MAX_CELL_LENGTH),
    }),
  }),
});

const RowEditInput = builder.inputType('ImportRowEditInput', {
  description: 'New values for cells of one staged row.',
  fields: (t) => ({
    rowNumber: t.int({ required: true, description: 'The row number, as in the spreadsheet.' }),
    values: t.field({ type: [CellInput], required: true, description: 'The cells to set.' }),
  }),
});

const EDIT_ERRORS = [
  ...sessionActionErrors,
  UnknownHeaderError,
  RowNotFoundError,
  EditTooLargeError,
  ...inputErrors,
];

builder.mutationFields((t) => ({
  updateImportRows: t.fieldWithInput({
    type: ImportSessionRef,
    description: `At VALIDATION or REVIEW: sets cells of staged rows and validates them again at once (with the rows that share their email or reference), updating errors, counts, actions and reports. At most ${MAX_EDITED_CELLS} cells a call; all or nothing.`,
    typeOptions: { description: 'The session and the cells to set.' },
    errors: { types: EDIT_ERRORS },
    input: {
      sessionId: t.input.id({ required: true, description: 'The import session.' }),
      rows: t.input.field({
        type: [RowEditInput],
        required: true,
        description: 'The rows and their new values.',
        validate: z.array(z.unknown()).max(MAX_EDITED_CELLS),
      }),
    },
    resolve: async (_root, { input }, ctx) => {
      const { session } = await updateImportRows(
        ctx.db,
        editor(ctx),
        sessionId(input.sessionId),
        input.rows.map((row) => ({
          rowNumber: row.rowNumber,
          values: row.values.map((value) => ({ header: value.header, value: value.value ?? null })),
        })),
      );
      return announceChange(ctx, session);
    },
  }),
  revertImportRows: t.fieldWithInput({
    type: ImportSessionRef,
    description:
      "At VALIDATION or REVIEW: gives edited rows back the file's values and validates them again.",
    typeOptions: { description: 'The session and the rows to restore.' },
    errors: { types: EDIT_ERRORS },
    input: {
      sessionId: t.input.id({ required: true, description: 'The import session.' }),
      rowNumbers: t.input.intList({
        required: true,
        description: `The rows to restore (at most ${MAX_EDITED_CELLS}); rows never edited are left as they are.`,
        validate: z.array(z.number()).max(MAX_EDITED_CELLS),
      }),
    },
    resolve: async (_root, { input }, ctx) => {
      const { session } = await revertImportRows(
        ctx.db,
        editor(ctx),
        sessionId(input.sessionId),
        input.rowNumbers,
      );
      return announceChange(ctx, session);
    },
  }),
  replaceInColumn: t.fieldWithInput({
    type: ImportSessionRef,
    description:
      'At VALIDATION or REVIEW: replaces a text in every cell of one column (e.g. a mistyped email domain), then validates the changed rows again. Literal text, case-sensitive; a cell left blank becomes empty. Past 5,000 changed rows the whole file is validated again in the background, like validation: the session answers busy (follow it with importSessionUpdated), and a file left without errors moves on to REVIEW.',
    typeOptions: { description: 'The session, the column, and what to replace with what.' },
    errors: { types: EDIT_ERRORS },
    input: {
      sessionId: t.input.id({ required: true, description: 'The import session.' }),
      header: t.input.string({ required: true, description: "The column's header." }),
      find: t.input.string({
        required: true,
        description: 'The text to find (not empty, at most 1,000 characters).',
        validate: z.string().min(1).max(1000),
      }),
      replace: t.input.string({
        required: true,
        description: 'What to put instead (at most 1,000 characters).',
        validate: z.string().max(1000),
      }),
    },
    resolve: async (_root, { input }, ctx) => {
      const { session } = await replaceInColumn(ctx.db, editor(ctx), sessionId(input.sessionId), {
        header: input.header,
        find: input.find,
        replace: input.replace,
      });
      return announceChange(ctx, session);
    },
  }),
  replaceImportFile: t.fieldWithInput({
    type: ImportSessionRef,
    description:
      'At CUSTOM_FIELDS, VALIDATION or REVIEW: uploads a corrected file into the same session (multipart request). It is read again from stage 1 keeping the stage-2 decisions, so the import goes on to validation unless the new file has columns they do not cover. Edits of the old file are dropped.',
    typeOptions: { description: 'The session and the corrected file.' },
    errors: {
      types: [...sessionActionErrors, ...uploadErrors, ...inputErrors],
    },
    input: {
      sessionId: t.input.id({ required: true, description: 'The import session.' }),
      file: t.input.field({ type: 'Upload', required: true, description: 'The .xlsx file.' }),
    },
    resolve: async (_root, { input }, ctx) => {
      const id = sessionId(input.sessionId);
      await ctx.workRateLimiter.consume(ctx.auth.tokenId);
      const upload = await receiveUpload(input.file, ctx.config.MAX_UPLOAD_BYTES);
      const session = await replaceImportFile(ctx.db, editor(ctx), id, {
        companyId: ctx.auth.companyId,
        fileName: upload.fileName,
        chunks: upload.chunks,
        maxBytes: ctx.config.MAX_UPLOAD_BYTES,
      });
      return announceChange(ctx, session);
    },
  }),
}));
