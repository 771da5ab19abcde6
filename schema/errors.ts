import { InputValidationError } from '@pothos/plugin-validation';
import {
  EmptyFileError,
  FileTooLargeError,
  InUseError,
  InvalidRuleOrderError,
  NameTakenError,
  NotAWorkbookError,
  NotFoundError,
  RateLimitedError,
  ReportNotAvailableError,
  SessionBusyError,
  TooManyFieldsError,
  UnknownFieldError,
  UnknownHeaderError,
  WrongStageError,
} from '../server/errors.js';
import { InvalidRecipientsError } from '../server/infrastructure/mail.js';
import { builder } from './builder.js';
import { globalId } from './ids.js';
import { ImportStageEnum, NotFoundEntityEnum } from './import-enums.js';

export const ErrorInterface = builder.interfaceRef<Error>('Error').implement({
  description: 'A failure the caller can act on, returned as a member of a mutation result.',
  fields: (t) => ({
    message: t.exposeString('message', {
      description: 'What went wrong, in words a person can act on.',
    }),
    code: t.string({
      description: 'A stable machine-readable code for the failure.',
      resolve: (error) => {
        const code = (error as { code?: unknown }).code;
        return typeof code === 'string' ? code : 'ERROR';
      },
    }),
  }),
});

builder.objectType(NotFoundError, {
  name: 'NotFoundError',
  description:
    'The ID names nothing in your company (it may belong to another company, or be deleted).',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof NotFoundError,
  fields: (t) => ({
    entity: t.field({
      type: NotFoundEntityEnum,
      description: 'What kind of object was looked for.',
      // Services name it in words ("training group"), as their messages do.
      resolve: (error) => error.entity.toUpperCase().replaceAll(' ', '_') as never,
    }),
  }),
});

builder.objectType(NameTakenError, {
  name: 'NameTakenError',
  description: 'Another object of the same kind already has this name (names ignore case).',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof NameTakenError,
  fields: (t) => ({
    takenName: t.exposeString('takenName', { description: 'The name that is taken.' }),
  }),
});

builder.objectType(UnknownFieldError, {
  name: 'UnknownFieldError',
  description: 'No user field has this key; `userFields` lists the keys.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof UnknownFieldError,
  fields: (t) => ({
    fieldKey: t.exposeString('fieldKey', { description: 'The key that matched no field.' }),
  }),
});

builder.objectType(InUseError, {
  name: 'InUseError',
  description: 'The object is still used by distribution rules; change or delete them first.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof InUseError,
  fields: (t) => ({
    ruleIds: t.idList({
      description: 'Global IDs of the distribution rules that use the object.',
      resolve: (error) => error.ruleIds.map((id) => globalId('DistributionRule', id)),
    }),
  }),
});

builder.objectType(InvalidRuleOrderError, {
  name: 'InvalidRuleOrderError',
  description: 'The new order must list every distribution rule of the company exactly once.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof InvalidRuleOrderError,
});

builder.objectType(WrongStageError, {
  name: 'WrongStageError',
  description:
    'The import is not at the stage this action needs (a stale or repeated call). Nothing changed.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof WrongStageError,
  fields: (t) => ({
    stage: t.field({
      type: ImportStageEnum,
      description: 'The stage the import is at now.',
      resolve: (error) => error.stage as never,
    }),
    expectedStages: t.field({
      type: [ImportStageEnum],
      description: 'The stages at which this action is allowed.',
      resolve: (error) => error.expectedStages as never,
    }),
  }),
});

builder.objectType(SessionBusyError, {
  name: 'SessionBusyError',
  description: 'Background work for this stage is still running; wait until `busy` is false.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof SessionBusyError,
  fields: (t) => ({
    stage: t.field({
      type: ImportStageEnum,
      description: 'The stage being worked on.',
      resolve: (error) => error.stage as never,
    }),
  }),
});

builder.objectType(UnknownHeaderError, {
  name: 'UnknownHeaderError',
  description: 'Some headers given are not new columns of this import (status NEW).',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof UnknownHeaderError,
  fields: (t) => ({
    headers: t.exposeStringList('headers', { description: 'The headers that were not NEW.' }),
  }),
});

