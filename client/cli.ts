#!/usr/bin/env node
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { Client } from '@urql/core';
import { createMusterClient } from './create-client.js';
import {
  ImportGroupAssignmentDocument,
  type ImportGroupAssignmentQuery,
  ImportReportsDocument,
  ImportSessionDocument,
  ImportTemplateDocument,
} from './gql/graphql.js';
import {
  IMPORT_STOP_POINTS,
  type ImportSession,
  type ImportStopPoint,
  ImportUsersError,
  type ImportUsersFailureReason,
  type ImportUsersOptions,
  importUsers,
  requireData,
  resumeImport,
} from './import-users.js';
import { createProgressDisplay, describeWork } from './progress-display.js';
import { RevertConflictsError, revertImport } from './revert-import.js';

const HELP = `Usage: muster <command> [options]

Commands:
  import <file.xlsx>    Import users from a file through every stage of the import
  resume <sessionId>    Continue an import from where it stands (after a restart of the
                        server or of this command), with the policies it was started with
  template              Download the .xlsx template with the company's current columns
  status <sessionId>    Show the stage and counts of an import session
  revert <sessionId>    Undo a completed import (within the server's IMPORT_UNDO_DAYS)

Connection (every command):
  --url <url>           The Muster server, e.g. https://muster.example.com (env MUSTER_URL)
  --token <token>       An API token (env MUSTER_TOKEN); importing needs an ADMIN token
  A server that cannot be reached is tried again, waiting longer each time, for up to
  MUSTER_RETRY_SECONDS (default 60) before the command gives up with exit code 6.

Import:
  --new-columns <all|none|a,b>
                        Which new columns become custom fields of the company, for all
                        its users (default none: they are ignored). They are added when
                        the import passes the custom-fields stage, before its rows are
                        validated: an import that then stops for row errors keeps them.
                        To check the rows first, use --new-columns none --stop-at review.
  --map <header=field>  Map a column to an existing field (key or label), e.g.
                        --map "E-mail=Email"; repeat for more columns. Remembered
                        for the company
  --accept-suggestions  Map other unmatched columns to their best suggested field
                        (score 0.85 or more) when that field is still free
  --on-row-errors <stop|skip>
                        stop (default): stop at validation, nothing imported, exit 3;
                        skip: import the valid rows and skip those with errors
  --stop-at <stage>     Stop at upload, custom-fields, validation, review or
                        group-assignment instead of importing (nothing is committed)
  --comment <text>      A note kept with the import
  --sync                Also archive the company's active users the file does not contain
                        (a file without a valid row archives nobody)
  --acknowledge-archive Let a --sync archive more than the server's
                        SYNC_ARCHIVE_LIMIT_PERCENT of the active users (else exit 8)
  --error-report <file> Save the error report (.xlsx: rows with errors, bad cells marked)
  --json                Print the session (or the error) as JSON on stdout
  The session's ID is printed first (on stderr), as soon as the file is uploaded; the
  policies above are kept (in ~/.local/state/muster) for \`muster resume\`.

Resume:
  The import's own policies, unless given again: --new-columns, --on-row-errors,
  --stop-at, --error-report, --json as for import.

Template:
  -o, --output <file>   Where to save it (default: its own name, in this directory)

Status:
  --json                Print the session as JSON on stdout

With --json, every command reports an error as {"error": {reason, code, message, …}} on
stdout, with the exit code below.

Revert:
  --force               Revert the users not changed since the import and leave the
                        others as they are (else a change since refuses it all: exit 8)
  --json                Print the session (or the error) as JSON on stdout

Exit codes:
  0 imported, or stopped where asked     4 bad file (refused or failed to read)
  1 other error                          5 token missing, wrong or not allowed
  2 usage                                6 server unreachable
  3 rows have errors (stopped)           7 rate limited: try again later
                                         8 needs confirmation: a --sync past the archive
                                           limit, a revert of users changed since
`;

/** How long a command keeps trying a server it cannot reach (MUSTER_RETRY_SECONDS). */
const DEFAULT_RETRY_SECONDS = 60;

const EXIT = {
  ok: 0,
  other: 1,
  usage: 2,
  rowErrors: 3,
  badFile: 4,
  auth: 5,
  unreachable: 6,
  rateLimited: 7,
  confirm: 8,
};

