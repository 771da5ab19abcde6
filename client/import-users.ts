import type { Client, CombinedError, OperationResult } from '@urql/core';
import { onEnd, pipe, type Source, subscribe } from 'wonka';
import {
  type ColumnDecisionInput,
  ConfirmColumnsDocument,
  ContinueImportDocument,
  type ErrorPartsFragment,
  ImportErrorsDocument,
  type ImportErrorsQuery,
  type ImportMode,
  type ImportRowErrorPartsFragment,
  ImportSessionDocument,
  type ImportSessionPartsFragment,
  ImportSessionUpdatedDocument,
  type ImportStage,
  StartImportDocument,
  UserFieldsDocument,
  type UserFieldsQuery,
} from './gql/graphql.js';

/** The session as importUsers sees it: the generated ImportSessionParts fragment. */
export type ImportSession = ImportSessionPartsFragment;

/**
 * A stage to stop at instead of going on. `importUsers` never takes the action that leaves
 * this stage or any later one, and returns the session once it is idle there (or at the
 * first later stage it reaches on its own: a file without new columns skips
 * `custom-fields`, one without row errors passes `validation`).
 * - `upload`: return right after the upload, while the file is still being read.
 * - `custom-fields`: do not decide about new columns.
 * - `validation`: do not continue past the row errors.
 * - `review`: stop at the preview of creates, updates and unchanged rows.
 * - `group-assignment`: preview everything, commit nothing (a dry run).
 */
export type ImportStopPoint =
  | 'upload'
  | 'custom-fields'
  | 'validation'
  | 'review'
  | 'group-assignment';

export const IMPORT_STOP_POINTS: readonly ImportStopPoint[] = [
  'upload',
  'custom-fields',
  'validation',
  'review',
  'group-assignment',
];

export interface ImportUsersOptions {
  /**
   * Which NEW columns (headers that are not user fields yet) become custom fields of the
   * company, for all its users: `all`, `none` (default: they are ignored), or a list of
   * headers (matched case-insensitively; listed headers the file lacks are ignored).
   */
  newColumns?: 'all' | 'none' | readonly string[];
  /**
   * How stage 2 maps columns to existing fields (a required one included, when no header
   * names it): `map` takes a header to a field's key or label, e.g. `{ 'E-mail': 'Email' }`
   * (headers the file lacks are skipped); `suggestions: 'accept'` maps each other NEW column
   * to its best suggestion when that scores at least `minScore` (default 0.85) and the field
   * is still free; the default `'ignore'` leaves them to `newColumns`. The server remembers
   * the mappings for the company. A required field still unmapped ends in an ImportUsersError
   * (reason `refused`, code REQUIRED_FIELD_UNMAPPED) with the session left at stage 2.
   */
  columns?: ColumnsPolicy;
  /**
   * `stop` (default): when rows have errors, throw an ImportUsersError (reason `row-errors`)
   * and leave the session at VALIDATION, where its error report can be read. `skip`: import
   * the valid rows; the rows with errors are skipped.
   */
  onRowErrors?: 'skip' | 'stop';
  /** Stop at this stage instead of committing; see ImportStopPoint. By default, commit. */
  stopAt?: ImportStopPoint;
  /** A note kept with the import. */
  comment?: string;
  /**
   * `ADD_AND_UPDATE` (default): users the file lacks are left alone. `SYNC`: the active users
   * the file lacks are archived (a file without a valid row archives nobody).
   */
  mode?: ImportMode;
  /**
   * A SYNC that would archive more than the server's SYNC_ARCHIVE_LIMIT_PERCENT of the active
   * users stops with an ImportUsersError (reason `refused`, code ARCHIVE_LIMIT_EXCEEDED) at
   * REVIEW unless this is true.
   */
  acknowledgeArchive?: boolean;
  /** The file name sent with the upload; by default the path's or File's name, else users.xlsx. */
  fileName?: string;
  /** How many row errors an ImportUsersError carries at most (default 100). */
  maxErrors?: number;
  /**
   * Called with every state of the session seen: the answers to the upload and to each step
   * (busy at the next stage), and every update the subscription pushes.
   */
  onProgress?: (session: ImportSession) => void;
}

export interface ColumnsPolicy {
  map?: Readonly<Record<string, string>>;
  suggestions?: 'accept' | 'ignore';
  minScore?: number;
}

