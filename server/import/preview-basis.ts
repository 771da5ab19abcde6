import { eq, sql } from 'drizzle-orm';
import { type Database, queryRows } from '../../drizzle/client.js';
import { companies, type PreviewBasis } from '../../drizzle/tables.js';

/**
 * What a staged preview (rows' actions, groups) was computed from, so that the commit can tell
 * whether it still holds. The users side is a version number bumped in the same transaction
 * as every change to a company's users; the rules side a fingerprint of the rules themselves.
 * Reading the version *before* computing makes a change that lands meanwhile look newer,
 * so the worst case is a needless recompute, never a stale preview committed.
 */

export async function currentUsersVersion(db: Database, companyId: string): Promise<number> {
  const [company] = await db
    .select({ usersVersion: companies.usersVersion })
    .from(companies)
    .where(eq(companies.id, companyId));
  return company?.usersVersion ?? 0;
}

/** Marks the company's users changed: previews computed before are recomputed at commit. */
export async function bumpUsersVersion(db: Database, companyId: string): Promise<void> {
  await db
    .update(companies)
    .set({ usersVersion: sql`${companies.usersVersion} + 1` })
    .where(eq(companies.id, companyId));
}

/** A digest of everything about the company's rules that decides a group, in rule order. */
export async function currentRulesHash(db: Database, companyId: string): Promise<string> {
  const [row] = await queryRows<{ hash: string }>(
    db,
    sql`select md5(coalesce(string_agg(
          concat_ws('|', id, position, field_key, operator, value, training_group_id), E'\\n'
          order by position), '')) as hash
        from distribution_rules where company_id = ${companyId}`,
  );
  return row?.hash ?? '';
}

/** Whether a preview computed from `basis` still describes the users and rules as they are. */
export async function previewHolds(
  db: Database,
  companyId: string,
  basis: PreviewBasis | null,
): Promise<boolean> {
  if (!basis || basis.rulesHash === null) return false;
  if (basis.usersVersion !== (await currentUsersVersion(db, companyId))) return false;
  return basis.rulesHash === (await currentRulesHash(db, companyId));
}
