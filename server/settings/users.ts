import { and, asc, eq, gt, inArray, or, type SQL, sql } from 'drizzle-orm';
import type { Database } from '../../drizzle/client.js';
import { users } from '../../drizzle/tables.js';

export type User = typeof users.$inferSelect;

/** Position of a user in the list: ordered by email ignoring case, then id. */
export interface UserCursor {
  email: string;
  id: string;
}

/** Users whose email, userName or reference contains the text, ignoring case. */
function searchCondition(search: string | null | undefined): SQL | undefined {
  const text = search?.trim();
  if (!text) return undefined;
  const pattern = `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  return or(
    sql`${users.email} ilike ${pattern}`,
    sql`${users.userName} ilike ${pattern}`,
    sql`${users.reference} ilike ${pattern}`,
  );
}

/** How many users of the company the search selects (all without one), in a status (default ACTIVE). */
export async function countUsers(
  db: Database,
  companyId: string,
  search?: string | null,
  status: User['status'] | null = 'ACTIVE',
): Promise<number> {
  return db.$count(
    users,
    and(
      eq(users.companyId, companyId),
      status ? eq(users.status, status) : undefined,
      searchCondition(search),
    ),
  );
}

/** One page of a company's users by keyset (never OFFSET), with an optional text search. */
export async function listUsersPage(
  db: Database,
  companyId: string,
  options: {
    limit: number;
    after?: UserCursor | null;
    search?: string | null;
    /** Only users in this status (default ACTIVE); null: every user. */
    status?: User['status'] | null;
  },
): Promise<{ users: User[]; hasNextPage: boolean }> {
  const conditions = [eq(users.companyId, companyId)];
  const status = options.status === undefined ? 'ACTIVE' : options.status;
  if (status) conditions.push(eq(users.status, status));
  const matches = searchCondition(options.search);
  if (matches) conditions.push(matches);
  if (options.after) {
    const after = or(
      gt(sql`lower(${users.email})`, options.after.email),
      and(eq(sql`lower(${users.email})`, options.after.email), gt(users.id, options.after.id)),
    );
    if (after) conditions.push(after);
  }
  const rows = await db
    .select()
    .from(users)
    .where(and(...conditions))
    .orderBy(asc(sql`lower(${users.email})`), asc(users.id))
    .limit(options.limit + 1);
  return { users: rows.slice(0, options.limit), hasNextPage: rows.length > options.limit };
}

export async function findUsersByIds(db: Database, companyId: string, ids: string[]) {
  if (ids.length === 0) return [];
  return db
    .select()
    .from(users)
    .where(and(eq(users.companyId, companyId), inArray(users.id, ids)));
}
