import { type SQL, sql } from 'drizzle-orm';
import { type Database, queryRows } from '../../drizzle/client.js';
import type { ImportColumn } from '../../drizzle/tables.js';
import { cellSql, columnOf, customColumns, importedColumns } from './columns.js';
import { intArraySql, textArraySql } from './sql-lists.js';

/** Codes of row errors; documented in the schema's ImportRowErrorCode. */
export const ROW_ERROR_CODES = [
  'REQUIRED',
  'INVALID_EMAIL',
  'TOO_LONG',
  'DUPLICATE_IN_FILE',
  'REFERENCE_TAKEN',
  // Found by the reader (staged in import_rows.problems): see reader/cell-values.ts.
  'CELL_ERROR_VALUE',
  'FORMULA_WITHOUT_VALUE',
  'CELL_TOO_LONG',
] as const;

export const MAX_LENGTH = { email: 254, userName: 200, reference: 100, custom: 1000 } as const;

/**
 * Email syntax as real addresses look: the WHATWG (HTML) pattern, plus a dot in the domain and
 * the RFC 5321 length limits. It accepts `+` tags, dots and subdomains; it refuses spaces,
 * display names and a missing or bare domain. (z.email() refuses some valid addresses.)
 *
 * The pattern has no bounded repeats: Postgres's regex engine takes ~5 µs an address on the
 * HTML pattern's `{1,64}`/`{0,61}`, ten times this one. `invalidEmailSql` checks the lengths
 * (local part ≤ 64, each domain label ≤ 63) apart, and only for addresses long enough to break them.
 */
export const EMAIL_PATTERN =
  "^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$";

/** True when a (non-null) email breaks EMAIL_PATTERN or its length limits. */
export function invalidEmailSql(email: SQL): SQL {
  return sql`(${email} !~ ${EMAIL_PATTERN}::text
    or (length(${email}) > 64
      and (length(split_part(${email}, '@', 1)) > 64 or split_part(${email}, '@', 2) ~ '[^.]{64}')))`;
}

/**
 * Text in Unicode NFC. `normalize()` costs ~1.4 µs even on ASCII text (a third of a row's
 * validation); `is nfc normalized` answers most text from a quick check, so only text that is
 * not in NFC yet is normalized. Same result as `normalize(text, NFC)`.
 */
export const nfcSql = (text: SQL) =>
  sql`(case when ${text} is nfc normalized then ${text} else normalize(${text}, NFC) end)`;

/** The key a company's users are matched on: trimmed, NFC-normalized, lower case. */
export const emailKeySql = (email: ReturnType<typeof cellSql>) =>
  sql`lower(${nfcSql(sql`btrim(${email})`)})`;

type ErrorSql = ReturnType<typeof sql>;

/** One row error as jsonb: the column, the code, a message for people and the cell's value. */
function errorSql(
  column: ImportColumn,
  code: string,
  message: ErrorSql,
  value: SQL = cellSql(column),
) {
  return sql`jsonb_build_object('columnIndex', ${column.columnIndex}::int, 'code', ${code}::text, 'message', ${message}, 'value', ${value})`;
}

/**
 * Duplicates in the file, the one check that needs every row at once: in one statement,
 * records in import_row_duplicates each staged row whose email key or reference an earlier row
 * has, with that first row. The first row wins; later ones name it. A row that fails its own
 * checks (ownErrorsSql) takes no part: it is not imported, so it must not make a later valid
 * row with its email or reference a duplicate. The email key is the one the users' unique
 * index folds with (emailKeySql: the database's lower()). It only writes that table, so it can
 * run beside the range-by-range statements that check and preview the rows, on another
 * connection; `rowErrorsSql` reads it.
 *
 * The keys are computed once (a materialized CTE), grouped by hashing to find the keys that
 * repeat, and only the rows with such a key are checked (most files have none: the checks
 * would cost every row a regex match) and grouped again. As two window sorts of every row it
 * took 10.5-10.8 s at a million rows with 64 MB to sort in (spilling 213 MB to disk; an
 * INSERT's query runs without parallel workers); the hashing form 3.8-6.0 s with Postgres's
 * default 4 MB, its hashing spilling in partitions that fit.
 */
