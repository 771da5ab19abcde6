import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import type { Database } from '../../drizzle/client.js';
import { distributionRules, trainingGroups } from '../../drizzle/tables.js';
import { InUseError, NameTakenError, NotFoundError } from '../errors.js';
import { bumpUsersVersion, lockCompanyForChange } from '../import/preview-basis.js';
import { isUniqueViolation } from '../infrastructure/database-errors.js';

export type TrainingGroup = typeof trainingGroups.$inferSelect;

export async function listTrainingGroups(
  db: Database,
  companyId: string,
): Promise<TrainingGroup[]> {
  return db
    .select()
    .from(trainingGroups)
    .where(eq(trainingGroups.companyId, companyId))
    .orderBy(asc(sql`lower(${trainingGroups.name})`), asc(trainingGroups.id));
}

/** The company's groups among these ids, in any order (ids of other companies find nothing). */
export async function findTrainingGroupsByIds(
  db: Database,
  companyId: string,
  ids: readonly string[],
): Promise<TrainingGroup[]> {
  if (ids.length === 0) return [];
  return db
    .select()
    .from(trainingGroups)
    .where(and(eq(trainingGroups.companyId, companyId), inArray(trainingGroups.id, [...ids])));
}

export async function findTrainingGroup(
  db: Database,
  companyId: string,
  id: string,
): Promise<TrainingGroup | undefined> {
  const [group] = await db
    .select()
    .from(trainingGroups)
    .where(and(eq(trainingGroups.companyId, companyId), eq(trainingGroups.id, id)));
  return group;
}

async function nameTaken(db: Database, companyId: string, name: string, exceptId?: string) {
  const rows = await db
    .select({ id: trainingGroups.id })
    .from(trainingGroups)
    .where(
      and(
        eq(trainingGroups.companyId, companyId),
        sql`lower(${trainingGroups.name}) = lower(${name})`,
      ),
    );
  return rows.some((row) => row.id !== exceptId);
}

export async function createTrainingGroup(
  db: Database,
  companyId: string,
  name: string,
): Promise<TrainingGroup> {
  if (await nameTaken(db, companyId, name)) throw new NameTakenError('training group', name);
  const [group] = await db
    .insert(trainingGroups)
    .values({ companyId, name })
    .returning()
    .catch((error: unknown) => {
      throw isUniqueViolation(error) ? new NameTakenError('training group', name) : error;
    });
  if (!group) throw new Error('training group insert returned nothing');
  return group;
}

export async function renameTrainingGroup(
  db: Database,
  companyId: string,
  id: string,
  name: string,
): Promise<TrainingGroup> {
  if (!(await findTrainingGroup(db, companyId, id))) throw new NotFoundError('training group', id);
  if (await nameTaken(db, companyId, name, id)) throw new NameTakenError('training group', name);
  const [group] = await db
    .update(trainingGroups)
    .set({ name })
    .where(eq(trainingGroups.id, id))
    .returning()
    .catch((error: unknown) => {
      throw isUniqueViolation(error) ? new NameTakenError('training group', name) : error;
    });
  if (!group) throw new NotFoundError('training group', id);
  return group;
}

/** Deletes a group; its users keep no group. Refused while a rule assigns the group. */
export async function deleteTrainingGroup(
  db: Database,
  companyId: string,
  id: string,
): Promise<TrainingGroup> {
  const group = await findTrainingGroup(db, companyId, id);
  if (!group) throw new NotFoundError('training group', id);
  const rules = await db
    .select({ id: distributionRules.id })
    .from(distributionRules)
    .where(eq(distributionRules.trainingGroupId, id));
  if (rules.length > 0) {
    throw new InUseError(
      `The training group "${group.name}" is assigned by ${rules.length} distribution rule(s): change or delete them first.`,
      rules.map((rule) => rule.id),
    );
  }
  // Users of the group lose it (on delete set null): import previews must see that.
  await db.transaction(async (tx) => {
    await lockCompanyForChange(tx, companyId);
    await tx.delete(trainingGroups).where(eq(trainingGroups.id, id));
    await bumpUsersVersion(tx, companyId);
  });
  return group;
}
