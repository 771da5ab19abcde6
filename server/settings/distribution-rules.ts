import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import type { Database } from '../../drizzle/client.js';
import { distributionRules } from '../../drizzle/tables.js';
import { InvalidRuleOrderError, NotFoundError, UnknownFieldError } from '../errors.js';
import { lockCompanyForChange, queuePreviewRefresh } from '../import/preview-basis.js';
import { listUserFields } from './fields.js';
import { findTrainingGroup } from './training-groups.js';

export type DistributionRule = typeof distributionRules.$inferSelect;
export type RuleOperator = DistributionRule['operator'];

export interface RuleInput {
  fieldKey: string;
  operator: RuleOperator;
  value: string;
  trainingGroupId: string;
}

/** True when a rule matches a value: case-insensitive, as the SQL that assigns groups. */
export function ruleMatches(operator: RuleOperator, ruleValue: string, value: string): boolean {
  const subject = value.toLowerCase();
  const wanted = ruleValue.toLowerCase();
  switch (operator) {
    case 'EQUALS':
      return subject === wanted;
    case 'NOT_EQUALS':
      return subject !== wanted;
    case 'CONTAINS':
      return subject.includes(wanted);
    case 'STARTS_WITH':
      return subject.startsWith(wanted);
    case 'ENDS_WITH':
      return subject.endsWith(wanted);
  }
}

export async function listDistributionRules(
  db: Database,
  companyId: string,
): Promise<DistributionRule[]> {
  return db
    .select()
    .from(distributionRules)
    .where(eq(distributionRules.companyId, companyId))
    .orderBy(asc(distributionRules.position));
}

/** The company's rules among these ids, in any order (ids of other companies find nothing). */
export async function findDistributionRulesByIds(
  db: Database,
  companyId: string,
  ids: readonly string[],
): Promise<DistributionRule[]> {
  if (ids.length === 0) return [];
  return db
    .select()
    .from(distributionRules)
    .where(
      and(eq(distributionRules.companyId, companyId), inArray(distributionRules.id, [...ids])),
    );
}

export async function findDistributionRule(
  db: Database,
  companyId: string,
  id: string,
): Promise<DistributionRule | undefined> {
  const [rule] = await db
    .select()
    .from(distributionRules)
    .where(and(eq(distributionRules.companyId, companyId), eq(distributionRules.id, id)));
  return rule;
}

/** A change of the rules, and the idle import sessions it queued to recompute their groups. */
export interface RulesChange<Result> {
  result: Result;
  refreshedSessionIds: string[];
}

/**
 * Runs a change of the company's rules in one transaction, serialized on the company row (so
 * positions stay a sequence, and a running commit, which holds that row shared, is waited for).
 * The idle sessions at GROUP_ASSIGNMENT are queued to recompute in the same transaction: a rule
 * change is never committed without its recompute queued, even if the process dies just after.
 * Busy sessions see the change when their step ends (releasePreviewStep).
 */
async function changeRules<Result>(
  db: Database,
  companyId: string,
  change: (tx: Database) => Promise<Result>,
): Promise<RulesChange<Result>> {
  return db.transaction(async (tx) => {
    await lockCompanyForChange(tx, companyId);
    const result = await change(tx);
    const refreshedSessionIds = await queuePreviewRefresh(tx, companyId, ['GROUP_ASSIGNMENT']);
    return { result, refreshedSessionIds };
  });
}

async function checkRuleInput(db: Database, companyId: string, input: Partial<RuleInput>) {
  if (input.fieldKey !== undefined) {
    const fields = await listUserFields(db, companyId);
    if (!fields.some((field) => field.key === input.fieldKey)) {
      throw new UnknownFieldError(input.fieldKey);
    }
  }
  if (
    input.trainingGroupId !== undefined &&
    !(await findTrainingGroup(db, companyId, input.trainingGroupId))
  ) {
    throw new NotFoundError('training group', input.trainingGroupId);
  }
}

/** Adds a rule at the end of the order. */
export async function createDistributionRule(
  db: Database,
  companyId: string,
  input: RuleInput,
): Promise<RulesChange<DistributionRule>> {
  await checkRuleInput(db, companyId, input);
  return changeRules(db, companyId, async (tx) => {
    const [last] = await tx
      .select({ next: sql<number>`coalesce(max(${distributionRules.position}) + 1, 0)::int` })
      .from(distributionRules)
      .where(eq(distributionRules.companyId, companyId));
    const [rule] = await tx
      .insert(distributionRules)
      .values({ companyId, position: last?.next ?? 0, ...input })
      .returning();
    if (!rule) throw new Error('rule insert returned nothing');
    return rule;
  });
}

export async function updateDistributionRule(
  db: Database,
  companyId: string,
  id: string,
  changes: Partial<RuleInput>,
): Promise<RulesChange<DistributionRule>> {
  if (!(await findDistributionRule(db, companyId, id))) {
    throw new NotFoundError('distribution rule', id);
  }
  await checkRuleInput(db, companyId, changes);
  return changeRules(db, companyId, async (tx) => {
    const [rule] = await tx
      .update(distributionRules)
      .set(changes)
      .where(and(eq(distributionRules.companyId, companyId), eq(distributionRules.id, id)))
      .returning();
    if (!rule) throw new NotFoundError('distribution rule', id);
    return rule;
  });
}

/** Deletes a rule and closes the gap it leaves in the order. */
export async function deleteDistributionRule(
  db: Database,
  companyId: string,
  id: string,
): Promise<RulesChange<DistributionRule>> {
  return changeRules(db, companyId, async (tx) => {
    const [rule] = await tx
      .delete(distributionRules)
      .where(and(eq(distributionRules.companyId, companyId), eq(distributionRules.id, id)))
      .returning();
    if (!rule) throw new NotFoundError('distribution rule', id);
    await tx
      .update(distributionRules)
      .set({ position: sql`${distributionRules.position} - 1` })
      .where(
        and(
          eq(distributionRules.companyId, companyId),
          sql`${distributionRules.position} > ${rule.position}`,
        ),
      );
    return rule;
  });
}

/** Sets the order of application; `ruleIds` must name every rule of the company once. */
export async function reorderDistributionRules(
  db: Database,
  companyId: string,
  ruleIds: string[],
): Promise<RulesChange<DistributionRule[]>> {
  return changeRules(db, companyId, async (tx) => {
    const rules = await listDistributionRules(tx, companyId);
    const known = new Set(rules.map((rule) => rule.id));
    const given = new Set(ruleIds);
    if (given.size !== ruleIds.length) {
      throw new InvalidRuleOrderError('The list names a rule more than once.');
    }
    const unknown = ruleIds.filter((id) => !known.has(id));
    if (unknown.length > 0) {
      throw new InvalidRuleOrderError(
        `The list names ${unknown.length} rule(s) that do not exist in your company.`,
      );
    }
    if (ruleIds.length !== rules.length) {
      throw new InvalidRuleOrderError(
        `The list must name all ${rules.length} rules of your company, each once; it names ${ruleIds.length}.`,
      );
    }
    // Positions are unique: move every rule out of the way first, then to its new place.
    await tx
      .update(distributionRules)
      .set({ position: sql`-1 - ${distributionRules.position}` })
      .where(eq(distributionRules.companyId, companyId));
    await tx.execute(sql`
      update ${distributionRules} set position = wanted.n - 1
      from jsonb_array_elements_text(${JSON.stringify(ruleIds)}::text::jsonb) with ordinality as wanted(id, n)
      where ${distributionRules.id} = wanted.id::uuid and ${distributionRules.companyId} = ${companyId}`);
    return listDistributionRules(tx, companyId);
  });
}
