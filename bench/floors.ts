import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import { PGlite } from '@electric-sql/pglite';
import ExcelJS from 'exceljs';
import postgres from 'postgres';
import { createEmptyPostgresDatabase } from '../test/support/database.js';
import { median } from './stats.js';
import { HEADERS, rowCells } from './workbook.js';

/**
 * The floors an import cannot beat on this machine, measured with the libraries alone:
 * P reads the file, C bulk-loads its rows, U upserts them into a users-shaped table.
 */
export interface Floors {
  readMs: number;
  loadMs: number;
  upsertMs: number;
  floorMs: number;
  /** How C loads the rows. */
  loadMethod: string;
  /** Each run's figures, for the record. */
  runs: FloorRun[];
}

const SESSION_ID = '00000000-0000-4000-8000-000000000001';
const COMPANY_ID = '00000000-0000-4000-8000-000000000002';

/** Shaped like import_rows and users (same keys and unique indexes), without foreign keys. */
const SCRATCH_TABLES = `
  create table bench_rows (
    session_id uuid, row_number integer, cells jsonb not null, errors jsonb, action text,
    training_group_id uuid, matched_rule_id uuid, user_id uuid,
    primary key (session_id, row_number));
  create table bench_users (
    id uuid primary key default gen_random_uuid(), company_id uuid not null,
    email text not null, user_name text not null, reference text not null,
    custom_values jsonb default '{}' not null, training_group_id uuid,
    created_at timestamptz default now() not null, updated_at timestamptz default now() not null,
    unique (company_id, reference));
  create unique index bench_users_email on bench_users (company_id, lower(email));
  create index bench_users_company_id on bench_users (company_id, id);`;

const CUSTOM_KEYS = HEADERS.slice(3).map((header) => `'${header}'`);
const CUSTOM_VALUES = HEADERS.slice(3).map((_, index) => `r.cells ->> ${index + 3}`);

/** The email as the commit stores it: trimmed, NFC (normalize() only when not in NFC yet). */
const EMAIL = `(case when btrim(r.cells ->> 0) is nfc normalized then btrim(r.cells ->> 0)
  else normalize(btrim(r.cells ->> 0), NFC) end)`;

/** The commit's statement, reduced to its essentials: every row with an email, one upsert. */
const UPSERT = `
  insert into bench_users (company_id, email, user_name, reference, custom_values, training_group_id)
  select '${COMPANY_ID}'::uuid, ${EMAIL}, r.cells ->> 1, r.cells ->> 2,
    jsonb_strip_nulls(jsonb_object(array[${CUSTOM_KEYS.join(', ')}], array[${CUSTOM_VALUES.join(', ')}]::text[])),
    null
  from bench_rows r
  where r.session_id = '${SESSION_ID}' and strpos(r.cells ->> 0, '@') > 0
  on conflict (company_id, lower(email)) do update set
    user_name = excluded.user_name, reference = excluded.reference,
    custom_values = bench_users.custom_values || excluded.custom_values,
    training_group_id = coalesce(bench_users.training_group_id, excluded.training_group_id),
    updated_at = now()
  where bench_users.user_name is distinct from excluded.user_name
    or bench_users.reference is distinct from excluded.reference
    or not (bench_users.custom_values @> excluded.custom_values)`;

/** One staged row as a CSV line, as Muster stages it: session, row number, cells as JSON. */
function csvLine(index: number): string {
  const json = JSON.stringify(rowCells(index)).replaceAll('"', '""');
  return `${SESSION_ID},${index + 2},"${json}"\n`;
}

interface ScratchDatabase {
  method: string;
  exec(statement: string): Promise<void>;
  count(): Promise<number>;
  load(rows: number): Promise<void>;
  close(): Promise<void>;
}

async function postgresScratch(serverUrl: string): Promise<ScratchDatabase> {
  const database = await createEmptyPostgresDatabase(serverUrl);
  const sql = postgres(database.url, { max: 1, onnotice: () => {} });
  return {
    method: 'postgres.js COPY FROM STDIN (.writable(), CSV, one COPY for all rows)',
    exec: async (statement) => {
      await sql.unsafe(statement);
    },
    count: async () => {
      const [row] = await sql<{ count: number }[]>`select count(*)::int as count from bench_rows`;
      return row?.count ?? 0;
    },
    load: async (rows) => {
      const writable =
        await sql`copy bench_rows (session_id, row_number, cells) from stdin with (format csv)`.writable();
      const chunkRows = 500;
      for (let start = 0; start < rows; start += chunkRows) {
        let chunk = '';
        for (let index = start; index < Math.min(rows, start + chunkRows); index++) {
          chunk += csvLine(index);
        }
        if (!writable.write(chunk)) await once(writable, 'drain');
      }
      writable.end();
      await finished(writable);
    },
    close: async () => {
      await sql.end({ timeout: 5 });
      await database.drop();
    },
  };
}