/**
 * Why importUsers stopped without finishing:
 * - `row-errors`: rows have errors and `onRowErrors` is `stop`; `errors` lists the first ones.
 * - `bad-file`: startImport refused the file (empty, not a workbook, too large).
 * - `rate-limited`: the token started too many imports in the last minute (RATE_LIMITED);
 *   nothing was uploaded, try again later.
 * - `failed`: the session ended FAILED while reading or importing; `code` is the failure's.
 * - `cancelled`: someone cancelled the session.
 * - `refused`: a step was refused with a typed error (e.g. WRONG_STAGE, NAME_TAKEN).
 * - `auth`: the token is missing, wrong or revoked (UNAUTHENTICATED), or not allowed (FORBIDDEN).
 * - `network`: the server could not be reached, or the connection failed.
 * - `http`: the server answered, but not as a GraphQL endpoint (e.g. 404: a wrong URL path);
 *   `code` is HTTP_<status>.
 * - `not-found`: resumeImport's session does not exist in the token's company.
 * - `graphql`: any other GraphQL error.
 * - `interrupted`: the updates ended before the import did.
 */
export type ImportUsersFailureReason =
  | 'row-errors'
  | 'bad-file'
  | 'rate-limited'
  | 'failed'
  | 'cancelled'
  | 'refused'
  | 'auth'
  | 'network'
  | 'http'
  | 'not-found'
  | 'graphql'
  | 'interrupted';

export class ImportUsersError extends Error {
  override name = 'ImportUsersError';
  readonly reason: ImportUsersFailureReason;
  /** The error's code: ROW_ERRORS, a typed error's or failure's code, or the GraphQL error code. */
  readonly code: string;
  /** The stage the import stopped at (UPLOAD when there is no session yet). */
  readonly stage: ImportStage;
  /** The session as last seen; null when the upload itself failed. */
  readonly session: ImportSession | null;
  /** With `row-errors`: the first row errors, in row order (at most `maxErrors`). */
  readonly errors: ImportRowErrorPartsFragment[];

  constructor(
    message: string,
    details: {
      reason: ImportUsersFailureReason;
      code: string;
      stage: ImportStage;
      session: ImportSession | null;
      errors?: ImportRowErrorPartsFragment[];
      cause?: unknown;
    },
  ) {
    super(message, { cause: details.cause });
    this.reason = details.reason;
    this.code = details.code;
    this.stage = details.stage;
    this.session = details.session;
    this.errors = details.errors ?? [];
  }
}

/** The stages in the order an import passes them. */
const STAGE_ORDER: Record<ImportStage, number> = {
  UPLOAD: 0,
  CUSTOM_FIELDS: 1,
  VALIDATION: 2,
  REVIEW: 3,
  GROUP_ASSIGNMENT: 4,
  COMPLETED: 5,
  CANCELLED: 5,
  FAILED: 5,
  REVERTED: 6,
};

const STOP_POINT_STAGE: Record<ImportStopPoint, ImportStage> = {
  upload: 'UPLOAD',
  'custom-fields': 'CUSTOM_FIELDS',
  validation: 'VALIDATION',
  review: 'REVIEW',
  'group-assignment': 'GROUP_ASSIGNMENT',
};

/**
 * Imports a file of users through the whole staged workflow: uploads it, decides about new
 * columns, handles row errors, reviews, assigns groups and commits, by the given policies.
 * Waits on the `importSessionUpdated` subscription between stages. Returns the final session
 * (COMPLETED, or the stage of `stopAt`); throws an ImportUsersError otherwise.
 *
 * `file` is a File or Blob, bytes (a Node Buffer is a Uint8Array), or on Node a file path.
 */
export async function importUsers(
  client: Client,
  file: Blob | Uint8Array | string,
  options: ImportUsersOptions = {},
): Promise<ImportSession> {
  const upload = await toUploadFile(file, options.fileName);
  const started = await client
    .mutation(StartImportDocument, {
      input: { file: upload, comment: options.comment ?? null, mode: options.mode ?? null },
    })
    .toPromise();
  const payload = requireData(started, 'UPLOAD', null).startImport;
  if (payload.__typename !== 'ImportSession') {
    throw new ImportUsersError(payload.message, {
      reason: payload.__typename === 'RateLimitedError' ? 'rate-limited' : 'bad-file',
      code: payload.code,
      stage: 'UPLOAD',
      session: null,
    });
  }
  options.onProgress?.(payload);
  if (options.stopAt === 'upload') return payload;
  return driveSession(client, payload, options);
}

