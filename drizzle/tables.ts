import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  bytea,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgEnum,
  pgTable,
  primaryKey,
  text,
  timestamp,
  unique,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';

const createdAt = () => timestamp('created_at', { withTimezone: true }).notNull().defaultNow();

export const tokenRole = pgEnum('token_role', ['ADMIN', 'VIEWER']);

export const ruleOperator = pgEnum('rule_operator', [
  'EQUALS',
  'NOT_EQUALS',
  'CONTAINS',
  'STARTS_WITH',
  'ENDS_WITH',
]);

export const importStage = pgEnum('import_stage', [
  'UPLOAD',
  'CUSTOM_FIELDS',
  'VALIDATION',
  'REVIEW',
  'GROUP_ASSIGNMENT',
  'COMPLETED',
  'CANCELLED',
  'FAILED',
  'REVERTED',
]);

/** ACTIVE users take part in imports and groups; ARCHIVED ones keep their values and group. */
export const userStatus = pgEnum('user_status', ['ACTIVE', 'ARCHIVED']);

/** ADD_AND_UPDATE leaves users the file lacks alone; SYNC archives them. */
export const importMode = pgEnum('import_mode', ['ADD_AND_UPDATE', 'SYNC']);

/** What an import's background work is doing: the phases ImportProgress.phase can hold. */
export const IMPORT_PROGRESS_PHASES = [
  'IDLE',
  'QUEUED',
  'INFLATING',
  'READING',
  'VALIDATING',
  'REVIEWING',
  'ASSIGNING',
  'COMMITTING',
  'REVERTING',
] as const;
export type ImportProgressPhase = (typeof IMPORT_PROGRESS_PHASES)[number];

export interface ImportProgress {
  /** INFLATING counts bytes; the others rows (or, REVERTING, users). */
  phase: ImportProgressPhase;
  done: number;
  total: number | null;
}

export interface ImportColumn {
  header: string;
  /** 0-based position in the sheet (and in import_rows.cells). */
  columnIndex: number;
  /** The user field key it maps to; null while NEW or when IGNORED. */
  fieldKey: string | null;
  /**
   * MATCHED: found automatically (by the header, or a mapping the company remembered);
   * MAPPED: the admin mapped it to an existing field at stage 2; ADDED: added as a new custom
   * field; IGNORED: its values are not imported; NEW: not decided yet.
   */
  status: 'MATCHED' | 'MAPPED' | 'NEW' | 'ADDED' | 'IGNORED';
  /** Why a MATCHED column matched: its header is the field's label, or a remembered mapping. */
  matchSource?: 'HEADER' | 'REMEMBERED';
}

/** A stage-2 decision kept on the session, so that a corrected file read again keeps it. */
export interface ColumnDecision {
  header: string;
  status: ImportColumn['status'];
  fieldKey: string | null;
}

/** A visible worksheet of an import's file: whether it has the required headers, and which was read. */
export interface ImportSheet {
  name: string;
  hasRequiredHeaders: boolean;
  read: boolean;
}

/**
 * A cell of a staged row the reader could not read (an error value, a formula without a
 * value, text longer than a cell holds), as the row error validation reports for it.
 */
export interface ImportCellProblem {
  columnIndex: number;
  code: string;
  message: string;
  value: string | null;
}

/** Why an import ended FAILED (or a revert stopped): the codes ImportFailure.code can hold. */
export const IMPORT_FAILURE_CODES = [
  'NOT_A_WORKBOOK',
  'CORRUPT_FILE',
  'ENCRYPTED',
  'NO_DATA_SHEET',
  'SHEET_NOT_FOUND',
  'MISSING_COLUMNS',
  'DUPLICATE_HEADERS',
  'TOO_MANY_ROWS',
  'TOO_MANY_COLUMNS',
  'TOO_LARGE_INFLATED',
  'TOO_LARGE_STAGED',
  'TIME_LIMIT',
  'RESOURCE_LIMIT',
  'USER_CONFLICT',
  'REVERT_CONFLICT',
  'REVERT_FAILED',
  'INTERNAL_ERROR',
] as const;
export type ImportFailureCode = (typeof IMPORT_FAILURE_CODES)[number];

export interface ImportFailure {
  code: ImportFailureCode;
  message: string;
}