const EXIT_BY_REASON: Record<ImportUsersFailureReason, number> = {
  'row-errors': EXIT.rowErrors,
  'bad-file': EXIT.badFile,
  'rate-limited': EXIT.rateLimited,
  failed: EXIT.badFile,
  auth: EXIT.auth,
  network: EXIT.unreachable,
  http: EXIT.other,
  'not-found': EXIT.other,
  cancelled: EXIT.other,
  refused: EXIT.other,
  graphql: EXIT.other,
  interrupted: EXIT.other,
};

const OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  'new-columns': { type: 'string' },
  map: { type: 'string', multiple: true },
  'accept-suggestions': { type: 'boolean' },
  'on-row-errors': { type: 'string' },
  'stop-at': { type: 'string' },
  comment: { type: 'string' },
  'error-report': { type: 'string' },
  sync: { type: 'boolean' },
  'acknowledge-archive': { type: 'boolean' },
  force: { type: 'boolean' },
  output: { type: 'string', short: 'o' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values'];

/** The options each command takes, besides --url, --token and --help. */
const COMMAND_OPTIONS: Record<string, (keyof Values)[]> = {
  import: [
    'new-columns',
    'map',
    'accept-suggestions',
    'on-row-errors',
    'stop-at',
    'comment',
    'error-report',
    'sync',
    'acknowledge-archive',
    'json',
  ],
  resume: ['new-columns', 'on-row-errors', 'stop-at', 'error-report', 'json'],
  template: ['output'],
  status: ['json'],
  revert: ['force', 'json'],
};

/** How many row errors the CLI lists when it stops for them. */
const LISTED_ERRORS = 20;

class UsageError extends Error {}

/** Errors already printed as JSON on stdout (once is enough). */
const reportedAsJson = new WeakSet<Error>();

const out = (text: string) => process.stdout.write(`${text}\n`);
const err = (text: string) => process.stderr.write(`${text}\n`);

async function main(argv: string[]): Promise<number> {
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: OPTIONS,
      allowPositionals: true,
      strict: true,
    }));
  } catch (error) {
    return usageError((error as Error).message, argv.includes('--json'));
  }
  if (values.version) {
    out(await packageVersion());
    return EXIT.ok;
  }
  const [command, ...operands] = positionals;
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.ok;
  }
  if (!command) {
    process.stderr.write(HELP);
    return EXIT.usage;
  }
  try {
    const allowed = COMMAND_OPTIONS[command];
    if (!allowed) throw new UsageError(`unknown command "${command}"`);
    for (const [name, value] of Object.entries(values)) {
      const option = name as keyof Values;
      if (
        value !== undefined &&
        !['url', 'token', 'help'].includes(name) &&
        !allowed.includes(option)
      ) {
        throw new UsageError(`${command} does not take --${name}`);
      }
    }
    if (command === 'import') return await importCommand(values, operands);
    if (command === 'resume') return await resumeCommand(values, operands);
    if (command === 'template') return await templateCommand(values, operands);
    if (command === 'revert') return await revertCommand(values, operands);
    return await statusCommand(values, operands);
  } catch (error) {
    if (error instanceof UsageError) return usageError(error.message, values.json);
    if (error instanceof ImportUsersError) {
      if (values.json && !reportedAsJson.has(error))
        out(JSON.stringify({ error: errorJson(error) }, null, 2));
      err(`muster: ${error.message}${error.code ? ` (${error.code})` : ''}`);
      if (error.reason === 'network') {
        err(`muster: is ${values.url ?? process.env.MUSTER_URL} the right address?`);
      }
      if (error.session && error.reason !== 'row-errors' && !isEnded(error.session)) {
        err(
          `muster: the import waits at ${error.session.stage}; continue it with: muster resume ${error.session.id}`,
        );
      }
      if (error.code === 'ARCHIVE_LIMIT_EXCEEDED' || error.code === 'REVERT_CONFLICT') {
        return EXIT.confirm;
      }
      return EXIT_BY_REASON[error.reason];
    }
    if (values.json) {
      out(
        JSON.stringify(
          { error: { reason: 'other', code: 'ERROR', message: (error as Error).message } },
          null,
          2,
        ),
      );
    }
    err(`muster: ${(error as Error).message}`);
    return EXIT.other;
  }
}

