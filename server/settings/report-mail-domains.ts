import { eq, sql } from 'drizzle-orm';
import type { Database } from '../../drizzle/client.js';
import { companies, users } from '../../drizzle/tables.js';

/** The most domains a company may list: enough for its own, few enough to read at a glance. */
export const MAX_REPORT_MAIL_DOMAINS = 50;

export interface ReportMailDomains {
  /** The domains report mail may go to, sorted. */
  domains: string[];
  /** True when an ADMIN set them; false when they are the company's users' domains. */
  custom: boolean;
}

/**
 * The domains a company's report mail may go to: those an ADMIN set, or else (by default, so
 * nothing changes for a company that never set any) those of its own users' emails. Mail from
 * the service is then never a way to reach an address the company did not choose.
 */
export async function reportMailDomains(
  db: Database,
  companyId: string,
): Promise<ReportMailDomains> {
  const [company] = await db
    .select({ domains: companies.reportMailDomains })
    .from(companies)
    .where(eq(companies.id, companyId));
  if (company?.domains) return { domains: [...company.domains].sort(), custom: true };
  const rows = await db
    .selectDistinct({ domain: sql<string>`lower(split_part(${users.email}, '@', 2))` })
    .from(users)
    .where(eq(users.companyId, companyId));
  return { domains: rows.map((row) => row.domain).sort(), custom: false };
}

/**
 * Sets the domains report mail may go to (already checked: lower-case host names, at most
 * MAX_REPORT_MAIL_DOMAINS), or with null goes back to the company's users' domains. An empty
 * list allows no report mail at all.
 */
export async function setReportMailDomains(
  db: Database,
  companyId: string,
  domains: string[] | null,
): Promise<ReportMailDomains> {
  const stored = domains === null ? null : [...new Set(domains)].sort();
  await db.update(companies).set({ reportMailDomains: stored }).where(eq(companies.id, companyId));
  return reportMailDomains(db, companyId);
}