/**
 * Continues an import session from where it stands (after the client or the server was
 * restarted, say) by the given policies, as importUsers would have: a session waiting for a
 * decision gets it, a busy one is followed, an ended one is returned (COMPLETED) or thrown.
 */
export async function resumeImport(
  client: Client,
  sessionId: string,
  options: ImportUsersOptions = {},
): Promise<ImportSession> {
  const result = await client
    .query(ImportSessionDocument, { id: sessionId }, { requestPolicy: 'network-only' })
    .toPromise();
  const session = requireData(result, 'UPLOAD', null).importSession;
  if (!session) {
    throw new ImportUsersError(`No import session ${sessionId} in your company.`, {
      reason: 'not-found',
      code: 'NOT_FOUND',
      stage: 'UPLOAD',
      session: null,
    });
  }
  options.onProgress?.(session);
  return driveSession(client, session, options);
}

async function driveSession(
  client: Client,
  started: ImportSession,
  options: ImportUsersOptions,
): Promise<ImportSession> {
  const stopStage = options.stopAt ? STOP_POINT_STAGE[options.stopAt] : null;
  let latest = started;
  // The stage last continued from: updates still showing it (or an earlier one) are stale.
  let leftStage: ImportStage = 'UPLOAD';
  for await (const session of followSession(client, started.id, () => latest)) {
    // An update sent before the last step's answer (the stage left, still idle) is old news:
    // neither reported nor acted on, so progress only moves forward.
    const stale =
      STAGE_ORDER[session.stage] < STAGE_ORDER[leftStage] ||
      (session.stage === leftStage && !session.busy);
    if (stale) continue;
    latest = session;
    options.onProgress?.(session);
    if (session.stage === 'COMPLETED') return session;
    if (session.stage === 'FAILED') {
      throw new ImportUsersError(session.failure?.message ?? 'The import failed.', {
        reason: 'failed',
        code: session.failure?.code ?? 'FAILED',
        stage: 'FAILED',
        session,
      });
    }
    if (session.stage === 'CANCELLED') {
      throw new ImportUsersError('The import was cancelled.', {
        reason: 'cancelled',
        code: 'CANCELLED',
        stage: 'CANCELLED',
        session,
      });
    }
    if (session.busy || STAGE_ORDER[session.stage] <= STAGE_ORDER[leftStage]) continue;

    if (session.stage === 'VALIDATION' && session.invalidRowCount > 0) {
      if ((options.onRowErrors ?? 'stop') === 'stop') {
        const errors = await firstRowErrors(client, session, options.maxErrors ?? 100);
        throw new ImportUsersError(
          `${session.invalidRowCount} of ${session.rowCount} rows have errors; nothing was imported.`,
          { reason: 'row-errors', code: 'ROW_ERRORS', stage: 'VALIDATION', session, errors },
        );
      }
    }
    if (stopStage && STAGE_ORDER[stopStage] <= STAGE_ORDER[session.stage]) return session;

    let payload: ImportSession | ErrorPartsFragment;
    if (session.stage === 'CUSTOM_FIELDS') {
      const fields = requireData(
        await client.query(UserFieldsDocument, {}, { requestPolicy: 'network-only' }).toPromise(),
        session.stage,
        session,
      ).userFields;
      const columns = chooseColumns(session, options, fields);
      const result = await client
        .mutation(ConfirmColumnsDocument, { input: { sessionId: session.id, columns } })
        .toPromise();
      payload = requireData(result, session.stage, session).confirmColumns;
    } else {
      const result = await client
        .mutation(ContinueImportDocument, {
          input: {
            sessionId: session.id,
            stage: session.stage,
            acknowledgeArchive: options.acknowledgeArchive ?? null,
          },
        })
        .toPromise();
      payload = requireData(result, session.stage, session).continueImport;
    }
    // Busy again (changed distribution rules recompute the group preview): wait for idle.
    if (payload.__typename !== 'ImportSession' && payload.code === 'SESSION_BUSY') continue;
    if (payload.__typename !== 'ImportSession') {
      throw new ImportUsersError(payload.message, {
        reason: 'refused',
        code: payload.code,
        stage: session.stage,
        session,
      });
    }
    options.onProgress?.(payload);
    leftStage = session.stage;
  }
  throw new ImportUsersError('The updates of the import ended before it did.', {
    reason: 'interrupted',
    code: 'INTERRUPTED',
    stage: latest.stage,
    session: latest,
  });
}

