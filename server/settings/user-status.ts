import { and, eq, inArray, sql } from 'drizzle-orm';
import type { Database } from '../../drizzle/client.js';
import { users } from '../../drizzle/tables.js';
import { NotFoundError } from '../errors.js';
import { bumpUsersVersion, lockCompanyForChange } from '../import/preview-basis.js';
import type { User } from './users.js';

export type UserStatus = User['status'];

/**
 * Archives or restores users of a company by id, all or none: an id that names no user of the
 * company is a NotFoundError and changes nothing. A user already in the wanted status is left
 * as it is (its archivedAt keeps the first archiving). Open import previews see the change
 * (the users version moves), so a SYNC in review counts the users again.
 */
export async function setUsersStatus(
  db: Database,
  companyId: string,
  userIds: string[],
  status: UserStatus,
): Promise<User[]> {
  const ids = [...new Set(userIds)];
  return db.transaction(async (tx) => {
    await lockCompanyForChange(tx, companyId);
    const found = await tx
      .select({ id: users.id })
      .from(users)
      .where(and(eq(users.companyId, companyId), inArray(users.id, ids)))
      .for('update');
    const missing = ids.find((id) => !found.some((user) => user.id === id));
    if (missing) throw new NotFoundError('user', missing);
    const changed = await tx
      .update(users)
      .set({
        status,
        archivedAt: status === 'ARCHIVED' ? sql`now()` : null,
        updatedAt: sql`now()`,
      })
      .where(
        and(
          eq(users.companyId, companyId),
          inArray(users.id, ids),
          sql`${users.status} <> ${status}`,
        ),
      )
      .returning({ id: users.id });
    if (changed.length > 0) await bumpUsersVersion(tx, companyId);
    return tx
      .select()
      .from(users)
      .where(and(eq(users.companyId, companyId), inArray(users.id, ids)));
  });
}

export const archiveUsers = (db: Database, companyId: string, userIds: string[]) =>
  setUsersStatus(db, companyId, userIds, 'ARCHIVED');

export const restoreUsers = (db: Database, companyId: string, userIds: string[]) =>
  setUsersStatus(db, companyId, userIds, 'ACTIVE');
