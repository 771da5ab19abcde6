import { setTimeout as sleep } from 'node:timers/promises';
import {
  type BusyGap,
  driveImport,
  driveToValidation,
  graphql,
  type ImportTimings,
  longestBusyGap,
  type MutationPayload,
  mutate,
  type PreparedUpload,
  SessionFollower,
} from './import-run.js';
import { p95 } from './stats.js';
import { validEmail } from './workbook.js';

/**
 * The cases run after the normal import and its re-import, on the same server and company
 * (so their times compare with that import's): a SYNC re-import and two reverts (issue #29),
 * and row fixes at VALIDATION (issue #28). Each behind its own flag of `npm run bench`.
 */

/** Targets of the issues, printed beside the figures. */
export const TARGETS = {
  /** A SYNC's commit and a revert, each at most this many times the import's commit. */
  syncOrRevertOverCommit: 1.5,
  /** p95 of one updateImportRows fixing one row, until the session is idle again. */
  rowFixP95Ms: 200,
  /** replaceInColumn over the whole column, at most this many times the validation step. */
  replaceOverValidation: 2,
} as const;

/** The sequential one-row fixes measured (each a different row). */
export const ROW_FIXES = 30;
/** The columns the fixes edit. */
const EMAIL_HEADER = 'Email';
const USER_NAME_HEADER = 'userName';
/**
 * The replace changes the email domain of every row (the contractors' too), but only in case:
 * emails match ignoring case, so each row still finds its user by email and by reference, and
 * the file revalidated is as valid as the file validated, which its time is compared with.
 * Another domain would leave every row clashing with the user of its reference.
 */
const REPLACE_FIND = 'example.com';
const REPLACE_WITH = 'Example.com';
const IDLE_POLL_MS = 10;

const REVERT_IMPORT = `mutation($id: ID!) { revertImport(input: { sessionId: $id }) {
  __typename ... on ImportSession { id stage busy } ... on Error { code message } } }`;
const REVERT_RESULT = `query($id: ID!) { importSession(id: $id) {
  revertResult { removed updated unarchived rearchived conflicts } } }`;
const ROW_NUMBERS = `query($id: ID!, $first: Int!, $withErrors: Boolean!) { importSession(id: $id) {
  rows(first: $first, filter: { withErrors: $withErrors }) { edges { node { rowNumber } } } } }`;
const UPDATE_ROWS = `mutation($input: UpdateImportRowsInput!) { updateImportRows(input: $input) {
  __typename ... on ImportSession { id busy invalidRowCount } ... on Error { code message } } }`;
const REPLACE_IN_COLUMN = `mutation($input: ReplaceInColumnInput!) { replaceInColumn(input: $input) {
  __typename ... on ImportSession { id busy invalidRowCount edits { kind rowCount } }
  ... on Error { code message } } }`;
const SESSION_BUSY = 'query($id: ID!) { importSession(id: $id) { busy } }';
const CANCEL_IMPORT = `mutation($id: ID!) { cancelImport(input: { sessionId: $id }) {
  __typename ... on ImportSession { id stage } ... on Error { code message } } }`;

interface RevertResult {
  removed: number;
  updated: number;
  unarchived: number;
  rearchived: number;
  conflicts: number;
}

export interface RevertTimings {
  /** revertImport sent → the REVERTED event. */
  totalMs: number;
  /** The longest time without an event while the revert was busy. */
  busyGapMax: BusyGap;
  result: RevertResult | null;
}

/**
 * Reverts a COMPLETED import and follows it to REVERTED. The subscription starts after the
 * mutation's answer: a follower of a COMPLETED session that is not busy hears it once and ends.
 */