/**
 * Stage 2's decisions by the policies: `columns.map` first, then (if accepted) the best free
 * suggestion, then `newColumns` for what is left NEW; other NEW columns are ignored.
 */
function chooseColumns(
  session: ImportSession,
  options: ImportUsersOptions,
  fields: UserFieldsQuery['userFields'],
): ColumnDecisionInput[] {
  const policy = options.columns ?? {};
  const map = new Map(
    Object.entries(policy.map ?? {}).map(([header, field]) => [normalizeHeader(header), field]),
  );
  const fieldKeyOf = (field: string) =>
    fields.find((candidate) => candidate.key === field)?.key ??
    fields.find((candidate) => normalizeHeader(candidate.label) === normalizeHeader(field))?.key ??
    field;
  const added = new Set(chooseNewColumns(session, options.newColumns ?? 'none'));
  const decisions: ColumnDecisionInput[] = [];
  const used = new Set<string>();
  for (const column of session.columns) {
    const mapped = map.get(normalizeHeader(column.header));
    if (mapped !== undefined) {
      const fieldKey = fieldKeyOf(mapped);
      used.add(fieldKey);
      decisions.push({ header: column.header, action: 'MAP', fieldKey });
    } else if (column.status !== 'NEW' && column.field) {
      used.add(column.field.key);
    }
  }
  const minScore = policy.minScore ?? 0.85;
  for (const column of session.columns) {
    if (column.status !== 'NEW' || map.has(normalizeHeader(column.header))) continue;
    const suggestion =
      policy.suggestions === 'accept'
        ? column.suggestions.find(
            (candidate) => candidate.score >= minScore && !used.has(candidate.field.key),
          )
        : undefined;
    if (suggestion) {
      used.add(suggestion.field.key);
      decisions.push({ header: column.header, action: 'MAP', fieldKey: suggestion.field.key });
    } else {
      decisions.push({
        header: column.header,
        action: added.has(column.header) ? 'ADD' : 'IGNORE',
      });
    }
  }
  return decisions;
}

/** The headers of the session's NEW columns that the policy adds as custom fields. */
function chooseNewColumns(
  session: ImportSession,
  policy: 'all' | 'none' | readonly string[],
): string[] {
  const newHeaders = session.columns
    .filter((column) => column.status === 'NEW')
    .map((column) => column.header);
  if (policy === 'all') return newHeaders;
  if (policy === 'none') return [];
  const wanted = new Set(policy.map(normalizeHeader));
  return newHeaders.filter((header) => wanted.has(normalizeHeader(header)));
}

function normalizeHeader(header: string): string {
  return header.normalize('NFC').trim().toLowerCase();
}

/**
 * The session's updates as an async iterable. The subscription answers with the session as
 * it is now, then every change; if it ends or its connection breaks before the session ends
 * (a proxy closing the stream, a server restarting), it is opened again a few times (the
 * client's fetch decides how long to wait for a server that is down).
 */
export async function* followSession(
  client: Client,
  id: string,
  latest: () => ImportSession,
): AsyncGenerator<ImportSession> {
  let broken: OperationResult | null = null;
  for (let attempt = 0; attempt < 3; attempt++) {
    const updates = client.subscription(ImportSessionUpdatedDocument, { id });
    for await (const result of resultsOf(updates)) {
      if (result.error?.networkError && !result.data) {
        broken = result;
        break;
      }
      const session = requireData(result, latest().stage, latest()).importSessionUpdated;
      attempt = 0;
      broken = null;
      yield session;
    }
  }
  if (broken) requireData(broken, latest().stage, latest());
}