function isEnded(session: ImportSession): boolean {
  return ['COMPLETED', 'CANCELLED', 'FAILED'].includes(session.stage);
}

function usageError(message: string, json?: boolean): number {
  if (json) out(JSON.stringify({ error: { reason: 'usage', code: 'USAGE', message } }, null, 2));
  err(`muster: ${message}\nRun "muster --help" for usage.`);
  return EXIT.usage;
}

function connect(values: Values): { client: Client; url: string } {
  const url = values.url ?? process.env.MUSTER_URL;
  const token = values.token ?? process.env.MUSTER_TOKEN;
  if (!url) throw new UsageError('no server: pass --url or set MUSTER_URL');
  if (!token) throw new UsageError('no API token: pass --token or set MUSTER_TOKEN');
  let endpoint: URL;
  try {
    endpoint = new URL(url);
  } catch {
    throw new UsageError(`--url is not a URL: ${url}`);
  }
  if (!/^https?:$/.test(endpoint.protocol)) throw new UsageError('--url must be http(s)');
  // The server's own address is enough: the API is at /graphql.
  if (endpoint.pathname === '/' || endpoint.pathname === '') endpoint.pathname = '/graphql';
  const retrySeconds = Number(process.env.MUSTER_RETRY_SECONDS ?? DEFAULT_RETRY_SECONDS);
  const client = createMusterClient({
    url: endpoint.href,
    token,
    fetch: retryingFetch(Number.isFinite(retrySeconds) ? retrySeconds * 1000 : 0),
  });
  return { client, url: endpoint.href };
}

/** Failures that mean the request never reached a server: safe to send again. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * fetch, trying again while the server cannot be reached (a restart, a deploy), waiting
 * 0.25 s, then twice as long each time up to 5 s, for at most `budgetMs` in all. Only
 * requests that were never received are sent again, so no mutation runs twice.
 */
function retryingFetch(budgetMs: number): typeof globalThis.fetch {
  return async (input, init) => {
    const deadline = Date.now() + budgetMs;
    for (let delay = 250; ; delay = Math.min(delay * 2, 5_000)) {
      try {
        return await fetch(input, init);
      } catch (error) {
        const code = (error as { cause?: { code?: string } }).cause?.code;
        const aborted = init?.signal?.aborted ?? false;
        if (aborted || !code || !NOT_SENT.has(code) || Date.now() + delay > deadline) throw error;
        await sleep(delay);
      }
    }
  };
}

/** Where an import's policies are kept for `muster resume` (XDG state directory). */
function policiesPath(sessionId: string): string {
  const state = process.env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  return join(state, 'muster', 'sessions', `${encodeURIComponent(sessionId)}.json`);
}

interface KeptPolicies {
  'new-columns'?: string;
  'on-row-errors'?: string;
  'stop-at'?: string;
  'error-report'?: string;
}

async function keepPolicies(sessionId: string, values: Values): Promise<void> {
  const kept: KeptPolicies = {
    'new-columns': values['new-columns'],
    'on-row-errors': values['on-row-errors'],
    'stop-at': values['stop-at'],
    'error-report': values['error-report'] && resolve(values['error-report']),
  };
  const path = policiesPath(sessionId);
  // Best effort: an import goes on without it; resume then takes the defaults.
  await mkdir(join(path, '..'), { recursive: true })
    .then(() => writeFile(path, JSON.stringify(kept)))
    .catch(() => {});
}

async function keptPolicies(sessionId: string): Promise<KeptPolicies> {
  const text = await readFile(policiesPath(sessionId), 'utf8').catch(() => null);
  return text ? (JSON.parse(text) as KeptPolicies) : {};
}

function oneOperand(operands: string[], what: string): string {
  const [operand, ...extra] = operands;
  if (!operand) throw new UsageError(`missing ${what}`);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  return operand;
}