async function revertAndFollow(
  url: string,
  token: string,
  sessionId: string,
  timeoutMs: number,
): Promise<RevertTimings> {
  const startedAt = performance.now();
  const deadline = startedAt + timeoutMs;
  await mutate(url, token, REVERT_IMPORT, { id: sessionId });
  const follower = new SessionFollower(url, token, sessionId);
  try {
    const reverted = await follower.waitFor(
      'the revert',
      (session) => {
        // A revert that finds conflicts in the background ends COMPLETED, idle, with a failure.
        if (session.stage === 'COMPLETED' && !session.busy) {
          throw new Error(`the revert stopped: ${JSON.stringify(session.failure)}`);
        }
        return session.stage === 'REVERTED';
      },
      deadline,
    );
    const totalMs = reverted.at - startedAt;
    const data = await graphql<{ importSession: { revertResult: RevertResult | null } }>(
      url,
      token,
      REVERT_RESULT,
      { id: sessionId },
    );
    return {
      totalMs,
      busyGapMax: longestBusyGap(follower.events, startedAt, () => true),
      result: data.importSession.revertResult,
    };
  } finally {
    follower.close();
  }
}

export interface SyncRevertResult {
  /** The SYNC re-import of 90 % of the users, which archives the other 10 %. */
  sync: ImportTimings;
  /** Reverting the SYNC: its archived users ACTIVE again. */
  revertSync: RevertTimings;
  /** Reverting the first import: every user it created removed. */
  revertFirst: RevertTimings;
}

/**
 * Issue #29. After the first import (N rows, all created) and its unchanged re-import: a SYNC
 * of 90 % of the users (acknowledging the archive limit if it asks), a revert of that SYNC,
 * then a revert of the first import. The revert measured against the commit is the first
 * import's: it undoes as many users as that commit created, which is what "reverting a
 * 100,000-row import" costs; reverting the SYNC first (it changed only the 10 % it archived)
 * puts those users back as the first import left them, so that revert meets no conflict.
 */
export async function benchmarkSyncAndRevert(options: {
  url: string;
  token: string;
  firstSessionId: string;
  syncUpload: PreparedUpload;
  timeoutMs: number;
  log(line: string): void;
}): Promise<SyncRevertResult> {
  const { url, token } = options;
  const sync = await driveImport({
    url,
    token,
    upload: options.syncUpload,
    timeoutMs: options.timeoutMs,
  });
  options.log(
    `  SYNC re-import: ${Math.round(sync.totalMs)} ms, commit ${Math.round(sync.stages.commitMs)} ms, ${JSON.stringify(sync.result)}${sync.archiveWarning ? `, archive warning acknowledged (${JSON.stringify(sync.archiveWarning)})` : ''}`,
  );
  const revertSync = await revertAndFollow(url, token, sync.sessionId, options.timeoutMs);
  options.log(
    `  revert of the SYNC: ${Math.round(revertSync.totalMs)} ms, ${JSON.stringify(revertSync.result)}`,
  );
  const revertFirst = await revertAndFollow(url, token, options.firstSessionId, options.timeoutMs);
  options.log(
    `  revert of the first import: ${Math.round(revertFirst.totalMs)} ms, ${JSON.stringify(revertFirst.result)}`,
  );
  return { sync, revertSync, revertFirst };
}

export interface RowFixResult {
  rowCount: number;
  /** The session's own read and validation step (confirm or read end → VALIDATION idle). */
  readMs: number;
  validationMs: number;
  invalidBefore: number;
  /** How many of the fixed rows had an error (the others, when too few have, are valid rows). */
  fixedInvalidRows: number;
  invalidAfterFixes: number;
  /** Each updateImportRows of one row: sent → answered with the session idle. */
  fixMs: number[];
  fixP95Ms: number;
  /** replaceInColumn over the Email column: sent → answered with the session idle. */
  replaceMs: number;
  replacedRows: number;
  /** Rows with errors after the replace: as many as after the fixes. */
  invalidAfterReplace: number;
}

/** The session's `busy` until it is false: an edit is done when the session is idle again. */
async function untilIdle(url: string, token: string, id: string, deadline: number) {
  for (;;) {
    const data = await graphql<{ importSession: { busy: boolean } }>(url, token, SESSION_BUSY, {
      id,
    });
    if (!data.importSession.busy) return;
    if (performance.now() > deadline) throw new Error('timed out waiting for an idle session');
    await sleep(IDLE_POLL_MS);
  }
}

/**
 * Issue #28. A file whose rows have a bad email one in a hundred, driven to VALIDATION; then
 * ROW_FIXES sequential updateImportRows, each giving one row a valid email, and one
 * replaceInColumn over every row's email domain. The session is cancelled afterwards.
 */