/** Every result of an urql source until it ends; unsubscribes when the loop stops early. */
async function* resultsOf<T>(source: Source<T>): AsyncGenerator<T> {
  const buffer: T[] = [];
  let ended = false;
  let wake: (() => void) | null = null;
  const subscription = pipe(
    source,
    onEnd(() => {
      ended = true;
      wake?.();
    }),
    subscribe((result: T) => {
      buffer.push(result);
      wake?.();
    }),
  );
  try {
    while (true) {
      if (buffer.length > 0) {
        yield buffer.shift() as T;
      } else if (ended) {
        return;
      } else {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = null;
      }
    }
  } finally {
    subscription.unsubscribe();
  }
}

async function firstRowErrors(
  client: Client,
  session: ImportSession,
  max: number,
): Promise<ImportRowErrorPartsFragment[]> {
  const errors: ImportRowErrorPartsFragment[] = [];
  let after: string | null = null;
  while (errors.length < max) {
    const result: OperationResult<ImportErrorsQuery> = await client
      .query(
        ImportErrorsDocument,
        { id: session.id, first: Math.min(100, max - errors.length), after },
        { requestPolicy: 'network-only' },
      )
      .toPromise();
    const connection = requireData(result, session.stage, session).importSession?.errors;
    if (!connection) break;
    errors.push(...connection.edges.map((edge) => edge.node));
    if (!connection.pageInfo.hasNextPage) break;
    after = connection.pageInfo.endCursor;
  }
  return errors;
}

async function toUploadFile(file: Blob | Uint8Array | string, fileName?: string): Promise<File> {
  if (typeof file === 'string') {
    // Node only: a file-backed Blob, so a large workbook is streamed, not read into memory.
    const [{ openAsBlob }, { basename }] = await Promise.all([
      import('node:fs'),
      import('node:path'),
    ]);
    return new File([await openAsBlob(file)], fileName ?? basename(file));
  }
  if (file instanceof Blob) {
    const name = fileName ?? (file instanceof File ? file.name : 'users.xlsx');
    return file instanceof File && file.name === name ? file : new File([file], name);
  }
  // Bytes are copied into the File; a Node Buffer's ArrayBuffer is never shared memory.
  return new File([file as Uint8Array<ArrayBuffer>], fileName ?? 'users.xlsx');
}

/** The result's data, or an ImportUsersError for its network or GraphQL error. */
export function requireData<T>(
  result: OperationResult<T>,
  stage: ImportStage,
  session: ImportSession | null,
): T {
  if (result.error) throw fromCombinedError(result.error, stage, session);
  if (!result.data) {
    throw new ImportUsersError('The server answered without data.', {
      reason: 'graphql',
      code: 'NO_DATA',
      stage,
      session,
    });
  }
  return result.data;
}

function fromCombinedError(
  error: CombinedError,
  stage: ImportStage,
  session: ImportSession | null,
): ImportUsersError {
  const status = error.response instanceof Response ? error.response.status : undefined;
  if (error.networkError && status !== undefined && error.graphQLErrors.length === 0) {
    // It was reached: a 404 is a wrong address, not a server that is down.
    return new ImportUsersError(
      `The server answered HTTP ${status}${error.response.statusText ? ` ${error.response.statusText}` : ''}, not GraphQL: check the URL (the server's address, or its /graphql).`,
      { reason: 'http', code: `HTTP_${status}`, stage, session, cause: error },
    );
  }
  if (error.networkError) {
    return new ImportUsersError(`The server could not be reached: ${networkMessage(error)}`, {
      reason: 'network',
      code: 'NETWORK_ERROR',
      stage,
      session,
      cause: error,
    });
  }
  const first = error.graphQLErrors[0];
  const code = typeof first?.extensions.code === 'string' ? first.extensions.code : 'GRAPHQL_ERROR';
  const auth = code === 'UNAUTHENTICATED' || code === 'FORBIDDEN';
  return new ImportUsersError(first?.message ?? error.message, {
    reason: auth ? 'auth' : 'graphql',
    code,
    stage,
    session,
    cause: error,
  });
}

function networkMessage(error: CombinedError): string {
  const networkError = error.networkError as
    | (Error & { cause?: { code?: string; message?: string } })
    | undefined;
  // Node's fetch says only "fetch failed"; the cause says why (ECONNREFUSED, ENOTFOUND, …).
  const cause = networkError?.cause?.code ?? networkError?.cause?.message;
  return cause ? `${networkError?.message} (${cause})` : (networkError?.message ?? error.message);
}