function importPolicies(values: Values): ImportUsersOptions {
  const newColumns = values['new-columns'] ?? 'none';
  const onRowErrors = values['on-row-errors'] ?? 'stop';
  const stopAt = values['stop-at'];
  if (onRowErrors !== 'stop' && onRowErrors !== 'skip') {
    throw new UsageError('--on-row-errors must be stop or skip');
  }
  if (stopAt !== undefined && !IMPORT_STOP_POINTS.includes(stopAt as ImportStopPoint)) {
    throw new UsageError(`--stop-at must be one of ${IMPORT_STOP_POINTS.join(', ')}`);
  }
  const headers = newColumns
    .split(',')
    .map((header) => header.trim())
    .filter(Boolean);
  if (headers.length === 0) throw new UsageError('--new-columns needs all, none or headers');
  const map: Record<string, string> = {};
  for (const mapping of values.map ?? []) {
    const split = mapping.lastIndexOf('=');
    const header = mapping.slice(0, split).trim();
    const field = mapping.slice(split + 1).trim();
    if (split < 0 || !header || !field) {
      throw new UsageError(`--map needs "header=field", not "${mapping}"`);
    }
    map[header] = field;
  }
  return {
    newColumns: newColumns === 'all' || newColumns === 'none' ? newColumns : headers,
    columns: { map, suggestions: values['accept-suggestions'] ? 'accept' : 'ignore' },
    onRowErrors,
    stopAt: stopAt as ImportStopPoint | undefined,
    comment: values.comment,
    mode: values.sync ? 'SYNC' : 'ADD_AND_UPDATE',
    acknowledgeArchive: values['acknowledge-archive'] ?? false,
    maxErrors: LISTED_ERRORS,
  };
}

async function importCommand(values: Values, operands: string[]): Promise<number> {
  const path = oneOperand(operands, 'the file to import');
  const policies = importPolicies(values);
  const file = await stat(path).catch(() => null);
  if (!file?.isFile()) throw new UsageError(`no such file: ${path}`);
  const { client, url } = connect(values);
  let announced = false;
  const onSession = (session: ImportSession) => {
    if (announced) return;
    announced = true;
    err(`Session: ${session.id}`);
    void keepPolicies(session.id, values);
  };
  return followImport(client, url, values, (onProgress) =>
    importUsers(client, path, {
      ...policies,
      onProgress: (session) => {
        onSession(session);
        onProgress(session);
      },
    }),
  );
}

async function resumeCommand(values: Values, operands: string[]): Promise<number> {
  const id = oneOperand(operands, 'the session ID');
  const kept = await keptPolicies(id);
  const merged: Values = {
    ...values,
    'new-columns': values['new-columns'] ?? kept['new-columns'],
    'on-row-errors': values['on-row-errors'] ?? kept['on-row-errors'],
    'stop-at': values['stop-at'] ?? kept['stop-at'],
    'error-report': values['error-report'] ?? kept['error-report'],
  };
  const policies = importPolicies(merged);
  const { client, url } = connect(values);
  err(`Session: ${id}`);
  return followImport(client, url, merged, (onProgress) =>
    resumeImport(client, id, { ...policies, onProgress }),
  );
}

/** Runs an import (new or resumed) with the progress display, and reports how it ended. */
async function followImport(
  client: Client,
  url: string,
  values: Values,
  run: (onProgress: (session: ImportSession) => void) => Promise<ImportSession>,
): Promise<number> {
  const display = createProgressDisplay(process.stderr);
  let session: ImportSession;
  try {
    session = await run(display.update);
  } catch (error) {
    display.finish();
    if (!(error instanceof ImportUsersError)) throw error;
    if (values.json) {
      out(JSON.stringify({ error: errorJson(error) }, null, 2));
      reportedAsJson.add(error);
    }
    if (error.reason === 'network') err(`muster: is ${url} the right address?`);
    if (error.reason === 'row-errors' && error.session) {
      err(`muster: ${error.message}`);
      reportRowErrors(error);
      if (values['error-report'])
        await saveErrorReport(client, error.session, values['error-report']);
      return EXIT.rowErrors;
    }
    throw error;
  }
  display.finish();
  if (values['error-report']) await saveErrorReport(client, session, values['error-report']);
  const groups = ['GROUP_ASSIGNMENT', 'COMPLETED'].includes(session.stage)
    ? await groupAssignment(client, session)
    : null;
  if (values.json) {
    out(JSON.stringify({ session, groupAssignment: groups }, null, 2));
  } else {
    printSummary(session, groups);
  }
  return EXIT.ok;
}