export async function benchmarkRowFixes(options: {
  url: string;
  token: string;
  upload: PreparedUpload;
  timeoutMs: number;
  log(line: string): void;
}): Promise<RowFixResult> {
  const { url, token } = options;
  const validation = await driveToValidation({
    url,
    token,
    upload: options.upload,
    timeoutMs: options.timeoutMs,
  });
  // The edits answer with the session; nothing more is needed from the subscription.
  validation.follower.close();
  const { id, deadline, validated } = validation;
  try {
    const rowNumbers = async (withErrors: boolean, first: number) => {
      const data = await graphql<{
        importSession: { rows: { edges: { node: { rowNumber: number } }[] } };
      }>(url, token, ROW_NUMBERS, { id, first, withErrors });
      return data.importSession.rows.edges.map((edge) => edge.node.rowNumber);
    };
    const invalid = await rowNumbers(true, ROW_FIXES);
    // A small file has fewer bad rows than fixes: the rest change a valid row's userName.
    const valid =
      invalid.length < ROW_FIXES ? await rowNumbers(false, ROW_FIXES - invalid.length) : [];
    const fixMs: number[] = [];
    let invalidAfterFixes = validated.session.invalidRowCount;
    // Row r of the sheet is row r − 2 of the generator (row 1 holds the headers). The email
    // given is the row's own, with its "@" back: the reference's user (created by the first
    // import) keeps it, where another email would make the reference clash.
    const edits = [
      ...invalid.map((rowNumber) => ({
        rowNumber,
        values: [{ header: EMAIL_HEADER, value: validEmail(rowNumber - 2) }],
      })),
      ...valid.map((rowNumber) => ({
        rowNumber,
        values: [{ header: USER_NAME_HEADER, value: `Fixed ${rowNumber}` }],
      })),
    ];
    for (const edit of edits) {
      const sentAt = performance.now();
      const session = await mutate<MutationPayload & { busy: boolean; invalidRowCount: number }>(
        url,
        token,
        UPDATE_ROWS,
        { input: { sessionId: id, rows: [edit] } },
      );
      if (session.busy) await untilIdle(url, token, id, deadline);
      fixMs.push(performance.now() - sentAt);
      invalidAfterFixes = session.invalidRowCount;
    }
    if (invalidAfterFixes !== validated.session.invalidRowCount - invalid.length) {
      options.log(
        `  warning: ${validated.session.invalidRowCount} invalid rows, ${invalid.length} fixed, ${invalidAfterFixes} invalid after`,
      );
    }
    const replaceFrom = performance.now();
    const replaced = await mutate<
      MutationPayload & {
        busy: boolean;
        invalidRowCount: number;
        edits: { kind: string; rowCount: number }[];
      }
    >(
      url,
      token,
      REPLACE_IN_COLUMN,
      { input: { sessionId: id, header: EMAIL_HEADER, find: REPLACE_FIND, replace: REPLACE_WITH } },
      options.timeoutMs,
    );
    if (replaced.busy) await untilIdle(url, token, id, deadline);
    const replaceMs = performance.now() - replaceFrom;
    const result: RowFixResult = {
      rowCount: validated.session.rowCount,
      readMs: validation.read.at - validation.uploadedAt,
      validationMs: validated.at - validation.validationFrom,
      invalidBefore: validated.session.invalidRowCount,
      fixedInvalidRows: invalid.length,
      invalidAfterFixes,
      fixMs,
      fixP95Ms: p95(fixMs),
      replaceMs,
      replacedRows: replaced.edits.at(-1)?.rowCount ?? 0,
      invalidAfterReplace: replaced.invalidRowCount,
    };
    options.log(
      `  row fixes: validation ${Math.round(result.validationMs)} ms, ${fixMs.length} one-row fixes p95 ${Math.round(result.fixP95Ms)} ms, replaceInColumn ${Math.round(replaceMs)} ms (${result.replacedRows} rows)`,
    );
    return result;
  } finally {
    // The open session would otherwise stay at VALIDATION beside the cases that follow.
    await mutate(url, token, CANCEL_IMPORT, { id }).catch((error: unknown) =>
      options.log(`  cancelling the row-fix session failed: ${String(error)}`),
    );
  }
}