async function pgliteScratch(): Promise<ScratchDatabase> {
  const db = new PGlite();
  await db.waitReady;
  return {
    method: "PGlite (in memory, in the bench process) COPY FROM '/dev/blob', 2000 rows a COPY",
    exec: async (statement) => {
      await db.exec(statement);
    },
    count: async () => {
      const result = await db.query<{ count: number }>(
        'select count(*)::int as count from bench_rows',
      );
      return result.rows[0]?.count ?? 0;
    },
    load: async (rows) => {
      const batch = 2000;
      for (let start = 0; start < rows; start += batch) {
        let csv = '';
        for (let index = start; index < Math.min(rows, start + batch); index++) {
          csv += csvLine(index);
        }
        await db.query(
          `copy bench_rows (session_id, row_number, cells) from '/dev/blob' with (format csv)`,
          [],
          { blob: new Blob([csv]) },
        );
      }
    },
    close: () => db.close(),
  };
}

/** P: exceljs's streaming reader over the file, counting rows (as Muster reads: styles cached). */
export async function measureRead(path: string): Promise<{ ms: number; rows: number }> {
  const started = performance.now();
  const reader = new ExcelJS.stream.xlsx.WorkbookReader(path, {
    sharedStrings: 'cache',
    styles: 'cache',
    hyperlinks: 'ignore',
    worksheets: 'emit',
    entries: 'emit',
  });
  let rows = 0;
  for await (const worksheet of reader) {
    for await (const _row of worksheet as unknown as AsyncIterable<unknown>) rows++;
  }
  return { ms: performance.now() - started, rows };
}

/** One measurement of P, C and U. */
export interface FloorRun {
  readMs: number;
  loadMs: number;
  upsertMs: number;
}

/** A scratch database that measures the floors, once before each import run. */
export interface FloorBench {
  /** How C loads the rows. */
  method: string;
  measure(): Promise<FloorRun>;
  /** Drops the scratch database. */
  close(): Promise<void>;
}

/**
 * Opens the scratch database the floors are measured in. The bench measures them right
 * before each import run rather than all at first: this machine's speed drifts over minutes
 * (the bare read took 2.4 s in one spell and 4.7 s in another), and a floor measured in
 * another spell than the import it is compared with made the ratio swing by half.
 */
export async function openFloorBench(options: {
  path: string;
  rows: number;
  database: 'postgres' | 'pglite';
  serverUrl: string;
}): Promise<FloorBench> {
  const scratch =
    options.database === 'postgres'
      ? await postgresScratch(options.serverUrl)
      : await pgliteScratch();
  try {
    await scratch.exec(SCRATCH_TABLES);
  } catch (error) {
    await scratch.close();
    throw error;
  }
  return {
    method: scratch.method,
    measure: async () => {
      const read = await measureRead(options.path);
      // The header row is a row to exceljs.
      if (read.rows !== options.rows + 1) {
        throw new Error(`the floor read ${read.rows} rows, expected ${options.rows + 1}`);
      }
      let started = performance.now();
      await scratch.load(options.rows);
      const loadMs = performance.now() - started;
      // postgres.js may not report a failed COPY (porsager/postgres#1173): check the count.
      const loaded = await scratch.count();
      if (loaded !== options.rows) throw new Error(`the floor loaded ${loaded} of ${options.rows}`);
      started = performance.now();
      await scratch.exec(UPSERT);
      const upsertMs = performance.now() - started;
      // Nothing left behind for the import run that follows.
      await scratch.exec('truncate bench_rows; truncate bench_users');
      return { readMs: read.ms, loadMs, upsertMs };
    },
    close: () => scratch.close(),
  };
}

/** The floors of several measurements: the median of each of P, C and U. */
export function floorsOf(runs: FloorRun[], method: string): Floors {
  const readMs = median(runs.map((run) => run.readMs));
  const loadMs = median(runs.map((run) => run.loadMs));
  const upsertMs = median(runs.map((run) => run.upsertMs));
  return {
    readMs,
    loadMs,
    upsertMs,
    floorMs: readMs + loadMs + upsertMs,
    loadMethod: method,
    runs,
  };
}