export async function findDuplicateRows(
  db: Database,
  session: { id: string; columns: ImportColumn[] },
): Promise<void> {
  const email = columnOf(session.columns, 'email');
  const reference = columnOf(session.columns, 'reference');
  await db.transaction(async (tx) => {
    await tx.execute(sql`delete from import_row_duplicates where session_id = ${session.id}`);
    await tx.execute(sql`
      insert into import_row_duplicates (session_id, row_number, first_email_row, first_reference_row)
      with keyed as materialized (
        select r.row_number, ${emailKeySql(cellSql(email))} as email_key, ${cellSql(reference)} as reference
        from import_rows r
        where r.session_id = ${session.id}
      ),
      repeated_email_keys as (
        select email_key from keyed where email_key is not null
        group by email_key having count(*) > 1
      ),
      repeated_reference_keys as (
        select reference from keyed where reference is not null
        group by reference having count(*) > 1
      ),
      candidates as materialized (
        select k.* from keyed k
        join import_rows r on r.session_id = ${session.id} and r.row_number = k.row_number
        where (k.email_key in (select email_key from repeated_email_keys)
            or k.reference in (select reference from repeated_reference_keys))
          and ${ownErrorsSql(session.columns)} is null
      ),
      repeated_emails as (
        select email_key, min(row_number) as first_row from candidates
        where email_key is not null
        group by email_key having count(*) > 1
      ),
      repeated_references as (
        select reference, min(row_number) as first_row from candidates
        where reference is not null
        group by reference having count(*) > 1
      )
      select ${session.id}::uuid, k.row_number,
        nullif(e.first_row, k.row_number), nullif(f.first_row, k.row_number)
      from candidates k
      left join repeated_emails e on e.email_key = k.email_key
      left join repeated_references f on f.reference = k.reference
      where e.first_row <> k.row_number or f.first_row <> k.row_number`);
  });
}

/**
 * findDuplicateRows range by range, for a walk over the rows in order (the embedded database,
 * where one statement over every row runs on the server's thread and holds up everything:
 * 0.8 s at 100k rows, with no progress meanwhile). The first row of each key among the rows
 * without errors of their own is kept in a temporary table as the walk goes; before a range's
 * previews are written (they read import_row_duplicates), its rows whose key an earlier row of
 * the file has are recorded there. The same rows as findDuplicateRows, since ranges come in
 * row order. It costs more than the one statement (the checks of a row run twice, and every
 * key goes into an index): validation of 100k rows on PGlite took 6.1 s instead of 3.5-3.8.
 */
export const rangeDuplicates = {
  /** Before the walk: no duplicates recorded, no keys seen. */
  async start(db: Database, sessionId: string): Promise<void> {
    await db.execute(sql`create temporary table if not exists muster_row_keys (
      session_id uuid not null, kind "char" not null, key text not null, first_row integer not null,
      primary key (session_id, kind, key))`);
    await db.execute(sql`delete from muster_row_keys where session_id = ${sessionId}`);
    await db.execute(sql`delete from import_row_duplicates where session_id = ${sessionId}`);
  },

  /** One range, after every earlier one and before its previews are written. */
  async mark(
    db: Database,
    session: { id: string; columns: ImportColumn[] },
    range: { from: number; to: number },
  ): Promise<void> {
    const email = columnOf(session.columns, 'email');
    const reference = columnOf(session.columns, 'reference');
    // `seen` reads the keys as the earlier ranges left them (the statement's own insert is not
    // visible to it): an earlier first row wins over this range's.
    await db.execute(sql`
      with keyed as materialized (
        select r.row_number, ${emailKeySql(cellSql(email))} as email_key, ${cellSql(reference)} as reference
        from import_rows r
        where r.session_id = ${session.id}
          and r.row_number between ${range.from}::int and ${range.to}::int
          and ${ownErrorsSql(session.columns)} is null
      ),
      range_firsts as materialized (
        select kind, key, min(row_number) as first_row
        from (
          select 'e'::"char" as kind, email_key as key, row_number from keyed where email_key is not null
          union all
          select 'r'::"char", reference, row_number from keyed where reference is not null
        ) keys
        group by kind, key
      ),
      recorded as (
        insert into muster_row_keys (session_id, kind, key, first_row)
        select ${session.id}::uuid, kind, key, first_row from range_firsts
        on conflict do nothing
      ),
      firsts as (
        select f.kind, f.key, coalesce(seen.first_row, f.first_row) as first_row
        from range_firsts f
        left join muster_row_keys seen
          on seen.session_id = ${session.id} and seen.kind = f.kind and seen.key = f.key
      )
      insert into import_row_duplicates (session_id, row_number, first_email_row, first_reference_row)
      select ${session.id}::uuid, k.row_number,
        nullif(e.first_row, k.row_number), nullif(f.first_row, k.row_number)
      from keyed k
      left join firsts e on e.kind = 'e' and e.key = k.email_key
      left join firsts f on f.kind = 'r' and f.key = k.reference
      where e.first_row <> k.row_number or f.first_row <> k.row_number`);
  },

  /** After the walk. */
  async end(db: Database, sessionId: string): Promise<void> {
    await db.execute(sql`delete from muster_row_keys where session_id = ${sessionId}`);
  },
};

/** The rows an edit touched: by number, and by their email keys and references before and after. */
export interface TouchedKeys {
  rowNumbers: number[];
  emails: string[];
  references: string[];
}

