import { type SQL, sql } from 'drizzle-orm';
import { type Database, queryRows } from '../../drizzle/client.js';
import type { ImportColumn } from '../../drizzle/tables.js';
import { cellSql, columnOf, customColumns } from './columns.js';
import type { RowRange } from './row-ranges.js';

/** Codes of row errors; documented in the schema's ImportRowErrorCode. */
export const ROW_ERROR_CODES = [
  'REQUIRED',
  'INVALID_EMAIL',
  'TOO_LONG',
  'DUPLICATE_IN_FILE',
  'REFERENCE_TAKEN',
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

/** The key a company's users are matched on: trimmed, NFC-normalized, lower case. */
export const emailKeySql = (email: ReturnType<typeof cellSql>) =>
  sql`lower(normalize(btrim(${email}), NFC))`;

type ErrorSql = ReturnType<typeof sql>;

/** One row error as jsonb: the column, the code, a message for people and the cell's value. */
function errorSql(column: ImportColumn, code: string, message: ErrorSql, value = cellSql(column)) {
  return sql`jsonb_build_object('columnIndex', ${column.columnIndex}::int, 'code', ${code}::text, 'message', ${message}, 'value', ${value})`;
}

/**
 * Columns of the staged row `r` (import_rows) that the duplicate check needs: its email key
 * and reference, stored on the row as `email_key` and `reference_key`.
 */
export function rowKeysSql(columns: ImportColumn[]): SQL {
  return sql`${emailKeySql(cellSql(columnOf(columns, 'email')))} as email_key,
    ${cellSql(columnOf(columns, 'reference'))} as reference_key`;
}

/**
 * For each row of `keyed` (a query or CTE of rows with `row_number`, `email_key` and `reference_key`, as
 * rowKeysSql gives them), the first row of the file with the same email key and with the same
 * reference, when that is an earlier row (`first_email_row`, `first_reference_row`; null
 * otherwise): the first row wins, later ones are DUPLICATE_IN_FILE.
 *
 * `keyed` holds the rows of one range in order. Earlier rows outside it are found by the
 * indexes on the keys that the ranges before stored (`import_rows.email_key`,
 * `reference_key`); rows inside it, by a window over the range. So the check runs range by
 * range, as the rest of validation, instead of sorting every row of the file in one statement.
 */
export function firstRowsSql(sessionId: string, keyed: SQL, range?: RowRange): SQL {
  const earlier = (key: 'email_key' | 'reference_key') =>
    range
      ? sql`(select min(e.row_number) from import_rows e
             where e.session_id = ${sessionId} and e.${sql.raw(key)} = k.${sql.raw(key)}
               and e.row_number < ${range.from}::int)`
      : sql`null::int`;
  const first = (key: 'email_key' | 'reference_key') =>
    sql`case when k.${sql.raw(key)} is not null then
      nullif(least(min(k.row_number) over (partition by k.${sql.raw(key)}), ${earlier(key)}), k.row_number) end`;
  return sql`select k.*, ${first('email_key')} as first_email_row,
    ${first('reference_key')} as first_reference_row
    from ${keyed} k`;
}

/**
 * Stage 3's errors of a staged row `r` (jsonb, null when valid): its own checks (required,
 * email syntax, lengths), duplicates of an earlier row (`r.first_email_row` and
 * `r.first_reference_row`, from firstRowsSql), and a reference that belongs to another of the
 * company's users.
 */
export function rowErrorsSql(session: { companyId: string; columns: ImportColumn[] }): SQL {
  const email = columnOf(session.columns, 'email');
  const userName = columnOf(session.columns, 'userName');
  const reference = columnOf(session.columns, 'reference');
  const required = (column: ImportColumn) =>
    sql`case when ${cellSql(column)} is null then ${errorSql(column, 'REQUIRED', sql`${`${column.header} is required.`}::text`)} end`;
  const tooLong = (column: ImportColumn, max: number) =>
    sql`case when length(${cellSql(column)}) > ${max}::int then ${errorSql(column, 'TOO_LONG', sql`${`${column.header} is longer than ${max} characters.`}::text`)} end`;
  const ownChecks = [
    required(email),
    sql`case when ${cellSql(email)} is not null and length(${cellSql(email)}) <= ${MAX_LENGTH.email}::int and ${invalidEmailSql(cellSql(email))}
      then ${errorSql(email, 'INVALID_EMAIL', sql`${cellSql(email)} || ' is not a valid email address.'`)} end`,
    tooLong(email, MAX_LENGTH.email),
    required(userName),
    tooLong(userName, MAX_LENGTH.userName),
    required(reference),
    tooLong(reference, MAX_LENGTH.reference),
    ...customColumns(session.columns).map((column) => tooLong(column, MAX_LENGTH.custom)),
  ];
  const duplicates = [
    sql`case when r.first_email_row is not null then ${errorSql(email, 'DUPLICATE_IN_FILE', sql`'The email ' || ${cellSql(email)} || ' is already in row ' || r.first_email_row || '; only that row is imported.'`)} end`,
    sql`case when r.first_reference_row is not null then ${errorSql(reference, 'DUPLICATE_IN_FILE', sql`'The reference ' || ${cellSql(reference)} || ' is already in row ' || r.first_reference_row || '; only that row is imported.'`)} end`,
  ];
  const referenceTaken = sql`(
    select jsonb_build_array(${errorSql(reference, 'REFERENCE_TAKEN', sql`'The reference ' || ${cellSql(reference)} || ' belongs to another user (' || taken.email || ').'`)})
    from users taken
    where taken.company_id = ${session.companyId}
      and taken.reference = ${cellSql(reference)}
      and lower(taken.email) is distinct from r.email_key
  )`;
  return sql`nullif(
    to_jsonb(array_remove(array[${sql.join([...ownChecks, ...duplicates], sql`, `)}]::jsonb[], null))
      || coalesce(${referenceTaken}, '[]'::jsonb),
    '[]'::jsonb)`;
}

/** How many of the session's staged rows are valid and how many have errors. */
export async function countRows(
  db: Database,
  sessionId: string,
): Promise<{ valid: number; invalid: number }> {
  const [counts] = await queryRows<{ valid: number; invalid: number }>(
    db,
    sql`select count(*) filter (where errors is null)::int as valid,
               count(*) filter (where errors is not null)::int as invalid
        from import_rows where session_id = ${sessionId}`,
  );
  return counts ?? { valid: 0, invalid: 0 };
}
