import { z } from 'zod';
import {
  FieldMappedTwiceError,
  InvalidColumnDecisionError,
  NameTakenError,
  NotFoundError,
  RequiredFieldUnmappedError,
  UnknownFieldError,
  UnknownHeaderError,
} from '../server/errors.js';
import {
  columnSuggestions,
  confirmColumns,
  type FieldSuggestion,
  MAX_COLUMN_CHOICES,
  unmappedRequiredFields,
} from '../server/import/column-mapping.js';
import type { ImportSession } from '../server/import/sessions.js';
import {
  type ColumnMapping,
  deleteColumnMapping,
  listColumnMappings,
} from '../server/settings/column-mappings.js';
import { listUserFields } from '../server/settings/fields.js';
import { builder } from './builder.js';
import { ErrorInterface, inputErrors, sessionActionErrors } from './errors.js';
import { UserFieldRef } from './fields.js';
import { globalId, localId } from './ids.js';
import { announceChange, ImportColumnRef, ImportSessionRef, sessionId } from './import-session.js';

builder.objectType(RequiredFieldUnmappedError, {
  name: 'RequiredFieldUnmappedError',
  description:
    'A required field (Email, userName, reference) would be filled by no column: map a column of the file to it.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof RequiredFieldUnmappedError,
  fields: (t) => ({
    fieldKeys: t.exposeStringList('fieldKeys', { description: 'The keys of the unfilled fields.' }),
  }),
});

builder.objectType(FieldMappedTwiceError, {
  name: 'FieldMappedTwiceError',
  description: 'Two columns would fill one field: keep one and ignore the others.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof FieldMappedTwiceError,
  fields: (t) => ({
    fieldKey: t.exposeString('fieldKey', { description: 'The field mapped more than once.' }),
    headers: t.exposeStringList('headers', { description: 'The columns that would fill it.' }),
  }),
});

builder.objectType(InvalidColumnDecisionError, {
  name: 'InvalidColumnDecisionError',
  description:
    'A decision that cannot apply to its column: MAP without a fieldKey, MATCHED for a column that was not matched, a column decided twice.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof InvalidColumnDecisionError,
  fields: (t) => ({
    header: t.exposeString('header', { description: 'The column the decision was for.' }),
  }),
});

const ColumnMatchSourceEnum = builder.enumType('ColumnMatchSource', {
  description: 'Why a column was matched automatically.',
  values: {
    HEADER: { description: "The header is the field's label (ignoring case and spaces)." },
    REMEMBERED: {
      description:
        'The company mapped this header to the field in an earlier import (see columnMappings).',
    },
  },
});

const SuggestionReasonEnum = builder.enumType('ColumnSuggestionReason', {
  description: 'What a suggested field is based on.',
  values: {
    NORMALIZED_NAME: {
      description: "The header is the field's label but for case, spaces, punctuation or accents.",
    },
    ALIAS: {
      description:
        'The header is a known name of the field, in English, German, French, Spanish or Russian.',
    },
    SIMILAR_NAME: {
      description: "The header is a near miss of the field's label or alias (edit distance).",
    },
    VALUES: { description: "The column's values look like the field's (e.g. email addresses)." },
  },
});

const ColumnSuggestionRef = builder
  .objectRef<FieldSuggestion & { companyId: string }>('ColumnSuggestion')
  .implement({
    description: 'A field a NEW column could be mapped to, with how sure and why.',
    fields: (t) => ({
      field: t.field({
        type: UserFieldRef,
        description: 'The suggested field.',
        resolve: async (suggestion, _args, ctx) => {
          const fields = await listUserFields(ctx.db, ctx.auth.companyId);
          const field = fields.find((candidate) => candidate.key === suggestion.fieldKey);
          if (!field) throw new Error(`suggested field ${suggestion.fieldKey} is gone`);
          return field;
        },
      }),
      score: t.exposeFloat('score', {
        description: 'From 0 to 1; suggestions come best first.',
      }),
      reason: t.field({
        type: SuggestionReasonEnum,
        description: 'What the suggestion is based on.',
        resolve: (suggestion) => suggestion.reason,
      }),
      explanation: t.exposeString('explanation', {
        description: 'The reason in words, to show beside the suggestion.',
      }),
    }),
  });

/** One suggestions query per session and request, however many columns ask. */
const suggestionsBySession = new WeakMap<ImportSession, ReturnType<typeof columnSuggestions>>();

builder.objectFields(ImportColumnRef, (t) => ({
  matchSource: t.field({
    type: ColumnMatchSourceEnum,
    nullable: true,
    description: 'For a MATCHED column: by its header or by a remembered mapping; otherwise null.',
    resolve: (column) => (column.status === 'MATCHED' ? (column.matchSource ?? 'HEADER') : null),
  }),
  suggestions: t.field({
    type: [ColumnSuggestionRef],
    description:
      'For a NEW column at stage 2, up to three fields to map it to, best first; empty otherwise.',
    resolve: async (column, _args, ctx) => {
      if (column.status !== 'NEW') return [];
      let pending = suggestionsBySession.get(column.session);
      if (!pending) {
        pending = columnSuggestions(ctx.db, column.session);
        suggestionsBySession.set(column.session, pending);
      }
      const suggestions = (await pending).get(column.columnIndex) ?? [];
      return suggestions.map((suggestion) => ({ ...suggestion, companyId: column.companyId }));
    },
  }),
}));