/**
 * findDuplicateRows for the rows an edit touched (updateImportRows, a replace): the edited rows
 * and every row sharing an email key or reference with them before or after the edit, found in
 * one pass over the file; their duplicates are worked out here (they are few) as
 * findDuplicateRows does: among rows without errors of their own, the first of each key is the
 * original. A key no edited row had or has keeps what the table says of it. Returns the rows
 * found, whose preview is then written again.
 */
export async function findDuplicateRowsAmong(
  tx: Database,
  session: { id: string; columns: ImportColumn[] },
  touched: TouchedKeys,
): Promise<number[]> {
  const email = columnOf(session.columns, 'email');
  const reference = columnOf(session.columns, 'reference');
  const rows = await queryRows<{
    row_number: number;
    email_key: string | null;
    reference: string | null;
    clean: boolean;
    first_email_row: number | null;
    first_reference_row: number | null;
  }>(
    tx,
    sql`select r.row_number, k.email_key, k.reference, ${ownErrorsSql(session.columns)} is null as clean,
          d.first_email_row, d.first_reference_row
        from import_rows r
        cross join lateral (select ${emailKeySql(cellSql(email))} as email_key,
          ${cellSql(reference)} as reference) k
        ${duplicatesJoinSql()}
        where r.session_id = ${session.id}
          and (r.row_number = any(${intArraySql(touched.rowNumbers)})
            or k.email_key = any(${textArraySql(touched.emails)})
            or k.reference = any(${textArraySql(touched.references)}))`,
  );
  const firstRows = (key: 'email_key' | 'reference', wanted: Set<string>) => {
    const seen = new Map<string, { first: number; count: number }>();
    for (const row of rows) {
      const value = row[key];
      if (!row.clean || value === null || !wanted.has(value)) continue;
      const entry = seen.get(value);
      if (entry) {
        entry.count++;
        entry.first = Math.min(entry.first, row.row_number);
      } else {
        seen.set(value, { first: row.row_number, count: 1 });
      }
    }
    return new Map([...seen].filter(([, entry]) => entry.count > 1).map(([v, e]) => [v, e.first]));
  };
  const emails = new Set(touched.emails);
  const references = new Set(touched.references);
  const firstEmails = firstRows('email_key', emails);
  const firstReferences = firstRows('reference', references);
  const firstOf = (
    first: Map<string, number>,
    wanted: Set<string>,
    value: string | null,
    row: number,
    recorded: number | null,
  ) => {
    if (value === null) return null;
    if (!wanted.has(value)) return recorded;
    const found = first.get(value);
    return found === undefined || found === row ? null : found;
  };
  const duplicates = rows.flatMap((row) => {
    if (!row.clean) return [];
    const firstEmailRow = firstOf(
      firstEmails,
      emails,
      row.email_key,
      row.row_number,
      row.first_email_row,
    );
    const firstReferenceRow = firstOf(
      firstReferences,
      references,
      row.reference,
      row.row_number,
      row.first_reference_row,
    );
    return firstEmailRow === null && firstReferenceRow === null
      ? []
      : [
          {
            row_number: row.row_number,
            first_email_row: firstEmailRow,
            first_reference_row: firstReferenceRow,
          },
        ];
  });
  const found = rows.map((row) => row.row_number);
  await tx.execute(
    sql`delete from import_row_duplicates
        where session_id = ${session.id} and row_number = any(${intArraySql(found)})`,
  );
  if (duplicates.length > 0) {
    await tx.execute(sql`
      insert into import_row_duplicates (session_id, row_number, first_email_row, first_reference_row)
      select ${session.id}::uuid, x.row_number, x.first_email_row, x.first_reference_row
      from jsonb_to_recordset(${JSON.stringify(duplicates)}::text::jsonb)
        as x(row_number int, first_email_row int, first_reference_row int)`);
  }
  return found;
}

/**
 * A staged row `r`'s own checks, each a jsonb error or null: required cells, email syntax,
 * lengths. What it cannot know alone (duplicates, taken references) is in rowErrorsSql.
 */
