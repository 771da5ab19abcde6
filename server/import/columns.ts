import { type SQL, sql } from 'drizzle-orm';
import type { ImportColumn } from '../../drizzle/tables.js';

/** Columns whose values are imported: matched or mapped to a field, or added as a new one. */
export function importedColumns(columns: ImportColumn[]): (ImportColumn & { fieldKey: string })[] {
  return columns.filter(
    (column): column is ImportColumn & { fieldKey: string } =>
      column.fieldKey !== null &&
      (column.status === 'MATCHED' || column.status === 'MAPPED' || column.status === 'ADDED'),
  );
}

/** The column of a field in this import; every session has the three built-ins. */
export function columnOf(columns: ImportColumn[], fieldKey: string): ImportColumn {
  const column = importedColumns(columns).find((candidate) => candidate.fieldKey === fieldKey);
  if (!column) throw new Error(`import has no column for ${fieldKey}`);
  return column;
}

/** SQL for a staged cell's text (null when blank), from `import_rows` aliased `r`. */
export function cellSql(column: ImportColumn): SQL {
  return sql`(r.cells ->> ${sql.raw(String(column.columnIndex))})`;
}

/** Custom field keys and their columns (the built-ins are columns of their own). */
export function customColumns(columns: ImportColumn[]): (ImportColumn & { fieldKey: string })[] {
  const builtIns = new Set(['email', 'userName', 'reference']);
  return importedColumns(columns).filter((column) => !builtIns.has(column.fieldKey));
}

/** Custom values of a row as jsonb, blank cells left out (an empty cell never clears a value). */
export function customValuesSql(columns: ImportColumn[]): SQL {
  const custom = customColumns(columns);
  if (custom.length === 0) return sql`'{}'::jsonb`;
  // Arrays rather than jsonb_build_object, which takes at most 100 arguments.
  const keys = custom.map((column) => sql`${column.fieldKey}::text`);
  const values = custom.map((column) => cellSql(column));
  return sql`jsonb_strip_nulls(jsonb_object(array[${sql.join(keys, sql`, `)}], array[${sql.join(values, sql`, `)}]::text[]))`;
}
