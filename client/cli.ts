#!/usr/bin/env node
import { readFile, stat, writeFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
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
} from './import-users.js';
import { createProgressDisplay, describeWork } from './progress-display.js';

const HELP = `Usage: muster <command> [options]

Commands:
  import <file.xlsx>    Import users from a file through every stage of the import
  template              Download the .xlsx template with the company's current columns
  status <sessionId>    Show the stage and counts of an import session

Connection (every command):
  --url <url>           The Muster server, e.g. https://muster.example.com (env MUSTER_URL)
  --token <token>       An API token (env MUSTER_TOKEN); importing needs an ADMIN token

Import:
  --new-columns <all|none|a,b>
                        Which new columns become custom fields of the company, for all
                        its users (default none: they are ignored)
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
  --error-report <file> Save the error report (.xlsx: rows with errors, bad cells marked)
  --json                Print the session (or the error) as JSON on stdout

Template:
  -o, --output <file>   Where to save it (default: its own name, in this directory)

Status:
  --json                Print the session as JSON on stdout

Exit codes:
  0 imported, or stopped where asked     4 bad file (refused or failed to read)
  1 other error                          5 token missing, wrong or not allowed
  2 usage                                6 server unreachable
  3 rows have errors (stopped)           7 rate limited: try again later
`;

const EXIT = {
  ok: 0,
  other: 1,
  usage: 2,
  rowErrors: 3,
  badFile: 4,
  auth: 5,
  unreachable: 6,
  rateLimited: 7,
};

const EXIT_BY_REASON: Record<ImportUsersFailureReason, number> = {
  'row-errors': EXIT.rowErrors,
  'bad-file': EXIT.badFile,
  'rate-limited': EXIT.rateLimited,
  failed: EXIT.badFile,
  auth: EXIT.auth,
  network: EXIT.unreachable,
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
    'json',
  ],
  template: ['output'],
  status: ['json'],
};

/** How many row errors the CLI lists when it stops for them. */
const LISTED_ERRORS = 20;

class UsageError extends Error {}

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
    return usageError((error as Error).message);
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
    if (command === 'template') return await templateCommand(values, operands);
    return await statusCommand(values, operands);
  } catch (error) {
    if (error instanceof UsageError) return usageError(error.message);
    if (error instanceof ImportUsersError) {
      err(`muster: ${error.message}${error.code ? ` (${error.code})` : ''}`);
      return EXIT_BY_REASON[error.reason];
    }
    err(`muster: ${(error as Error).message}`);
    return EXIT.other;
  }
}

function usageError(message: string): number {
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
  return { client: createMusterClient({ url: endpoint.href, token }), url: endpoint.href };
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
    maxErrors: LISTED_ERRORS,
  };
}

async function importCommand(values: Values, operands: string[]): Promise<number> {
  const path = oneOperand(operands, 'the file to import');
  const policies = importPolicies(values);
  const file = await stat(path).catch(() => null);
  if (!file?.isFile()) throw new UsageError(`no such file: ${path}`);
  const { client, url } = connect(values);
  const display = createProgressDisplay(process.stderr);
  let session: ImportSession;
  try {
    session = await importUsers(client, path, { ...policies, onProgress: display.update });
  } catch (error) {
    display.finish();
    if (!(error instanceof ImportUsersError)) throw error;
    if (values.json) out(JSON.stringify({ error: errorJson(error) }, null, 2));
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
    const { created, updated, unchanged, skipped } = session.result;
    for (const line of table([
      ['created', created],
      ['updated', updated],
      ['unchanged', unchanged],
      ['skipped', skipped],
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
    err(`muster: no import session ${id} in your company`);
    return EXIT.other;
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
  if (session.failure)
    lines.push(['Failure', `${session.failure.code}: ${session.failure.message}`]);
  for (const [label, value] of lines) out(`${label.padEnd(9)} ${value}`);
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