function errorJson(error: ImportUsersError) {
  const { reason, code, message, stage, session, errors } = error;
  return { reason, code, message, stage, session, errors };
}

function reportRowErrors(error: ImportUsersError): void {
  const session = error.session as ImportSession;
  for (const rowError of error.errors) {
    const where = rowError.column ? `, ${rowError.column}` : '';
    const value = rowError.value ? ` ${JSON.stringify(rowError.value)}` : '';
    err(`  row ${rowError.rowNumber}${where}${value}: ${rowError.code}, ${rowError.message}`);
  }
  if (session.invalidRowCount > error.errors.length) {
    err(`  … errors in ${session.invalidRowCount} rows in all (see --error-report)`);
  }
  err(
    `The session ${session.id} waits at VALIDATION. Fix the file and import it again, or use --on-row-errors skip to import the valid rows.`,
  );
}

type GroupCounts = NonNullable<ImportGroupAssignmentQuery['importSession']>['groupAssignment'];

async function groupAssignment(client: Client, session: ImportSession): Promise<GroupCounts> {
  const result = await client
    .query(ImportGroupAssignmentDocument, { id: session.id }, { requestPolicy: 'network-only' })
    .toPromise();
  return requireData(result, session.stage, session).importSession?.groupAssignment ?? [];
}

const count = new Intl.NumberFormat('en-US');

function table(rows: [string, number][]): string[] {
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(
    ([label, value]) => `  ${label.padEnd(width)}  ${count.format(value).padStart(7)}`,
  );
}

function printSummary(session: ImportSession, groups: GroupCounts | null): void {
  const rows = `${count.format(session.rowCount)} rows, ${count.format(session.invalidRowCount)} with errors`;
  if (session.stage === 'COMPLETED' && session.result) {
    out(`Imported ${session.fileName} (${rows}).`);
    const { created, updated, unchanged, skipped, archived, restored } = session.result;
    for (const line of table([
      ['created', created],
      ['updated', updated],
      ['unchanged', unchanged],
      ['skipped', skipped],
      ...(session.mode === 'SYNC' || archived > 0
        ? [['archived', archived] as [string, number]]
        : []),
      ...(restored > 0 ? [['restored', restored] as [string, number]] : []),
    ])) {
      out(line);
    }
  } else {
    out(`Stopped at ${session.stage} as asked; nothing was imported (${rows}).`);
    const newColumns = session.columns.filter((column) => column.status === 'NEW');
    if (newColumns.length > 0) {
      out(`New columns: ${newColumns.map((column) => column.header).join(', ')}`);
    }
  }
  if (groups && groups.length > 0) {
    out(session.stage === 'COMPLETED' ? 'Users per training group:' : 'Training groups (preview):');
    for (const line of table(
      groups.map((group) => [group.trainingGroup?.name ?? '(no group)', group.userCount]),
    )) {
      out(line);
    }
  }
  out(`Session: ${session.id}`);
}

async function saveErrorReport(client: Client, session: ImportSession, path: string) {
  const result = await client
    .query(ImportReportsDocument, { id: session.id }, { requestPolicy: 'network-only' })
    .toPromise();
  const report = requireData(result, session.stage, session).importSession?.errorReport;
  if (!report) {
    err('No row errors: no error report to save.');
    return;
  }
  await download(report.url, path);
  err(`Error report saved to ${path}`);
}

/** GETs a signed download link (no token needed) into a file. */
async function download(url: string, path: string): Promise<void> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`could not download ${url}: HTTP ${response.status}`);
  await writeFile(path, Buffer.from(await response.arrayBuffer()));
}

async function templateCommand(values: Values, operands: string[]): Promise<number> {
  if (operands.length > 0) throw new UsageError(`unexpected argument "${operands[0]}"`);
  const { client } = connect(values);
  const result = await client
    .query(ImportTemplateDocument, {}, { requestPolicy: 'network-only' })
    .toPromise();
  const template = requireData(result, 'UPLOAD', null).importTemplate;
  const path = resolve(values.output ?? basename(template.fileName));
  await download(template.url, path);
  out(`Saved the import template to ${path}`);
  return EXIT.ok;
}