/** Server-wide values shared by every process, e.g. the download-link signing secret. */
export const serverSecrets = pgTable('server_secrets', {
  name: text().primaryKey(),
  value: text().notNull(),
  createdAt: createdAt(),
});

/**
 * Counters of the per-token rate limit on work-starting mutations, in rate-limiter-flexible's
 * Drizzle store shape (key, points, expire): one store for every process on the database.
 */
export const rateLimits = pgTable('rate_limits', {
  key: text().primaryKey(),
  points: integer().notNull().default(0),
  expire: timestamp({ withTimezone: true }),
});

export const importStep = pgEnum('import_step', [
  'READ',
  'VALIDATE',
  'REVIEW',
  'ASSIGN',
  'COMMIT',
  'REVERT',
]);

export interface PreviewBasis {
  /** companies.users_version read before the rows' actions were labelled. */
  usersVersion: number;
  /** Fingerprint of the distribution rules the groups were assigned with; null before. */
  rulesHash: string | null;
}

export interface ImportResult {
  created: number;
  updated: number;
  unchanged: number;
  skipped: number;
  /** Users a SYNC archived (absent before these existed: 0). */
  archived?: number;
  /** Archived users the file brought back (absent before these existed: 0). */
  restored?: number;
}

/** What a revert did, by what the import had done to each user. */
export interface RevertResult {
  /** Users the import created and the revert removed. */
  removed: number;
  /** Users the import updated whose previous values and group came back. */
  updated: number;
  /** Users the import archived, active again. */
  unarchived: number;
  /** Users the import restored, archived again. */
  rearchived: number;
  /** Users changed since the import, left as they are (only with force). */
  conflicts: number;
}

/** A user's values as an import found or left them (import_user_changes). */
export interface UserImage {
  email: string;
  userName: string;
  reference: string;
  customValues: Record<string, string>;
  trainingGroupId: string | null;
  status: 'ACTIVE' | 'ARCHIVED';
  archivedAt: string | null;
}

/** One problem of one staged row, as validation wrote it. */
export interface ImportRowError {
  /** The column it concerns (0-based), or null for the row as a whole. */
  columnIndex: number | null;
  code: string;
  message: string;
  value: string | null;
}

export const companies = pgTable('companies', {
  id: uuid().primaryKey().defaultRandom(),
  name: text().notNull(),
  /**
   * Bumped by every change to the company's users (a commit that changed some, a deleted
   * custom field): an import preview computed at an older version must be recomputed.
   */
  usersVersion: bigint('users_version', { mode: 'number' }).notNull().default(0),
  /**
   * The domains report mail may go to, as an ADMIN set them (lower-case host names); null: the
   * domains of the company's own users' emails.
   */
  reportMailDomains: text('report_mail_domains').array(),
  createdAt: createdAt(),
});

export const apiTokens = pgTable(
  'api_tokens',
  {
    id: uuid().primaryKey().defaultRandom(),
    companyId: uuid('company_id')
      .notNull()
      .references(() => companies.id, { onDelete: 'cascade' }),
    role: tokenRole().notNull(),
    /** SHA-256 of the token, hex: the token itself is never stored. */
    tokenHash: text('token_hash').notNull().unique(),
    label: text(),
    createdAt: createdAt(),
    /** Recorded at most once a minute per process (server/settings/api-tokens.ts). */
    lastUsedAt: timestamp('last_used_at', { withTimezone: true }),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
  },
  (t) => [index('api_tokens_company_idx').on(t.companyId)],
);

export const customFields = pgTable(
  'custom_fields',
  {
    id: uuid().primaryKey().defaultRandom(),
    companyId: uuid('company_id')
      .notNull()
      .references(() => companies.id, { onDelete: 'cascade' }),
    /** Stable key of the field in users.custom_values and in rules; survives renames. */
    key: text().notNull(),
    label: text().notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    unique('custom_fields_company_key_unique').on(t.companyId, t.key),
    uniqueIndex('custom_fields_company_label_unique').on(t.companyId, sql`lower(${t.label})`),
  ],
);

export const trainingGroups = pgTable(
  'training_groups',
  {
    id: uuid().primaryKey().defaultRandom(),
    companyId: uuid('company_id')
      .notNull()
      .references(() => companies.id, { onDelete: 'cascade' }),
    name: text().notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('training_groups_company_name_unique').on(t.companyId, sql`lower(${t.name})`),
  ],
);

