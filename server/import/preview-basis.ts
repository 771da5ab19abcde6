import { createHash } from 'node:crypto';
import { and, asc, eq, sql } from 'drizzle-orm';
import type { Database } from '../../drizzle/client.js';
import {
  companies,
  distributionRules,
  importSessions,
  type PreviewBasis,
} from '../../drizzle/tables.js';

type DistributionRule = typeof distributionRules.$inferSelect;

/**
 * What a staged preview (rows' actions, groups) was computed from, so that the end of a step
 * and the commit can tell whether it still holds. The users side is a version number bumped
 * in the same transaction as every change to a company's users, read *before* computing: a
 * change landing meanwhile makes the preview look older, never fresh. The rules side is a
 * fingerprint of the very rules the groups were computed with (groupSql returns it with them):
 * a fingerprint read apart from them let a rule moved and moved back while a step ran
 * (A, B, A) pass for the A the step never saw.
 */

export async function currentUsersVersion(db: Database, companyId: string): Promise<number> {
  const [company] = await db
    .select({ usersVersion: companies.usersVersion })
    .from(companies)
    .where(eq(companies.id, companyId));
  return company?.usersVersion ?? 0;
}

/**
 * Every transaction that changes a company's users or rules takes the company row first, before
 * any user or rule row: the commit holds it shared from before its upserts to its end, so a
 * change that locked users first and the company after would wait on the commit while the
 * commit waited on its users, a deadlock Postgres ends by aborting one of them. In one order,
 * they wait in turn.
 */
export async function lockCompanyForChange(tx: Database, companyId: string): Promise<void> {
  await tx
    .select({ id: companies.id })
    .from(companies)
    .where(eq(companies.id, companyId))
    .for('update');
}

/**
 * Marks the company's users changed, in the caller's transaction: the idle sessions whose
 * preview shows users (REVIEW, GROUP_ASSIGNMENT) are queued to recompute it, and busy ones see
 * the new version when their step ends (see releasePreviewStep). The company row is updated
 * first: a step ending meanwhile waits on it, so it cannot miss both.
 */
export async function bumpUsersVersion(db: Database, companyId: string): Promise<void> {
  await db
    .update(companies)
    .set({ usersVersion: sql`${companies.usersVersion} + 1` })
    .where(eq(companies.id, companyId));
  await queuePreviewRefresh(db, companyId, ['REVIEW', 'GROUP_ASSIGNMENT']);
}

/** The background step that recomputes the preview shown at a stage. */
export const PREVIEW_REFRESH_STEP = { REVIEW: 'REVIEW', GROUP_ASSIGNMENT: 'ASSIGN' } as const;
export type PreviewStage = keyof typeof PREVIEW_REFRESH_STEP;

/**
 * Queues the preview of the company's idle sessions at `stages` to be recomputed. Returns
 * their ids, to publish and to wake a worker.
 */
export async function queuePreviewRefresh(
  db: Database,
  companyId: string,
  stages: PreviewStage[],
): Promise<string[]> {
  const queued: string[] = [];
  for (const stage of stages) {
    const sessions = await db
      .update(importSessions)
      .set({
        busy: true,
        step: PREVIEW_REFRESH_STEP[stage],
        progress: { phase: 'QUEUED', done: 0, total: null },
        updatedAt: new Date(),
      })
      .where(
        and(
          eq(importSessions.companyId, companyId),
          eq(importSessions.stage, stage),
          eq(importSessions.busy, false),
        ),
      )
      .returning({ id: importSessions.id });
    queued.push(...sessions.map((session) => session.id));
  }
  return queued;
}

/** A digest of everything about the rules that decides a group, in rule order. */
export function rulesHashOf(rules: DistributionRule[]): string {
  const hash = createHash('sha256');
  for (const rule of rules) {
    hash.update(
      JSON.stringify([
        rule.id,
        rule.position,
        rule.fieldKey,
        rule.operator,
        rule.value,
        rule.trainingGroupId,
      ]),
    );
    hash.update('\n');
  }
  return hash.digest('hex');
}

/** The company's rules in order of application. */
export async function readRules(db: Database, companyId: string): Promise<DistributionRule[]> {
  return db
    .select()
    .from(distributionRules)
    .where(eq(distributionRules.companyId, companyId))
    .orderBy(asc(distributionRules.position));
}

export async function currentRulesHash(db: Database, companyId: string): Promise<string> {
  return rulesHashOf(await readRules(db, companyId));
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

/**
 * For the commit's transaction: holds the company's users version and rules as they are until
 * it ends. Rule changes and user changes that bump the version (both lock or update the
 * company row, or update a rule) wait for the commit, so what it reads is what it commits.
 */
export async function holdPreviewBasis(tx: Database, companyId: string): Promise<void> {
  await tx
    .select({ id: companies.id })
    .from(companies)
    .where(eq(companies.id, companyId))
    .for('share');
  await tx
    .select({ id: distributionRules.id })
    .from(distributionRules)
    .where(eq(distributionRules.companyId, companyId))
    .for('share');
}
