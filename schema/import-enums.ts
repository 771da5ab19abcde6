import type { ImportFailureCode, ImportProgressPhase } from '../drizzle/tables.js';
import { builder } from './builder.js';

/** Closed sets of the import workflow, shared by the session and its typed errors. */

export const ImportStageEnum = builder.enumType('ImportStage', {
  description: 'Where an import is in the five-stage workflow.',
  values: {
    UPLOAD: { description: 'Stage 1: the file is uploaded and being read.' },
    CUSTOM_FIELDS: {
      description:
        'Stage 2, columns: the file has columns no field matched, or a required field no column fills; confirmColumns decides.',
    },
    VALIDATION: { description: 'Stage 3: rows are checked; errors are shown with a report.' },
    REVIEW: { description: 'Stage 4: what will be created, updated or left unchanged.' },
    GROUP_ASSIGNMENT: {
      description: 'Stage 5: training groups by the distribution rules; continuing commits.',
    },
    COMPLETED: { description: 'The users are imported.' },
    CANCELLED: { description: 'Cancelled before the commit; no user was changed.' },
    FAILED: {
      description: 'The file could not be imported; `failure` says why. No user was changed.',
    },
    REVERTED: {
      description:
        'The committed import was undone by revertImport; `revertResult` says what changed back.',
    },
  },
});

/** Every phase, described: one missing here is a type error (IMPORT_PROGRESS_PHASES). */
const importProgressPhases: Record<ImportProgressPhase, { description: string }> = {
  IDLE: { description: 'Nothing runs: the session waits for an action, or has ended.' },
  QUEUED: { description: 'The work waits for a worker to take it.' },
  INFLATING: { description: 'Unpacking the uploaded file: progress counts bytes.' },
  READING: { description: 'Reading the rows of the data sheet: progress counts rows.' },
  VALIDATING: { description: 'Checking every row: progress counts rows.' },
  REVIEWING: {
    description: 'Working out what each row does (create, update, unchanged): rows.',
  },
  ASSIGNING: { description: 'Applying the distribution rules to the rows: rows.' },
  COMMITTING: { description: 'Writing the users: progress counts rows.' },
  REVERTING: { description: 'Undoing a committed import (revertImport): progress counts users.' },
};

export const ImportProgressPhaseEnum = builder.enumType('ImportProgressPhase', {
  description: 'What the background work of an import is doing.',
  values: importProgressPhases,
});

/** Every failure code, described: one missing here is a type error (IMPORT_FAILURE_CODES). */
const importFailureCodes: Record<ImportFailureCode, { description: string }> = {
  NOT_A_WORKBOOK: { description: 'The file is not an .xlsx workbook.' },
  CORRUPT_FILE: { description: 'The workbook is damaged and cannot be read.' },
  ENCRYPTED: { description: 'The workbook is password-protected.' },
  NO_DATA_SHEET: { description: 'No sheet has the header row of a user list.' },
  SHEET_NOT_FOUND: { description: 'startImport named a sheet the file does not have.' },
  MISSING_COLUMNS: { description: 'Email, userName or reference has no column.' },
  DUPLICATE_HEADERS: { description: 'Two columns have the same header (ignoring case).' },
  TOO_MANY_ROWS: { description: 'The sheet has more rows than the server accepts.' },
  TOO_MANY_COLUMNS: { description: 'The sheet has more columns than the server accepts.' },
  TOO_LARGE_INFLATED: { description: 'The file unpacks to more than the server accepts.' },
  TOO_LARGE_STAGED: {
    description: 'The rows hold more data than one import may store.',
  },
  TIME_LIMIT: { description: 'Reading the file took longer than the server allows.' },
  RESOURCE_LIMIT: { description: 'Reading the file needed more memory than allowed.' },
  USER_CONFLICT: {
    description:
      "The company's users changed during the import so that a reference clashes; nothing was imported.",
  },
  REVERT_CONFLICT: {
    description:
      'A revert found users changed after the import while it waited; nothing was reverted and the import stays COMPLETED.',
  },
  REVERT_FAILED: {
    description: 'A revert could not be done; nothing was reverted and the import stays COMPLETED.',
  },
  INTERNAL_ERROR: { description: 'The server failed; start the import again.' },
};

export const ImportFailureCodeEnum = builder.enumType('ImportFailureCode', {
  description: 'Why an import ended FAILED (or, for a revert, why it stopped).',
  values: importFailureCodes,
});

export const NotFoundEntityEnum = builder.enumType('NotFoundEntity', {
  description: 'A kind of object an ID can name.',
  values: {
    IMPORT_SESSION: { description: 'An import session.' },
    CUSTOM_FIELD: { description: 'A custom field.' },
    TRAINING_GROUP: { description: 'A training group.' },
    DISTRIBUTION_RULE: { description: 'A distribution rule.' },
    USER: { description: 'A user of the company.' },
    COLUMN_MAPPING: { description: 'A remembered mapping of a header to a field.' },
    API_TOKEN: { description: 'An API token.' },
  },
});
