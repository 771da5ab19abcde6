import { sql } from 'drizzle-orm';
import { type Database, queryRows } from '../../drizzle/client.js';
import type { ImportColumn } from '../../drizzle/tables.js';
import { cellSql, columnOf, customColumns } from './columns.js';

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
 */
export const EMAIL_PATTERN =
  "^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$";

/** The key a company's users are matched on: trimmed, NFC-normalized, lower case. */
export const emailKeySql = (email: ReturnType<typeof cellSql>) =>
  sql`lower(normalize(btrim(${email}), NFC))`;

/**
 * Stage 3: writes each staged row's errors (null when valid) in set-based statements and
 * returns the counts. Duplicates in the file: the first row wins, later ones name it.
 */
export async function validateRows(
  db: Database,
  session: { id: string; companyId: string; columns: ImportColumn[] },
): Promise<{ valid: number; invalid: number }> {
  const email = columnOf(session.columns, 'email');
  const userName = columnOf(session.columns, 'userName');
  const reference = columnOf(session.columns, 'reference');
  const error = (
    column: ImportColumn,
    code: string,
    message: ReturnType<typeof sql>,
    value = cellSql(column),
  ) =>
    sql`jsonb_build_object('columnIndex', ${column.columnIndex}::int, 'code', ${code}::text, 'message', ${message}, 'value', ${value})`;
  const required = (column: ImportColumn) =>
    sql`case when ${cellSql(column)} is null then ${error(column, 'REQUIRED', sql`${`${column.header} is required.`}::text`)} end`;
  const tooLong = (column: ImportColumn, max: number) =>
    sql`case when length(${cellSql(column)}) > ${max}::int then ${error(column, 'TOO_LONG', sql`${`${column.header} is longer than ${max} characters.`}::text`)} end`;

  const checks = [
    required(email),
    sql`case when ${cellSql(email)} is not null and length(${cellSql(email)}) <= ${MAX_LENGTH.email}::int and ${cellSql(email)} !~ ${EMAIL_PATTERN}::text
      then ${error(email, 'INVALID_EMAIL', sql`${cellSql(email)} || ' is not a valid email address.'`)} end`,
    tooLong(email, MAX_LENGTH.email),
    required(userName),
    tooLong(userName, MAX_LENGTH.userName),
    required(reference),
    tooLong(reference, MAX_LENGTH.reference),
    ...customColumns(session.columns).map((column) => tooLong(column, MAX_LENGTH.custom)),
    sql`case when d.first_email_row is not null
      then ${error(email, 'DUPLICATE_IN_FILE', sql`'The email ' || ${cellSql(email)} || ' is already in row ' || d.first_email_row || '; only that row is imported.'`)} end`,
    sql`case when d.first_reference_row is not null
      then ${error(reference, 'DUPLICATE_IN_FILE', sql`'The reference ' || ${cellSql(reference)} || ' is already in row ' || d.first_reference_row || '; only that row is imported.'`)} end`,
    sql`case when taken.reference is not null
      then ${error(reference, 'REFERENCE_TAKEN', sql`'The reference ' || ${cellSql(reference)} || ' belongs to another user (' || taken.email || ').'`)} end`,
  ];

  await db.execute(sql`
    with keyed as (
      select r.row_number,
        ${emailKeySql(cellSql(email))} as email_key,
        ${cellSql(reference)} as reference
      from import_rows r
      where r.session_id = ${session.id}
    ),
    duplicates as (
      select row_number,
        case when email_key is not null and row_number <> min(row_number) over (partition by email_key)
          then min(row_number) over (partition by email_key) end as first_email_row,
        case when reference is not null and row_number <> min(row_number) over (partition by reference)
          then min(row_number) over (partition by reference) end as first_reference_row
      from keyed
    ),
    checked as (
      select r.row_number, r.errors as old_errors, r.action as old_action,
        array_remove(array[${sql.join(checks, sql`, `)}]::jsonb[], null) as errors
      from import_rows r
      join duplicates d on d.row_number = r.row_number
      left join users taken
        on taken.company_id = ${session.companyId}
        and taken.reference = ${cellSql(reference)}
        and lower(taken.email) is distinct from ${emailKeySql(cellSql(email))}
      where r.session_id = ${session.id}
    ),
    labelled as (
      select row_number, old_errors, old_action,
        case when cardinality(errors) = 0 then null else to_jsonb(errors) end as errors,
        case when cardinality(errors) = 0 then null else 'SKIP' end as action
      from checked
    )
    update import_rows r
    set errors = labelled.errors, action = labelled.action
    from labelled
    where r.session_id = ${session.id} and r.row_number = labelled.row_number
      -- Most rows are valid and staged without errors: leave them unwritten.
      and (labelled.old_errors is distinct from labelled.errors
        or labelled.old_action is distinct from labelled.action)`);

  const [counts] = await queryRows<{ valid: number; invalid: number }>(
    db,
    sql`select count(*) filter (where errors is null)::int as valid,
               count(*) filter (where errors is not null)::int as invalid
        from import_rows where session_id = ${session.id}`,
  );
  return counts ?? { valid: 0, invalid: 0 };
}