builder.objectFields(ImportSessionRef, (t) => ({
  unmappedFields: t.field({
    type: [UserFieldRef],
    description:
      'Required fields no column fills yet: the import waits at stage 2 until confirmColumns maps a column to each.',
    resolve: (session) =>
      session.stage === 'UPLOAD' ? [] : unmappedRequiredFields(session.columns),
  }),
}));

const ColumnActionEnum = builder.enumType('ColumnAction', {
  description: 'What to do with a column of the file at stage 2.',
  values: {
    MATCHED: { description: 'Keep the field it was matched to automatically.' },
    MAP: { description: 'Fill an existing field (built-in or custom), given as fieldKey.' },
    ADD: {
      description:
        'Add a custom field named by the header, for all users of the company (the "Add to database" box).',
    },
    IGNORE: { description: 'Do not import its values.' },
  },
});

const ColumnChoiceInput = builder.inputType('ColumnDecisionInput', {
  description: 'The decision for one column.',
  fields: (t) => ({
    header: t.string({ required: true, description: "The header, as in the session's columns." }),
    action: t.field({ type: ColumnActionEnum, required: true, description: 'What to do.' }),
    fieldKey: t.string({
      description: 'For MAP: the key of the field (see userFields); ignored otherwise.',
    }),
  }),
});

const ColumnMappingRef = builder.objectRef<ColumnMapping>('ColumnMapping').implement({
  description:
    'A header the company mapped to a field at stage 2: files with this header get it matched.',
  fields: (t) => ({
    id: t.id({
      description: 'Global ID of the mapping (to delete it).',
      resolve: (mapping) => globalId('ColumnMapping', mapping.id),
    }),
    header: t.exposeString('header', {
      description:
        'The header as last written in a file; headers match ignoring case, spaces, punctuation and accents.',
    }),
    field: t.field({
      type: UserFieldRef,
      nullable: true,
      description: 'The field it fills (deleting a custom field forgets the mappings to it).',
      resolve: async (mapping, _args, ctx) => {
        const fields = await listUserFields(ctx.db, ctx.auth.companyId);
        return fields.find((field) => field.key === mapping.fieldKey) ?? null;
      },
    }),
    updatedAt: t.expose('updatedAt', {
      type: 'DateTime',
      description: 'When the mapping was last confirmed.',
    }),
  }),
});

builder.queryFields((t) => ({
  columnMappings: t.field({
    type: [ColumnMappingRef],
    description: "The company's remembered header → field mappings, by header.",
    resolve: (_root, _args, ctx) => listColumnMappings(ctx.db, ctx.auth.companyId),
  }),
}));

builder.mutationFields((t) => ({
  confirmColumns: t.fieldWithInput({
    type: ImportSessionRef,
    description:
      'Stage 2, columns: decides each column of the file (MATCHED, MAP, ADD or IGNORE). Columns not named keep their automatic match; NEW ones not named are ignored. Every required field must end up filled, each field by one column. MAP decisions are remembered for the company. Then validation starts in the background.',
    typeOptions: { description: 'The session and the decision for each column.' },
    errors: {
      types: [
        ...sessionActionErrors,
        UnknownHeaderError,
        UnknownFieldError,
        FieldMappedTwiceError,
        RequiredFieldUnmappedError,
        InvalidColumnDecisionError,
        NameTakenError,
        ...inputErrors,
      ],
    },
    input: {
      sessionId: t.input.id({ required: true, description: 'The import session.' }),
      columns: t.input.field({
        type: [ColumnChoiceInput],
        required: true,
        description: `The decisions, one per column (at most ${MAX_COLUMN_CHOICES}).`,
        validate: z.array(z.unknown()).max(MAX_COLUMN_CHOICES),
      }),
    },
    resolve: async (_root, { input }, ctx) => {
      const session = await confirmColumns(
        ctx.db,
        ctx.auth.companyId,
        sessionId(input.sessionId),
        input.columns,
      );
      return announceChange(ctx, session);
    },
  }),
  deleteColumnMapping: t.fieldWithInput({
    type: ColumnMappingRef,
    description:
      'Forgets a remembered mapping: the next file with its header asks at stage 2 again.',
    typeOptions: { description: 'The mapping to forget.' },
    errors: { types: [NotFoundError] },
    input: { id: t.input.id({ required: true, description: "The mapping's global ID." }) },
    resolve: (_root, { input }, ctx) =>
      deleteColumnMapping(
        ctx.db,
        ctx.auth.companyId,
        localId(input.id, 'ColumnMapping', 'column mapping'),
      ),
  }),
}));
