import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { companies, trainingGroups, users } from '../../drizzle/tables.js';
import { createCompany } from '../../server/infrastructure/auth.js';
import { createTestDatabase } from '../support/database.js';

/**
 * A user's company and training group must exist, as foreign keys would have it, but checked
 * once a statement by triggers (migration users_references_by_statement). How the checks lock
 * what they read, between connections, is in test/settings/user-reference-locks.postgres.test.ts.
 */

let database: Awaited<ReturnType<typeof createTestDatabase>>;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database.close();
});

const unknownId = '00000000-0000-4000-8000-00000000dead';

async function companyWithGroup(name: string) {
  const { companyId } = await createCompany(database.db, name);
  const [group] = await database.db
    .insert(trainingGroups)
    .values({ companyId, name: 'Group' })
    .returning({ id: trainingGroups.id });
  return { companyId, groupId: group?.id as string };
}

function user(companyId: string, index: number, trainingGroupId: string | null = null) {
  return {
    companyId,
    email: `user${index}@example.com`,
    userName: `User ${index}`,
    reference: `R${index}`,
    trainingGroupId,
  };
}

/** The driver's error code under drizzle's wrapping. */
async function errorOf(promise: Promise<unknown>): Promise<{ code?: string; detail?: string }> {
  try {
    await promise;
  } catch (error) {
    for (let current = error; current instanceof Object; current = (current as Error).cause) {
      const { code, detail } = current as { code?: string; detail?: string };
      if (code) return { code, detail };
    }
    throw error;
  }
  throw new Error('the statement succeeded');
}

async function usersOf(companyId: string) {
  return database.db
    .select({ email: users.email, trainingGroupId: users.trainingGroupId })
    .from(users)
    .where(eq(users.companyId, companyId))
    .orderBy(users.email);
}

describe("a user's references", () => {
  it('refuses a user of a company that does not exist, with the foreign-key error', async () => {
    expect(await errorOf(database.db.insert(users).values(user(unknownId, 1)))).toEqual({
      code: '23503',
      detail: `Key (company_id)=(${unknownId}) is not present in table "companies".`,
    });
  });

  it('refuses a whole statement when one row names a group that does not exist', async () => {
    const { companyId, groupId } = await companyWithGroup('Unknown group');
    const rows = [user(companyId, 1, groupId), user(companyId, 2, unknownId), user(companyId, 3)];
    expect(await errorOf(database.db.insert(users).values(rows))).toEqual({
      code: '23503',
      detail: `Key (training_group_id)=(${unknownId}) is not present in table "training_groups".`,
    });
    expect(await usersOf(companyId)).toEqual([]);
  });

  it('refuses an update to a group that does not exist, and one to another company', async () => {
    const { companyId, groupId } = await companyWithGroup('Update');
    await database.db.insert(users).values([user(companyId, 1, groupId), user(companyId, 2)]);
    const setGroup = database.db
      .update(users)
      .set({ trainingGroupId: unknownId })
      .where(eq(users.companyId, companyId));
    expect((await errorOf(setGroup)).code).toBe('23503');
    const move = database.db
      .update(users)
      .set({ companyId: unknownId })
      .where(eq(users.companyId, companyId));
    expect((await errorOf(move)).code).toBe('23503');
    expect(await usersOf(companyId)).toEqual([
      { email: 'user1@example.com', trainingGroupId: groupId },
      { email: 'user2@example.com', trainingGroupId: null },
    ]);
  });

  it('checks what an upsert inserts and what it updates, as the commit writes users', async () => {
    const { companyId, groupId } = await companyWithGroup('Upsert');
    await database.db.insert(users).values(user(companyId, 1));
    const upsert = (group: string) =>
      database.db.execute(sql`
        insert into users (company_id, email, user_name, reference, training_group_id)
        values (${companyId}, 'user1@example.com', 'User 1', 'R1', ${group}::uuid),
               (${companyId}, 'user2@example.com', 'User 2', 'R2', null)
        on conflict (company_id, lower(email)) do update
          set training_group_id = excluded.training_group_id`);
    expect((await errorOf(upsert(unknownId))).code).toBe('23503');
    await upsert(groupId);
    expect(await usersOf(companyId)).toEqual([
      { email: 'user1@example.com', trainingGroupId: groupId },
      { email: 'user2@example.com', trainingGroupId: null },
    ]);
  });

  it("unsets a deleted group on its users, and deletes a company's users with it", async () => {
    const { companyId, groupId } = await companyWithGroup('Deleted');
    const other = await companyWithGroup('Kept');
    await database.db
      .insert(users)
      .values([
        user(companyId, 1, groupId),
        user(companyId, 2),
        user(other.companyId, 3, other.groupId),
      ]);

    await database.db.delete(trainingGroups).where(eq(trainingGroups.id, groupId));
    expect(await usersOf(companyId)).toEqual([
      { email: 'user1@example.com', trainingGroupId: null },
      { email: 'user2@example.com', trainingGroupId: null },
    ]);

    // The company's groups go with it too (their own key), each unsetting its users first.
    const [regrouped] = await database.db
      .insert(trainingGroups)
      .values({ companyId, name: 'Again' })
      .returning({ id: trainingGroups.id });
    await database.db
      .update(users)
      .set({ trainingGroupId: regrouped?.id })
      .where(eq(users.companyId, companyId));
    await database.db.delete(companies).where(eq(companies.id, companyId));
    expect(await usersOf(companyId)).toEqual([]);
    expect(await usersOf(other.companyId)).toEqual([
      { email: 'user3@example.com', trainingGroupId: other.groupId },
    ]);
  });
});