export const users = pgTable(
  'users',
  {
    /**
     * Time-ordered (UUID v7, see the migration that made muster_uuid_v7): a commit's new users
     * go to the end of the indexes on their id, not all over them (the commit's upsert costs
     * 20-30 % less; docs/decisions.md).
     */
    id: uuid().primaryKey().default(sql`muster_uuid_v7()`),
    /**
     * The company and the training group are checked as foreign keys would, once a statement
     * rather than once a row, by triggers (migration users_references_by_statement, and
     * docs/decisions.md): deleting the company deletes its users, deleting the group unsets it.
     */
    companyId: uuid('company_id').notNull(),
    /** Stored trimmed and NFC-normalized; compared case-insensitively. */
    email: text().notNull(),
    userName: text('user_name').notNull(),
    reference: text().notNull(),
    /** Values of custom fields keyed by custom_fields.key. */
    customValues: jsonb('custom_values').$type<Record<string, string>>().notNull().default({}),
    trainingGroupId: uuid('training_group_id'),
    status: userStatus().notNull().default('ACTIVE'),
    /** When the user was archived; null while ACTIVE. */
    archivedAt: timestamp('archived_at', { withTimezone: true }),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('users_company_email_unique').on(t.companyId, sql`lower(${t.email})`),
    unique('users_company_reference_unique').on(t.companyId, t.reference),
    index('users_company_id_idx').on(t.companyId, t.id),
  ],
);

export const distributionRules = pgTable(
  'distribution_rules',
  {
    id: uuid().primaryKey().defaultRandom(),
    companyId: uuid('company_id')
      .notNull()
      .references(() => companies.id, { onDelete: 'cascade' }),
    /** Order of application, 0-based; first match wins. */
    position: integer().notNull(),
    /** A built-in field key (email, userName, reference) or a custom field's key. */
    fieldKey: text('field_key').notNull(),
    operator: ruleOperator().notNull(),
    value: text().notNull(),
    trainingGroupId: uuid('training_group_id')
      .notNull()
      .references(() => trainingGroups.id, { onDelete: 'restrict' }),
    createdAt: createdAt(),
  },
  (t) => [unique('distribution_rules_company_position_unique').on(t.companyId, t.position)],
);

export const uploadFiles = pgTable('upload_files', {
  id: uuid().primaryKey().defaultRandom(),
  companyId: uuid('company_id')
    .notNull()
    .references(() => companies.id, { onDelete: 'cascade' }),
  fileName: text('file_name').notNull(),
  size: bigint({ mode: 'number' }).notNull(),
  createdAt: createdAt(),
});

/**
 * An upload's bytes, in pieces of 1 MB (UPLOAD_PIECE_BYTES) numbered from 0: stored as they stream in and
 * read back one at a time, so no step holds a whole file (as bytes, and as hex on the wire).
 */
export const uploadFilePieces = pgTable(
  'upload_file_pieces',
  {
    uploadFileId: uuid('upload_file_id')
      .notNull()
      .references(() => uploadFiles.id, { onDelete: 'cascade' }),
    piece: integer().notNull(),
    content: bytea().notNull(),
  },
  (t) => [primaryKey({ columns: [t.uploadFileId, t.piece] })],
);

