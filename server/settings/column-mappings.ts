import { and, asc, eq, sql } from 'drizzle-orm';
import type { Database } from '../../drizzle/client.js';
import { columnMappings } from '../../drizzle/tables.js';
import { NotFoundError } from '../errors.js';
import { headerKey } from '../import/column-aliases.js';

export type ColumnMapping = typeof columnMappings.$inferSelect;

/** The company's remembered header → field mappings, by header. */
export async function listColumnMappings(
  db: Database,
  companyId: string,
): Promise<ColumnMapping[]> {
  return db
    .select()
    .from(columnMappings)
    .where(eq(columnMappings.companyId, companyId))
    .orderBy(asc(columnMappings.headerKey), asc(columnMappings.id));
}

/**
 * Remembers what the admin mapped at stage 2, so that the next file with the same header (as
 * headerKey compares them) gets it matched. A header mapped again replaces what it had.
 */
export async function rememberColumnMappings(
  db: Database,
  companyId: string,
  mappings: { header: string; fieldKey: string }[],
): Promise<void> {
  const byKey = new Map(mappings.map((mapping) => [headerKey(mapping.header), mapping]));
  byKey.delete('');
  if (byKey.size === 0) return;
  await db
    .insert(columnMappings)
    .values(
      [...byKey].map(([key, mapping]) => ({
        companyId,
        header: mapping.header,
        headerKey: key,
        fieldKey: mapping.fieldKey,
      })),
    )
    .onConflictDoUpdate({
      target: [columnMappings.companyId, columnMappings.headerKey],
      set: {
        header: sql`excluded.header`,
        fieldKey: sql`excluded.field_key`,
        updatedAt: sql`now()`,
      },
    });
}

/** Forgets one remembered mapping; the next file with its header asks again. */
export async function deleteColumnMapping(
  db: Database,
  companyId: string,
  id: string,
): Promise<ColumnMapping> {
  const [deleted] = await db
    .delete(columnMappings)
    .where(and(eq(columnMappings.companyId, companyId), eq(columnMappings.id, id)))
    .returning();
  if (!deleted) throw new NotFoundError('column mapping', id);
  return deleted;
}
