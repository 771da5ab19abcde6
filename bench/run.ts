import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createEmptyPostgresDatabase } from '../test/support/database.js';
import {
  benchmarkRowFixes,
  benchmarkSyncAndRevert,
  ROW_FIXES,
  type RowFixResult,
  type SyncRevertResult,
  TARGETS,
} from './cases.js';
import { type FloorRun, floorsOf, openFloorBench } from './floors.js';
import {
  type BusyGap,
  benchmarkImport,
  CLIENT_PAGE_SIZES,
  type ImportRunResult,
  prepareUpload,
} from './import-run.js';
import { killAllServers, sampleMemory, startServerProcess } from './server-process.js';
import { loadAverage, maximum, median, p95, round } from './stats.js';
import { cachedWorkbook, type WorkbookVariant } from './workbook.js';

/**
 * `npm run bench -- --rows N [--json] [--runs K] [--database postgres|pglite] [--inline-strings]
 *   [--sync-revert] [--row-fixes]`
 *
 * Measures whole imports through a real server process over HTTP, each right after the floors
 * (bare read, bulk load, upsert), and prints a table (and with --json a last line of JSON).
 * --sync-revert and --row-fixes add the cases of bench/cases.ts after each run's import.
 */

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '100000' },
    runs: { type: 'string', default: '3' },
    database: { type: 'string', default: 'postgres' },
    json: { type: 'boolean', default: false },
    'inline-strings': { type: 'boolean', default: false },
    'timeout-ms': { type: 'string' },
    /** Stream the upload without Content-Length, past Yoga's 25 MB body limit (docs/performance.md). */
    'chunked-upload': { type: 'boolean', default: false },
    /** After the import: a SYNC re-import of 90 % of the users, then two reverts (cases.ts). */
    'sync-revert': { type: 'boolean', default: false },
    /** After the import: one-row fixes and a replaceInColumn at VALIDATION (cases.ts). */
    'row-fixes': { type: 'boolean', default: false },
  },
});

const rows = Number(args.rows);
const runs = Number(args.runs);
const database = args.database as 'postgres' | 'pglite';
const sharedStrings = !args['inline-strings'];
if (!Number.isInteger(rows) || rows < 1) throw new Error('--rows must be a positive integer');
if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a positive integer');
if (!['postgres', 'pglite'].includes(database)) {
  throw new Error('--database must be postgres or pglite');
}
/** Bounds one import (upload to commit): generous, but every wait ends. */
const importTimeoutMs = Number(args['timeout-ms'] ?? 120_000 + rows * 2);
const serverUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const bootstrapToken = `mst_bench_${randomBytes(16).toString('hex')}`;
const DEFAULT_MAX_UPLOAD_BYTES = 50 * 1024 * 1024;

const log = (line: string) => process.stderr.write(`${line}\n`);