builder.objectType(EmptyFileError, {
  name: 'EmptyFileError',
  description: 'The uploaded file has no bytes.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof EmptyFileError,
});

builder.objectType(NotAWorkbookError, {
  name: 'NotAWorkbookError',
  description:
    'The upload is not an .xlsx workbook (a CSV, an old .xls, a password-protected file, …).',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof NotAWorkbookError,
});

builder.objectType(FileTooLargeError, {
  name: 'FileTooLargeError',
  description: 'The upload is larger than the server accepts (MAX_UPLOAD_BYTES).',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof FileTooLargeError,
  fields: (t) => ({
    maxBytes: t.exposeInt('maxBytes', { description: 'The largest accepted size in bytes.' }),
  }),
});

builder.objectType(ReportNotAvailableError, {
  name: 'ReportNotAvailableError',
  description: 'The report has nothing to show at this stage (no errors, or before REVIEW).',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof ReportNotAvailableError,
});

builder.objectType(InvalidRecipientsError, {
  name: 'InvalidRecipientsError',
  description:
    'Some recipients are not plain email addresses (or there are none, or more than 20).',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof InvalidRecipientsError,
  fields: (t) => ({
    invalid: t.exposeStringList('invalid', { description: 'The recipients refused.' }),
  }),
});

builder.objectType(TooManyFieldsError, {
  name: 'TooManyFieldsError',
  description:
    'The company has as many custom fields as it may (MAX_CUSTOM_FIELDS); nothing was added.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof TooManyFieldsError,
  fields: (t) => ({
    maxFields: t.exposeInt('maxFields', {
      description: 'How many custom fields a company may have.',
    }),
  }),
});

builder.objectType(RateLimitedError, {
  name: 'RateLimitedError',
  description:
    'This API token started too much work in the last minute (WORK_RATE_LIMIT_PER_MINUTE); nothing was done. Try again after `retryAfterSeconds`.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof RateLimitedError,
  fields: (t) => ({
    retryAfterSeconds: t.exposeInt('retryAfterSeconds', {
      description: 'Seconds until the token may start work again.',
    }),
    limitPerMinute: t.exposeInt('limitPerMinute', {
      description: 'How many such mutations a token may call per minute.',
    }),
  }),
});

const InputIssue = builder.objectRef<{ path: string[]; message: string }>('InputIssue').implement({
  description: 'One problem with one input value.',
  fields: (t) => ({
    path: t.exposeStringList('path', {
      description: 'Where the value is, e.g. ["input", "name"].',
    }),
    message: t.exposeString('message', { description: 'What is wrong with it.' }),
  }),
});

builder.objectType(InputValidationError, {
  name: 'InvalidInputError',
  description: 'An input value failed validation: each issue says which and why.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof InputValidationError,
  fields: (t) => ({
    message: t.string({
      description: 'What went wrong, in words a person can act on.',
      resolve: (error) => error.issues.map((issue) => issue.message).join('; '),
    }),
    code: t.string({ description: 'Always INVALID_INPUT.', resolve: () => 'INVALID_INPUT' }),
    issues: t.field({
      type: [InputIssue],
      description: 'Each problem with the input.',
      resolve: (error) =>
        error.issues.map((issue) => ({
          path: (issue.path ?? []).map((part) =>
            String(typeof part === 'object' && part !== null ? part.key : part),
          ),
          message: issue.message,
        })),
    }),
  }),
});

/** Error types every settings mutation can return besides its own. */
export const inputErrors = [InputValidationError] as const;

/** Error types of every action on an import session: not found, wrong stage, busy. */
export const sessionActionErrors = [NotFoundError, WrongStageError, SessionBusyError] as const;

/** Error types of every mutation that takes an uploaded file. */
export const uploadErrors = [
  EmptyFileError,
  NotAWorkbookError,
  FileTooLargeError,
  RateLimitedError,
] as const;
