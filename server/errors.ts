/**
 * Failures a caller can act on. Services throw these; the schema exposes each as a typed
 * error (see schema/errors.ts). Anything else that is thrown is a bug and gets masked.
 */
export abstract class AppError extends Error {
  abstract readonly code: string;
}

export class NotFoundError extends AppError {
  readonly code = 'NOT_FOUND';
  constructor(
    readonly entity: string,
    id: string,
  ) {
    super(`No ${entity} with ID ${JSON.stringify(id)} exists in your company.`);
  }
}

export class NameTakenError extends AppError {
  readonly code = 'NAME_TAKEN';
  constructor(
    readonly entity: string,
    readonly takenName: string,
  ) {
    super(`A ${entity} named ${JSON.stringify(takenName)} already exists (names ignore case).`);
  }
}

export class UnknownFieldError extends AppError {
  readonly code = 'UNKNOWN_FIELD';
  constructor(readonly fieldKey: string) {
    super(
      `There is no user field with the key ${JSON.stringify(fieldKey)}: use a key listed by userFields.`,
    );
  }
}

export class InUseError extends AppError {
  readonly code = 'IN_USE';
  constructor(
    message: string,
    readonly ruleIds: string[],
  ) {
    super(message);
  }
}

export class InvalidRuleOrderError extends AppError {
  readonly code = 'INVALID_RULE_ORDER';
  constructor(message: string) {
    super(message);
  }
}

export class WrongStageError extends AppError {
  readonly code = 'WRONG_STAGE';
  constructor(
    readonly stage: string,
    readonly expectedStages: string[],
  ) {
    super(
      `The import is at stage ${stage}; this needs it at ${expectedStages.join(' or ')}. Reload the session and continue from where it is.`,
    );
  }
}

export class SessionBusyError extends AppError {
  readonly code = 'SESSION_BUSY';
  constructor(readonly stage: string) {
    super(
      `The import is still working on stage ${stage}; wait for importSessionUpdated to report busy: false.`,
    );
  }
}

export class UnknownHeaderError extends AppError {
  readonly code = 'UNKNOWN_HEADER';
  constructor(
    readonly headers: string[],
    which = 'new columns of this import',
    hint = 'Use headers listed with status NEW.',
  ) {
    super(
      `These are not ${which}: ${headers.map((header) => JSON.stringify(header)).join(', ')}. ${hint}`,
    );
  }
}

export class FieldMappedTwiceError extends AppError {
  readonly code = 'FIELD_MAPPED_TWICE';
  constructor(
    readonly fieldKey: string,
    readonly headers: string[],
  ) {
    super(
      `The field ${JSON.stringify(fieldKey)} would be filled by more than one column (${headers.map((header) => JSON.stringify(header)).join(', ')}): map or add it from one column and ignore the others.`,
    );
  }
}

export class RequiredFieldUnmappedError extends AppError {
  readonly code = 'REQUIRED_FIELD_UNMAPPED';
  constructor(readonly fieldKeys: string[]) {
    super(
      `No column fills the required field${fieldKeys.length > 1 ? 's' : ''} ${fieldKeys.join(', ')}: map a column of the file to ${fieldKeys.length > 1 ? 'each' : 'it'} (see the columns' suggestions), or fix the file and replace it.`,
    );
  }
}

export class InvalidColumnDecisionError extends AppError {
  readonly code = 'INVALID_COLUMN_DECISION';
  constructor(
    readonly header: string,
    reason: string,
  ) {
    super(`Column ${JSON.stringify(header)}: ${reason}`);
  }
}

export class RowNotFoundError extends AppError {
  readonly code = 'ROW_NOT_FOUND';
  constructor(readonly rowNumbers: number[]) {
    super(
      `The file has no data row numbered ${rowNumbers.slice(0, 20).join(', ')}${rowNumbers.length > 20 ? ', …' : ''}: use the row numbers of the session's rows.`,
    );
  }
}

export class EditTooLargeError extends AppError {
  readonly code = 'EDIT_TOO_LARGE';
  constructor(readonly limit: number) {
    super(
      `One call may change at most ${limit} cells: send the rest in further calls, or use replaceInColumn or replaceImportFile for many rows.`,
    );
  }
}

export class EmptyFileError extends AppError {
  readonly code = 'EMPTY_FILE';
  constructor() {
    super('The file is empty. Choose an .xlsx file with a header row and users.');
  }
}

export class NotAWorkbookError extends AppError {
  readonly code = 'NOT_A_WORKBOOK';
  constructor(
    message = 'The file is not an .xlsx workbook. Save it from Excel as .xlsx and upload it again.',
  ) {
    super(message);
  }
}

export class FileTooLargeError extends AppError {
  readonly code = 'FILE_TOO_LARGE';
  constructor(readonly maxBytes: number) {
    super(
      `The file is larger than ${Math.floor(maxBytes / (1024 * 1024))} MiB. Split it into smaller files.`,
    );
  }
}

export class ReportNotAvailableError extends AppError {
  readonly code = 'REPORT_NOT_AVAILABLE';
  constructor(readonly report: string) {
    super(
      report === 'ERRORS'
        ? 'This import has no row errors, so there is no error report.'
        : 'The report of imported users is available from the REVIEW stage on.',
    );
  }
}

export class RateLimitedError extends AppError {
  readonly code = 'RATE_LIMITED';
  constructor(
    readonly retryAfterSeconds: number,
    readonly limitPerMinute: number,
    message?: string,
  ) {
    super(
      message ??
        `This token started too much work (at most ${limitPerMinute} per minute). Try again in ${retryAfterSeconds} s.`,
    );
  }
}

export class TooManyFieldsError extends AppError {
  readonly code = 'TOO_MANY_FIELDS';
  constructor(readonly maxFields: number) {
    super(
      `The company has ${maxFields} custom fields, the most it may have: delete one it no longer needs first.`,
    );
  }
}