/** Work to undo on the way out, also on Ctrl-C: servers are killed, databases dropped. */
const cleanups = new Set<() => Promise<void>>();
process.on('exit', killAllServers);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: cleaning up`);
    killAllServers();
    const bounded = new Promise((resolve) => setTimeout(resolve, 10_000).unref());
    void Promise.race([
      Promise.allSettled([...cleanups].map((cleanup) => cleanup())),
      bounded,
    ]).then(() => process.exit(130));
  });
}

async function withCleanup<T>(cleanup: () => Promise<void>, work: () => Promise<T>): Promise<T> {
  cleanups.add(cleanup);
  try {
    return await work();
  } finally {
    cleanups.delete(cleanup);
    await cleanup().catch((error: unknown) => log(`cleanup failed: ${String(error)}`));
  }
}

/** The workbooks of the optional cases, written (or taken from the cache) before the runs. */
interface CaseFiles {
  syncPath: string | null;
  rowFixPath: string | null;
}

type RunResult = ImportRunResult & {
  load: string;
  syncRevert: SyncRevertResult | null;
  rowFixes: RowFixResult | null;
};

async function oneRun(path: string, fileBytes: number, caseFiles: CaseFiles): Promise<RunResult> {
  const dataDir = await mkdtemp(join(tmpdir(), 'muster-bench-'));
  const postgresDatabase =
    database === 'postgres' ? await createEmptyPostgresDatabase(serverUrl) : null;
  const remove = async () => {
    await postgresDatabase?.drop();
    await rm(dataDir, { recursive: true, force: true });
  };
  return withCleanup(remove, async () => {
    const server = await startServerProcess({
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      BOOTSTRAP_ADMIN_TOKEN: bootstrapToken,
      DATA_DIR: dataDir,
      // The default cap is kept unless the file does not fit under it (said in the output).
      MAX_UPLOAD_BYTES: String(Math.max(DEFAULT_MAX_UPLOAD_BYTES, Math.ceil(fileBytes * 1.1))),
      ...(postgresDatabase ? { DATABASE_URL: postgresDatabase.url } : {}),
    });
    const memory = sampleMemory(server.serverPid);
    return withCleanup(
      async () => {
        memory.stop();
        await server.stop();
      },
      async () => {
        try {
          const result = await benchmarkImport({
            url: server.url,
            token: bootstrapToken,
            path,
            timeoutMs: importTimeoutMs,
            chunkedUpload: args['chunked-upload'],
            memory,
            log,
          });
          const load = await loadAverage();
          // Row fixes first: they change no user (the session is cancelled), while the SYNC
          // and the reverts leave the company without the first import's users.
          const rowFixes = caseFiles.rowFixPath
            ? await benchmarkRowFixes({
                url: server.url,
                token: bootstrapToken,
                upload: await prepareUpload(caseFiles.rowFixPath, args['chunked-upload']),
                timeoutMs: importTimeoutMs,
                log,
              })
            : null;
          const syncRevert = caseFiles.syncPath
            ? await benchmarkSyncAndRevert({
                url: server.url,
                token: bootstrapToken,
                firstSessionId: result.first.sessionId,
                syncUpload: await prepareUpload(caseFiles.syncPath, args['chunked-upload'], 'SYNC'),
                timeoutMs: importTimeoutMs,
                log,
              })
            : null;
          return { ...result, load, syncRevert, rowFixes };
        } catch (error) {
          log(`server output:\n${server.logs().slice(-4000)}`);
          throw error;
        }
      },
    );
  });
}

const ms = (value: number) => (Number.isFinite(value) ? String(round(value)) : '-');
const mb = (value: number) => (Number.isFinite(value) ? String(Math.round(value)) : '-');
const fixed2 = (value: number) => (Number.isFinite(value) ? value.toFixed(2) : '-');
const met = (ok: boolean) => (ok ? 'met' : 'NOT met');

const roundGap = (gap: BusyGap): BusyGap => ({
  ...gap,
  ms: round(gap.ms),
  afterMs: round(gap.afterMs),
});

const describeGap = (gap: BusyGap) =>
  `${gap.ms} ms in ${gap.phase} at ${(gap.afterMs / 1000).toFixed(1)} s${gap.processed === null ? '' : ` (${gap.processed} done)`}`;

function table(rowsOfCells: string[][]): string {
  const widths =
    rowsOfCells[0]?.map((_, column) =>
      Math.max(...rowsOfCells.map((cells) => (cells[column] ?? '').length)),
    ) ?? [];
  return rowsOfCells
    .map((cells) =>
      cells
        .map((cell, column) =>
          column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0),
        )
        .join('  '),
    )
    .join('\n');
}

const floorMsOf = (run: FloorRun | undefined): number =>
  run ? run.readMs + run.loadMs + run.upsertMs : Number.NaN;

/** The SYNC's file: the same users but every tenth (rows 0, 10, 20, …), so it archives 10 %. */
const SYNC_VARIANT: WorkbookVariant = { includes: (index) => index % 10 !== 0 };
/** The row fixes' file: the same users, one row in a hundred with a bad email. */
const ROW_FIX_VARIANT: WorkbookVariant = { invalidEvery: 100 };

async function main(): Promise<void> {
  const repoRoot = fileURLToPath(new URL('..', import.meta.url));
  const loadAtStart = await loadAverage();
  const workbook = async (name: string, variant?: WorkbookVariant) => {
    const path = join(
      repoRoot,
      'bench',
      '.cache',
      `users-${rows}${name}-${sharedStrings ? 'shared' : 'inline'}-strings.xlsx`,
    );
    log(`workbook: ${path}`);
    const written = await cachedWorkbook(path, rows, sharedStrings, variant);
    log(
      `  ${(written.bytes / 1024 / 1024).toFixed(1)} MB${written.generated ? `, written in ${Math.round(written.generateMs)} ms` : ' (cached)'}`,
    );
    return written;
  };
  const file = await workbook('');
  const path = file.path;
  const caseFiles: CaseFiles = {
    syncPath: args['sync-revert'] ? (await workbook('-sync90', SYNC_VARIANT)).path : null,
    rowFixPath: args['row-fixes'] ? (await workbook('-invalid1pct', ROW_FIX_VARIANT)).path : null,
  };

  // Each import run right after its own floors: both see the machine in the same spell.
  const floorBench = await openFloorBench({ path, rows, database, serverUrl });
  const floorRuns: FloorRun[] = [];
  const results: RunResult[] = [];
  try {
    for (let run = 0; run < runs; run++) {
      const floorRun = await floorBench.measure();
      floorRuns.push(floorRun);
      log(
        `floors ${run + 1}/${runs}: P ${Math.round(floorRun.readMs)} ms, C ${Math.round(floorRun.loadMs)} ms, U ${Math.round(floorRun.upsertMs)} ms`,
      );
      log(`import run ${run + 1}/${runs} (${database}, load ${await loadAverage()})`);
      results.push(await oneRun(path, file.bytes, caseFiles));
    }
  } finally {
    await floorBench.close();
  }
  const floors = floorsOf(floorRuns, floorBench.method);
  const loadAtEnd = await loadAverage();

  const pick = (select: (result: RunResult) => number) => results.map(select);
  const med = (select: (result: RunResult) => number) => median(pick(select));
  // The optional cases' figures; NaN (printed '-') where the case did not run.
  const sync = (select: (result: SyncRevertResult) => number) => (result: RunResult) =>
    result.syncRevert ? select(result.syncRevert) : Number.NaN;
  const fixes = (select: (result: RowFixResult) => number) => (result: RunResult) =>
    result.rowFixes ? select(result.rowFixes) : Number.NaN;
  const ratio = (value: number) => Math.round(value * 100) / 100;
  const revertOverCommit = (result: RunResult) =>
    sync((cases) => cases.revertFirst.totalMs)(result) / result.first.stages.commitMs;
  const syncOverCommit = (result: RunResult) =>
    sync((cases) => cases.sync.stages.commitMs)(result) / result.first.stages.commitMs;
  const replaceOverValidation = fixes((cases) => cases.replaceMs / cases.validationMs);
  const stageNames = [
    ['uploadMs', 'upload (POST → response)'],
    ['firstEventMs', 'first event (after response)'],
    ['readMs', 'read + stage rows'],
    ['confirmMs', 'confirmCustomFields'],
    ['validationMs', 'validation'],
    ['reviewMs', 'review'],
    ['groupsMs', 'groups'],
    ['commitMs', 'commit'],
  ] as const;
  const stages = Object.fromEntries(
    stageNames.map(([key]) => [key, round(med((result) => result.first.stages[key]))]),
  );
  const totalMs = med((result) => result.first.totalMs);
  const secondTotalMs = med((result) => result.second.totalMs);
  const readGaps = results.flatMap((result) => result.first.readGaps);
  const summary = {
    rows,
    database,
    sharedStrings,
    runs,
    fileMb: Math.round((file.bytes / 1024 / 1024) * 10) / 10,
    uploadCapRaised: file.bytes * 1.1 > DEFAULT_MAX_UPLOAD_BYTES,
    chunkedUpload: args['chunked-upload'],
    totalMs: round(totalMs),
    floorMs: round(floors.floorMs),
    ratio: Math.round((totalMs / floors.floorMs) * 100) / 100,
    /** Each run's total over the floors measured right before it. */
    ratioByRun: results.map(
      (result, run) => Math.round((result.first.totalMs / floorMsOf(floors.runs[run])) * 100) / 100,
    ),
    floor: {
      readMs: round(floors.readMs),
      loadMs: round(floors.loadMs),
      upsertMs: round(floors.upsertMs),
      loadMethod: floors.loadMethod,
    },
    secondRunTotalMs: round(secondTotalMs),
    secondRunStages: Object.fromEntries(
      stageNames.map(([key]) => [key, round(med((result) => result.second.stages[key]))]),
    ),
    idleRssMb: Math.round(med((result) => result.idleRssMb)),
    peakRssMb: Math.round(maximum(pick((result) => result.peakRssMb))),
    rssGrowthMb: Math.round(maximum(pick((result) => result.peakRssMb - result.idleRssMb))),
    secondRunPeakRssMb: Math.round(maximum(pick((result) => result.secondPeakRssMb))),
    peakRssByStageMb: Object.fromEntries(
      Object.keys(results[0]?.peakRssByStage ?? {}).map((stage) => [
        stage,
        round(maximum(pick((result) => result.peakRssByStage[stage] ?? Number.NaN))),
      ]),
    ),
    queryP95Ms: round(med((result) => result.queryP95Ms)),
    queryP95IdleMs: round(med((result) => result.queryP95IdleMs)),
    queryP95RawMs: round(med((result) => result.queryP95RawMs)),
    queryMaxMs: round(maximum(pick((result) => result.queryMaxMs))),
    healthP95IdleMs: round(med((result) => result.healthP95IdleMs)),
    queryByStage: Object.fromEntries(
      Object.keys(results[0]?.queryByStage ?? {}).map((stage) => [
        stage,
        {
          p95Ms: round(med((result) => result.queryByStage[stage]?.p95Ms ?? Number.NaN)),
          maxMs: round(maximum(pick((result) => result.queryByStage[stage]?.maxMs ?? Number.NaN))),
        },
      ]),
    ),
    rowsPageP95Ms: round(med((result) => result.rowsPageP95Ms)),
    rowsPageP95RawMs: round(med((result) => result.rowsPageP95RawMs)),
    rowsPageIdleP95Ms: round(med((result) => result.rowsPageIdleP95Ms)),
    clientRowsP95Ms: Object.fromEntries(
      CLIENT_PAGE_SIZES.map((size) => [size, round(med((result) => result.clientRowsP95Ms[size]))]),
    ),
    healthP95BesideClientRowsMs: round(med((result) => result.healthP95BesideClientRowsMs)),
    firstEventMs: round(med((result) => result.first.stages.firstEventMs)),
    firstProgressMs: round(med((result) => result.first.firstProgressMs)),
    readEventGapP50Ms: round(median(readGaps)),
    readEventGapP95Ms: round(p95(readGaps)),
    readEventGapMaxMs: round(maximum(readGaps)),
    busyGapMax: results.map((result) => roundGap(result.first.busyGapMax)),
    stillGapMax: results.map((result) => roundGap(result.first.stillGapMax)),
    secondRunBusyGapMax: results.map((result) => roundGap(result.second.busyGapMax)),
    repeatedEvents: results.map((result) => result.first.repeatedEvents),
    probeFailures: results.reduce((sum, result) => sum + result.probeFailures, 0),
    probeFailure: results.find((result) => result.probeFailure)?.probeFailure ?? null,
    result: results[0]?.first.result ?? null,
    secondRunResult: results[0]?.second.result ?? null,
    stages,
    loadAverage: { start: loadAtStart, end: loadAtEnd, afterEachRun: results.map((r) => r.load) },
    /** --sync-revert (issue #29): medians over the runs; ratios against each run's own commit. */
    syncRevert: args['sync-revert']
      ? {
          syncTotalMs: round(med(sync((cases) => cases.sync.totalMs))),
          syncStages: Object.fromEntries(
            stageNames.map(([key]) => [key, round(med(sync((cases) => cases.sync.stages[key])))]),
          ),
          syncCommitOverCommit: ratio(med(syncOverCommit)),
          syncResult: results[0]?.syncRevert?.sync.result ?? null,
          archiveWarning: results[0]?.syncRevert?.sync.archiveWarning ?? null,
          revertSyncMs: round(med(sync((cases) => cases.revertSync.totalMs))),
          revertSyncResult: results[0]?.syncRevert?.revertSync.result ?? null,
          revertMs: round(med(sync((cases) => cases.revertFirst.totalMs))),
          revertOverCommit: ratio(med(revertOverCommit)),
          revertResult: results[0]?.syncRevert?.revertFirst.result ?? null,
          revertBusyGapMax: results.flatMap((result) =>
            result.syncRevert ? [roundGap(result.syncRevert.revertFirst.busyGapMax)] : [],
          ),
          target: TARGETS.syncOrRevertOverCommit,
        }
      : null,
    /** --row-fixes (issue #28): medians over the runs. */
    rowFixes: args['row-fixes']
      ? {
          fixes: ROW_FIXES,
          fixP95Ms: round(med(fixes((cases) => cases.fixP95Ms))),
          fixMaxMs: round(maximum(pick(fixes((cases) => maximum(cases.fixMs))))),
          fixP95TargetMs: TARGETS.rowFixP95Ms,
          validationMs: round(med(fixes((cases) => cases.validationMs))),
          replaceMs: round(med(fixes((cases) => cases.replaceMs))),
          replaceOverValidation: ratio(med(replaceOverValidation)),
          replaceOverValidationTarget: TARGETS.replaceOverValidation,
          replacedRows: results[0]?.rowFixes?.replacedRows ?? null,
          invalidBefore: results[0]?.rowFixes?.invalidBefore ?? null,
          fixedInvalidRows: results[0]?.rowFixes?.fixedInvalidRows ?? null,
          invalidAfterFixes: results[0]?.rowFixes?.invalidAfterFixes ?? null,
          invalidAfterReplace: results[0]?.rowFixes?.invalidAfterReplace ?? null,
        }
      : null,
  };

  const runColumns = results.map((_, index) => `run ${index + 1}`);
  const perRun = (label: string, select: (result: RunResult) => number, format = ms) => [
    label,
    ...results.map((result) => format(select(result))),
    format(med(select)),
  ];
  const lines = [
    `Muster import benchmark: ${rows} rows, ${database}, ${sharedStrings ? 'shared' : 'inline'} strings, file ${summary.fileMb} MB${summary.uploadCapRaised ? ' (MAX_UPLOAD_BYTES raised to fit)' : ''}${summary.chunkedUpload ? ', uploaded chunked (no Content-Length)' : ''}`,
    `load average: start ${loadAtStart}; after each run ${summary.loadAverage.afterEachRun.join(' | ')}; end ${loadAtEnd}`,
    `floors, median of ${runs} (each measured right before its run): P read ${ms(floors.readMs)} ms + C load ${ms(floors.loadMs)} ms + U upsert ${ms(floors.upsertMs)} ms = ${ms(floors.floorMs)} ms`,
    `  C: ${floors.loadMethod}`,
    '',
    table([
      ['ms unless stated', ...runColumns, 'median'],
      ...stageNames.map(([key, label]) => perRun(label, (result) => result.first.stages[key])),
      perRun('TOTAL', (result) => result.first.totalMs),
      // Each run against its own floors; the last column is the summary's: the medians of P, C
      // and U added, and the median total over that.
      [
        'floor P + C + U (before the run)',
        ...floors.runs.map((run) => ms(floorMsOf(run))),
        ms(floors.floorMs),
      ],
      [
        'ratio total / floor',
        ...results.map((result, run) =>
          (result.first.totalMs / floorMsOf(floors.runs[run])).toFixed(2),
        ),
        summary.ratio.toFixed(2),
      ],
      perRun('re-import (all unchanged) total', (result) => result.second.totalMs),
      ...(['readMs', 'validationMs', 'commitMs'] as const).map((key) =>
        perRun(
          `  re-import ${stageNames.find(([name]) => name === key)?.[1] ?? key}`,
          (result) => result.second.stages[key],
        ),
      ),
      perRun('idle RSS MB', (result) => result.idleRssMb, mb),
      perRun('peak RSS MB', (result) => result.peakRssMb, mb),
      perRun('peak RSS MB, re-import', (result) => result.secondPeakRssMb, mb),
      perRun('GET /health p95 idle', (result) => result.healthP95IdleMs),
      perRun('{viewer} p95 idle', (result) => result.queryP95IdleMs),
      perRun('{viewer} p95 during import', (result) => result.queryP95Ms),
      perRun('  same, uncorrected', (result) => result.queryP95RawMs),
      perRun('{viewer} max during import', (result) => result.queryMaxMs),
      perRun('rows(50) p95 during import', (result) => result.rowsPageP95Ms),
      perRun('  same, uncorrected', (result) => result.rowsPageP95RawMs),
      perRun('rows(50) p95 idle, all staged', (result) => result.rowsPageIdleP95Ms),
      ...CLIENT_PAGE_SIZES.map((size) =>
        perRun(`client ImportRows(${size}) p95 idle`, (result) => result.clientRowsP95Ms[size]),
      ),
      perRun('  GET /health p95 beside it', (result) => result.healthP95BesideClientRowsMs),
      perRun('first progress event', (result) => result.first.firstProgressMs),
      perRun('read: event gap p95', (result) => p95(result.first.readGaps)),
      perRun('read: event gap max', (result) => maximum(result.first.readGaps)),
      perRun('busy: longest gap', (result) => result.first.busyGapMax.ms),
      perRun('busy: longest without moving', (result) => result.first.stillGapMax.ms),
      perRun('re-import busy: longest gap', (result) => result.second.busyGapMax.ms),
      perRun('events repeating the one before', (result) => result.first.repeatedEvents, String),
      ...(args['sync-revert']
        ? [
            perRun(
              'SYNC re-import (90 % of the users) total',
              sync((cases) => cases.sync.totalMs),
            ),
            perRun(
              '  SYNC re-import commit',
              sync((cases) => cases.sync.stages.commitMs),
            ),
            perRun(
              `  SYNC commit / import commit (≤ ${TARGETS.syncOrRevertOverCommit})`,
              syncOverCommit,
              fixed2,
            ),
            perRun(
              'revert of the SYNC',
              sync((cases) => cases.revertSync.totalMs),
            ),
            perRun(
              'revert of the import',
              sync((cases) => cases.revertFirst.totalMs),
            ),
            perRun(
              `  revert / import commit (≤ ${TARGETS.syncOrRevertOverCommit})`,
              revertOverCommit,
              fixed2,
            ),
            perRun(
              '  revert: longest gap while busy',
              sync((cases) => cases.revertFirst.busyGapMax.ms),
            ),
          ]
        : []),
      ...(args['row-fixes']
        ? [
            perRun(
              'row fixes: validation of their file',
              fixes((cases) => cases.validationMs),
            ),
            perRun(
              `updateImportRows, one row, p95 of ${ROW_FIXES} (≤ ${TARGETS.rowFixP95Ms})`,
              fixes((cases) => cases.fixP95Ms),
            ),
            perRun(
              '  updateImportRows max',
              fixes((cases) => maximum(cases.fixMs)),
            ),
            perRun(
              'replaceInColumn, every row',
              fixes((cases) => cases.replaceMs),
            ),
            perRun(
              `  replace / validation (≤ ${TARGETS.replaceOverValidation})`,
              replaceOverValidation,
              fixed2,
            ),
          ]
        : []),
    ]),
    `{viewer} p95 / max by stage (median p95, worst max): ${Object.entries(summary.queryByStage)
      .map(([stage, value]) => `${stage} ${ms(value.p95Ms)}/${ms(value.maxMs)}`)
      .join(', ')}`,
    `peak RSS MB by stage (worst run): ${Object.entries(summary.peakRssByStageMb)
      .map(([stage, value]) => `${stage} ${mb(value)}`)
      .join(', ')}`,
    `longest gaps while busy: ${summary.busyGapMax.map(describeGap).join(' | ')}`,
    `longest without moving: ${summary.stillGapMax.map(describeGap).join(' | ')}`,
    `re-import, longest gaps while busy: ${summary.secondRunBusyGapMax.map(describeGap).join(' | ')}`,
    `result: ${JSON.stringify(summary.result)}; re-import: ${JSON.stringify(summary.secondRunResult)}; probe failures: ${summary.probeFailures}${summary.probeFailure ? ` (first: ${summary.probeFailure})` : ''}`,
    ...(summary.syncRevert
      ? [
          `SYNC: ${JSON.stringify(summary.syncRevert.syncResult)}; archive warning: ${JSON.stringify(summary.syncRevert.archiveWarning)}; revert of the SYNC: ${JSON.stringify(summary.syncRevert.revertSyncResult)}; revert of the import: ${JSON.stringify(summary.syncRevert.revertResult)}`,
          `targets (#29, medians): SYNC commit / import commit ${summary.syncRevert.syncCommitOverCommit} ${met(summary.syncRevert.syncCommitOverCommit <= TARGETS.syncOrRevertOverCommit)}; revert / import commit ${summary.syncRevert.revertOverCommit} ${met(summary.syncRevert.revertOverCommit <= TARGETS.syncOrRevertOverCommit)} (≤ ${TARGETS.syncOrRevertOverCommit})`,
        ]
      : []),
    ...(summary.rowFixes
      ? [
          `row fixes: ${summary.rowFixes.invalidBefore} invalid rows, ${summary.rowFixes.fixedInvalidRows} of the ${ROW_FIXES} fixed rows invalid, ${summary.rowFixes.invalidAfterFixes} invalid after; replaceInColumn changed ${summary.rowFixes.replacedRows} rows (${summary.rowFixes.invalidAfterReplace} invalid after)`,
          `targets (#28, medians): updateImportRows p95 ${ms(summary.rowFixes.fixP95Ms)} ms ${met(summary.rowFixes.fixP95Ms <= TARGETS.rowFixP95Ms)} (≤ ${TARGETS.rowFixP95Ms} ms); replaceInColumn / validation ${summary.rowFixes.replaceOverValidation} ${met(summary.rowFixes.replaceOverValidation <= TARGETS.replaceOverValidation)} (≤ ${TARGETS.replaceOverValidation})`,
        ]
      : []),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  if (args.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    log(error instanceof Error ? (error.stack ?? error.message) : String(error));
    killAllServers();
    process.exit(1);
  },
);