export const importSessions = pgTable(
  'import_sessions',
  {
    id: uuid().primaryKey().defaultRandom(),
    companyId: uuid('company_id')
      .notNull()
      .references(() => companies.id, { onDelete: 'cascade' }),
    stage: importStage().notNull().default('UPLOAD'),
    /** True while background work for the current stage is pending or running. */
    busy: boolean().notNull().default(true),
    /** The background step to run while busy. */
    step: importStep().notNull().default('READ'),
    uploadFileId: uuid('upload_file_id').references(() => uploadFiles.id, { onDelete: 'set null' }),
    fileName: text('file_name').notNull(),
    fileSize: bigint('file_size', { mode: 'number' }).notNull(),
    comment: text(),
    /** The sheet startImport named, if any (else the reader chooses). */
    requestedSheet: text('requested_sheet'),
    /** The file's visible worksheets, once read. */
    sheets: jsonb().$type<ImportSheet[]>().notNull().default([]),
    mode: importMode().notNull().default('ADD_AND_UPDATE'),
    /** A SYNC past the archive limit was acknowledged by continueImport(acknowledgeArchive). */
    archiveAcknowledged: boolean('archive_acknowledged').notNull().default(false),
    /**
     * The SYNC_ARCHIVE_LIMIT_PERCENT the last continueImport checked: the commit checks it
     * again if the users changed since. Null: never checked.
     */
    archiveLimitPercent: doublePrecision('archive_limit_percent'),
    /** When the commit ended: the undo period counts from here. */
    committedAt: timestamp('committed_at', { withTimezone: true }),
    /** The revert asked for (step REVERT) reverts the users without conflicts and skips the rest. */
    revertForce: boolean('revert_force').notNull().default(false),
    revertResult: jsonb('revert_result').$type<RevertResult>(),
    progress: jsonb().$type<ImportProgress>(),
    columns: jsonb().$type<ImportColumn[]>().notNull().default([]),
    rowCount: integer('row_count').notNull().default(0),
    validRowCount: integer('valid_row_count').notNull().default(0),
    invalidRowCount: integer('invalid_row_count').notNull().default(0),
    result: jsonb().$type<ImportResult>(),
    failure: jsonb().$type<ImportFailure>(),
    /** What the staged preview was computed from; the commit recomputes it only if that moved. */
    previewBasis: jsonb('preview_basis').$type<PreviewBasis>(),
    /** The stage-2 decisions once confirmed; a replaced file's columns are matched with them. */
    columnDecisions: jsonb('column_decisions').$type<ColumnDecision[]>(),
    /** Lease of the worker process holding the session's background work. */
    leaseOwner: text('lease_owner'),
    leaseExpiresAt: timestamp('lease_expires_at', { withTimezone: true }),
    /** Bumped on every claim so a stale worker's writes fail their compare-and-set. */
    attempt: integer().notNull().default(0),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('import_sessions_company_created_idx').on(t.companyId, t.createdAt, t.id),
    index('import_sessions_work_idx').on(t.busy, t.leaseExpiresAt),
  ],
);

/**
 * The rows of an upload's data sheet as staged (stage 1), by session. Like the previews below,
 * without a foreign key to import_sessions: a key checks every row inserted (a lookup and a
 * lock of the session row; staging 100k rows took 0.35 s longer, validating them 0.4 s), and
 * both tables are written only for a session the writer holds (staging locks the session row;
 * previews are computed from staged rows). The trigger `import_sessions_delete_rows` (migration
 * 20261206025333) deletes them with their session, as the key's ON DELETE CASCADE did.
 */
export const importRows = pgTable(
  'import_rows',
  {
    sessionId: uuid('session_id').notNull(),
    /** The spreadsheet's own row number. */
    rowNumber: integer('row_number').notNull(),
    /** Cell values as text, by column index (null: blank), as the reader converted them. */
    cells: jsonb().$type<(string | null)[]>().notNull(),
    /** Cells the reader could not read (their `cells` entry is null); null when none. */
    problems: jsonb().$type<ImportCellProblem[]>(),
    /** The cells as the file had them, once the admin edited the row; null while unedited. */
    originalCells: jsonb('original_cells').$type<(string | null)[]>(),
  },
  (t) => [primaryKey({ columns: [t.sessionId, t.rowNumber] })],
);

/**
 * The preview of each staged row, from validation on: its errors, its action, the existing
 * user it updates and the group it gets. A table of its own, written by INSERT, so that
 * validation does not rewrite every staged row with its cells (an UPDATE of import_rows took
 * 15.7 s at a million rows, this INSERT 10.4 s); the preview's later refreshes update these
 * narrow rows. A staged row has no preview until validation has reached it.
 */
export const importRowPreviews = pgTable(
  'import_row_previews',
  {
    /** No foreign key, as import_rows (see there). */
    sessionId: uuid('session_id').notNull(),
    rowNumber: integer('row_number').notNull(),
    /** Null when the row is valid. */
    errors: jsonb().$type<ImportRowError[]>(),
    /** CREATE, UPDATE or UNCHANGED for a valid row; SKIP for a row with errors. */
    action: text().notNull(),
    /** The existing user the row updates (matched by email); null for a new user. */
    userId: uuid('user_id'),
    /** The first distribution rule that matches the row; null when none does. */
    matchedRuleId: uuid('matched_rule_id'),
    /** The group the row's user gets (an existing user keeps theirs); null when none. */
    trainingGroupId: uuid('training_group_id'),
  },
  (t) => [primaryKey({ columns: [t.sessionId, t.rowNumber] })],
);

