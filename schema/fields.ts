import { z } from 'zod';
import { InUseError, NameTakenError, NotFoundError, TooManyFieldsError } from '../server/errors.js';
import {
  type CustomField,
  createCustomField,
  deleteCustomField,
  listCustomFields,
  listUserFields,
  MAX_LABEL_LENGTH,
  renameCustomField,
  type UserField,
} from '../server/settings/fields.js';
import { builder } from './builder.js';
import { inputErrors } from './errors.js';
import { localId } from './ids.js';
import { customFields } from './loaders.js';
import { singleLineText } from './validation.js';

const label = singleLineText('The label', 1000).pipe(
  z
    .string()
    .trim()
    .min(1, 'The label must not be empty.')
    .max(MAX_LABEL_LENGTH, `The label must be at most ${MAX_LABEL_LENGTH} characters.`),
);

export const CustomFieldRef = builder.objectRef<CustomField>('CustomField');

builder.node(CustomFieldRef, {
  description: 'A field a company adds to its users beyond the built-ins.',
  id: { resolve: (field) => field.id },
  loadMany: async (ids, ctx) => {
    const fields = await listCustomFields(ctx.db, ctx.auth.companyId);
    return ids.map((id) => fields.find((field) => field.id === id) ?? null);
  },
  fields: (t) => ({
    key: t.exposeString('key', {
      description: 'Stable key of the field (rules and values use it); survives renames.',
    }),
    label: t.exposeString('label', {
      description: 'The label, matched case-insensitively against spreadsheet headers.',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When it was created.' }),
  }),
});

export const UserFieldRef = builder.objectRef<UserField>('UserField').implement({
  description:
    'A field of a user record: a built-in (Email, userName, reference) or a custom field.',
  fields: (t) => ({
    key: t.exposeString('key', {
      description: 'Stable key: email, userName, reference, or a custom field key.',
    }),
    label: t.exposeString('label', { description: 'The label, as a spreadsheet header.' }),
    builtIn: t.exposeBoolean('builtIn', {
      description: 'True for Email, userName and reference: required, cannot be deleted.',
    }),
    customField: t.field({
      type: CustomFieldRef,
      nullable: true,
      description: 'The custom field behind it; null for built-ins.',
      resolve: async (field, _args, ctx, info) => {
        if (!field.customFieldId) return null;
        const fields = await customFields(ctx, info);
        return fields.find((custom) => custom.id === field.customFieldId) ?? null;
      },
    }),
  }),
});

builder.queryFields((t) => ({
  userFields: t.field({
    type: [UserFieldRef],
    description:
      'Every field of a user: the built-ins Email, userName and reference first, then custom fields in creation order.',
    resolve: (_root, _args, ctx) => listUserFields(ctx.db, ctx.auth.companyId),
  }),
}));

builder.mutationFields((t) => ({
  createCustomField: t.fieldWithInput({
    type: CustomFieldRef,
    description: 'Adds a custom field for all users of the company.',
    typeOptions: { description: 'The label of the new custom field.' },
    errors: { types: [NameTakenError, TooManyFieldsError, ...inputErrors] },
    input: {
      label: t.input.string({ required: true, description: 'The new label.', validate: label }),
    },
    resolve: (_root, { input }, ctx) =>
      createCustomField(ctx.db, ctx.auth.companyId, input.label, {
        maxFields: ctx.config.MAX_CUSTOM_FIELDS,
      }),
  }),
  renameCustomField: t.fieldWithInput({
    type: CustomFieldRef,
    description: 'Renames a custom field; its key and stored values stay.',
    typeOptions: { description: 'Which custom field to rename, and its new label.' },
    errors: { types: [NotFoundError, NameTakenError, ...inputErrors] },
    input: {
      id: t.input.id({ required: true, description: 'The custom field to rename.' }),
      label: t.input.string({ required: true, description: 'The new label.', validate: label }),
    },
    resolve: (_root, { input }, ctx) =>
      renameCustomField(
        ctx.db,
        ctx.auth.companyId,
        localId(input.id, 'CustomField', 'custom field'),
        input.label,
      ),
  }),
  deleteCustomField: t.fieldWithInput({
    type: CustomFieldRef,
    description:
      "Deletes a custom field, every user's value of it and the column mappings remembered for it. Built-ins cannot be deleted; a field a rule tests is refused.",
    typeOptions: { description: 'Which custom field to delete.' },
    errors: { types: [NotFoundError, InUseError] },
    input: { id: t.input.id({ required: true, description: 'The custom field to delete.' }) },
    resolve: (_root, { input }, ctx) =>
      deleteCustomField(
        ctx.db,
        ctx.auth.companyId,
        localId(input.id, 'CustomField', 'custom field'),
      ),
  }),
}));