function ownChecksSql(columns: ImportColumn[]): SQL[] {
  const email = columnOf(columns, 'email');
  const userName = columnOf(columns, 'userName');
  const reference = columnOf(columns, 'reference');
  // A cell the reader could not read is blank in `cells`: its own error says why, not REQUIRED.
  const required = (column: ImportColumn) =>
    sql`case when ${cellSql(column)} is null and ${problemAt(column)} is null then ${errorSql(column, 'REQUIRED', sql`${`${column.header} is required.`}::text`)} end`;
  // The value kept with the error is cut at the limit: previews must not copy long texts.
  const tooLong = (column: ImportColumn, max: number) =>
    sql`case when length(${cellSql(column)}) > ${max}::int then ${errorSql(column, 'TOO_LONG', sql`${`${column.header} is longer than ${max} characters.`}::text`, sql`left(${cellSql(column)}, ${max}::int)`)} end`;
  return [
    required(email),
    sql`case when ${cellSql(email)} is not null and length(${cellSql(email)}) <= ${MAX_LENGTH.email}::int and ${invalidEmailSql(cellSql(email))}
      then ${errorSql(email, 'INVALID_EMAIL', sql`${cellSql(email)} || ' is not a valid email address.'`)} end`,
    tooLong(email, MAX_LENGTH.email),
    required(userName),
    tooLong(userName, MAX_LENGTH.userName),
    required(reference),
    tooLong(reference, MAX_LENGTH.reference),
    ...customColumns(columns).map((column) => tooLong(column, MAX_LENGTH.custom)),
  ];
}

/** A staged row `r`'s own errors as jsonb, null when it passes them all. */
function ownErrorsSql(columns: ImportColumn[]): SQL {
  return sql`nullif(to_jsonb(array_remove(array[${sql.join(ownChecksSql(columns), sql`, `)}]::jsonb[], null)), '[]'::jsonb)`;
}

/**
 * Joins to a staged row `r` what findDuplicateRows recorded of it, as `d` (`d.first_email_row`
 * and `d.first_reference_row`, null when the row repeats nothing).
 */
export function duplicatesJoinSql(): SQL {
  return sql`left join import_row_duplicates d
    on d.session_id = r.session_id and d.row_number = r.row_number`;
}

/**
 * Stage 3's errors of a staged row `r` (jsonb, null when valid): its own checks (required,
 * email syntax, lengths), duplicates of an earlier row (`r.first_email_row` and
 * `r.first_reference_row`, from duplicatesJoinSql), and a reference that belongs to another
 * of the company's users.
 */
export function rowErrorsSql(session: { companyId: string; columns: ImportColumn[] }): SQL {
  const email = columnOf(session.columns, 'email');
  const reference = columnOf(session.columns, 'reference');
  const ownChecks = ownChecksSql(session.columns);
  const duplicates = [
    sql`case when r.first_email_row is not null then ${errorSql(email, 'DUPLICATE_IN_FILE', sql`'The email ' || ${cellSql(email)} || ' is already in row ' || r.first_email_row || '; only that row is imported.'`)} end`,
    sql`case when r.first_reference_row is not null then ${errorSql(reference, 'DUPLICATE_IN_FILE', sql`'The reference ' || ${cellSql(reference)} || ' is already in row ' || r.first_reference_row || '; only that row is imported.'`)} end`,
  ];
  const referenceTaken = sql`(
    select jsonb_build_array(${errorSql(reference, 'REFERENCE_TAKEN', sql`'The reference ' || ${cellSql(reference)} || ' belongs to another user (' || taken.email || ').'`)})
    from users taken
    where taken.company_id = ${session.companyId}
      and taken.reference = ${cellSql(reference)}
      and lower(taken.email) is distinct from ${emailKeySql(cellSql(email))}
  )`;
  return sql`nullif(
    to_jsonb(array_remove(array[${sql.join([...ownChecks, ...duplicates], sql`, `)}]::jsonb[], null))
      || coalesce(${referenceTaken}, '[]'::jsonb)
      || ${cellProblemsSql(session.columns)},
    '[]'::jsonb)`;
}

/** The reader's problem with an imported column's cell (jsonb), null when it has none. */
function problemAt(column: ImportColumn): SQL {
  return sql`(case when r.problems is not null then jsonb_path_query_first(r.problems, ${`$[*] ? (@.columnIndex == ${column.columnIndex})`}::jsonpath) end)`;
}

/**
 * The reader's problems with the cells of imported columns (import_rows.problems: an error
 * value, a formula without a value, text too long), already in the shape of row errors; a
 * column that is not imported does not matter.
 */
function cellProblemsSql(columns: ImportColumn[]): SQL {
  const indexes = importedColumns(columns).map((column) => column.columnIndex);
  return sql`(case when r.problems is null then '[]'::jsonb else coalesce((
    select jsonb_agg(problem) from jsonb_array_elements(r.problems) problem
    where (problem ->> 'columnIndex')::int = any(${`{${indexes.join(',')}}`}::int[])
  ), '[]'::jsonb) end)`;
}

/** How many of the session's previewed rows are valid and how many have errors. */
export async function countRows(
  db: Database,
  sessionId: string,
): Promise<{ valid: number; invalid: number }> {
  const [counts] = await queryRows<{ valid: number; invalid: number }>(
    db,
    sql`select count(*) filter (where errors is null)::int as valid,
               count(*) filter (where errors is not null)::int as invalid
        from import_row_previews where session_id = ${sessionId}`,
  );
  return counts ?? { valid: 0, invalid: 0 };
}