/**
 * The staged rows that repeat an earlier row's email or reference (DUPLICATE_IN_FILE), with
 * the first row of each: written by validation's duplicate check (one statement over all the
 * rows, run beside the range-by-range checks) and read by its last statement.
 */
export const importRowDuplicates = pgTable(
  'import_row_duplicates',
  {
    sessionId: uuid('session_id')
      .notNull()
      .references(() => importSessions.id, { onDelete: 'cascade' }),
    rowNumber: integer('row_number').notNull(),
    /** The first row with the same email (trimmed, NFC, lower case); null: none before. */
    firstEmailRow: integer('first_email_row'),
    /** The first row with the same reference; null: none before. */
    firstReferenceRow: integer('first_reference_row'),
  },
  (t) => [primaryKey({ columns: [t.sessionId, t.rowNumber] })],
);

/**
 * What a commit did to each user, kept for revertImport and ImportSession.changes: the user's
 * values before (null for a user it created) and after. Written set-based in the commit's
 * transaction; `outcome` is set by the revert. Without a foreign key to import_sessions, like
 * the staged rows: a key checked and locked the session row for every record, and the commit
 * writes progress to that row meanwhile, so each check walked a longer chain of its versions
 * (a million new users: 298 s instead of 31). `import_sessions_delete_rows` deletes them with
 * their session.
 */
export const importUserChanges = pgTable(
  'import_user_changes',
  {
    sessionId: uuid('session_id').notNull(),
    /** No foreign key: a reverted creation deletes the user, the record stays. */
    userId: uuid('user_id').notNull(),
    /** CREATE, UPDATE, ARCHIVE or RESTORE. */
    action: text().notNull(),
    before: jsonb().$type<UserImage>(),
    after: jsonb().$type<UserImage>(),
    /** Set by a revert: REVERTED, or CONFLICT (changed since, left as it was). */
    outcome: text(),
  },
  (t) => [primaryKey({ columns: [t.sessionId, t.userId] })],
);

/**
 * A company's remembered stage-2 mappings: a header (compared by headerKey: letters and digits,
 * lower case, without accents) that the admin mapped to a field; the next file with that header
 * gets it MATCHED.
 */
export const columnMappings = pgTable(
  'column_mappings',
  {
    id: uuid().primaryKey().defaultRandom(),
    companyId: uuid('company_id')
      .notNull()
      .references(() => companies.id, { onDelete: 'cascade' }),
    /** The header as last written in a file. */
    header: text().notNull(),
    headerKey: text('header_key').notNull(),
    /** A built-in field key or a custom field's key. */
    fieldKey: text('field_key').notNull(),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [unique('column_mappings_company_header_unique').on(t.companyId, t.headerKey)],
);

export const importEditKind = pgEnum('import_edit_kind', [
  'UPDATE_ROWS',
  'REVERT_ROWS',
  'REPLACE_IN_COLUMN',
  'REPLACE_FILE',
]);

/** Who changed an import's staged rows, when, and how much: the audit of in-place fixes. */
export const importSessionEdits = pgTable(
  'import_session_edits',
  {
    id: uuid().primaryKey().defaultRandom(),
    sessionId: uuid('session_id')
      .notNull()
      .references(() => importSessions.id, { onDelete: 'cascade' }),
    /** The token that made the change (tokens are revoked, never deleted). */
    tokenId: uuid('token_id').references(() => apiTokens.id, { onDelete: 'set null' }),
    kind: importEditKind().notNull(),
    rowCount: integer('row_count').notNull(),
    cellCount: integer('cell_count').notNull(),
    createdAt: createdAt(),
  },
  (t) => [index('import_session_edits_session_idx').on(t.sessionId, t.createdAt)],
);

export const mailOutbox = pgTable('mail_outbox', {
  id: uuid().primaryKey().defaultRandom(),
  companyId: uuid('company_id')
    .notNull()
    .references(() => companies.id, { onDelete: 'cascade' }),
  recipients: text().array().notNull(),
  subject: text().notNull(),
  /** Where the message went: an SMTP message id or the path of the .eml in the outbox. */
  deliveredTo: text('delivered_to'),
  createdAt: createdAt(),
});
