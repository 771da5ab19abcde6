import { sql } from 'drizzle-orm';
import type { Database } from '../../drizzle/client.js';
import { companies } from '../../drizzle/tables.js';
import { createCompany } from './auth.js';

export const DEFAULT_COMPANY_NAME = 'Default company';

/**
 * On an empty database: creates the default company and its ADMIN token (the given one, or a
 * random one) and returns it. Returns null when any company exists. Safe when two processes
 * start at once: the check and the insert run under one advisory lock.
 */
export async function bootstrapDefaultCompany(
  db: Database,
  token?: string,
): Promise<{ companyId: string; token: string } | null> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(hashtext('muster.bootstrap'))`);
    const [any] = await tx.select({ id: companies.id }).from(companies).limit(1);
    if (any) return null;
    const created = await createCompany(tx, DEFAULT_COMPANY_NAME, { token });
    return { companyId: created.companyId, token: created.token };
  });
}