async function statusCommand(values: Values, operands: string[]): Promise<number> {
  const id = oneOperand(operands, 'the session ID');
  const { client } = connect(values);
  const result = await client
    .query(ImportSessionDocument, { id }, { requestPolicy: 'network-only' })
    .toPromise();
  const session = requireData(result, 'UPLOAD', null).importSession;
  if (!session) {
    throw new ImportUsersError(`No import session ${id} in your company.`, {
      reason: 'not-found',
      code: 'NOT_FOUND',
      stage: 'UPLOAD',
      session: null,
    });
  }
  if (values.json) {
    out(JSON.stringify(session, null, 2));
    return EXIT.ok;
  }
  const work = describeWork(session);
  const lines: [string, string][] = [
    ['Session', session.id],
    ['File', `${session.fileName} (${count.format(session.fileSize)} bytes)`],
    ['Uploaded', session.createdAt],
    ['Stage', work ? `${session.stage} (${work})` : session.stage],
    [
      'Rows',
      `${count.format(session.rowCount)}: ${count.format(session.validRowCount)} valid, ${count.format(session.invalidRowCount)} with errors`,
    ],
  ];
  if (session.comment) lines.push(['Comment', session.comment]);
  if (session.result) {
    const { created, updated, unchanged, skipped } = session.result;
    lines.push([
      'Result',
      `${count.format(created)} created, ${count.format(updated)} updated, ${count.format(unchanged)} unchanged, ${count.format(skipped)} skipped`,
    ]);
  }
  if (session.revertResult) {
    const { removed, updated, unarchived, rearchived, conflicts } = session.revertResult;
    lines.push([
      'Reverted',
      `${count.format(removed)} removed, ${count.format(updated)} updated back, ${count.format(unarchived)} unarchived, ${count.format(rearchived)} archived again, ${count.format(conflicts)} left (changed since)`,
    ]);
  }
  if (session.failure)
    lines.push(['Failure', `${session.failure.code}: ${session.failure.message}`]);
  for (const [label, value] of lines) out(`${label.padEnd(9)} ${value}`);
  return EXIT.ok;
}

async function revertCommand(values: Values, operands: string[]): Promise<number> {
  const id = oneOperand(operands, 'the session ID');
  const { client } = connect(values);
  const display = createProgressDisplay(process.stderr);
  let session: ImportSession;
  try {
    session = await revertImport(client, id, {
      force: values.force ?? false,
      onProgress: display.update,
    });
  } catch (error) {
    display.finish();
    if (values.json && error instanceof ImportUsersError) {
      out(JSON.stringify({ error: errorJson(error) }, null, 2));
    }
    if (error instanceof RevertConflictsError) {
      err(`muster: ${error.message}`);
      for (const conflict of error.conflicts) err(`  ${conflict.email} (${conflict.action})`);
      if (error.conflictCount > error.conflicts.length) {
        err(`  … ${count.format(error.conflictCount)} users in all`);
      }
      return EXIT.confirm;
    }
    throw error;
  }
  display.finish();
  if (values.json) {
    out(JSON.stringify(session, null, 2));
    return EXIT.ok;
  }
  const result = session.revertResult;
  out(`Reverted the import of ${session.fileName}.`);
  if (result) {
    for (const line of table([
      ['removed', result.removed],
      ['updated back', result.updated],
      ['unarchived', result.unarchived],
      ['archived again', result.rearchived],
      ['left (changed since)', result.conflicts],
    ])) {
      out(line);
    }
  }
  out(`Session: ${session.id}`);
  return EXIT.ok;
}

/** The version of this package: package.json is beside cli.ts, or one level up from dist/. */
async function packageVersion(): Promise<string> {
  for (const candidate of ['./package.json', '../package.json']) {
    const text = await readFile(new URL(candidate, import.meta.url), 'utf8').catch(() => null);
    const manifest = text ? (JSON.parse(text) as { name?: string; version?: string }) : null;
    if (manifest?.name === '@muster/client' && manifest.version) return manifest.version;
  }
  return 'unknown';
}

process.exitCode = await main(process.argv.slice(2));
