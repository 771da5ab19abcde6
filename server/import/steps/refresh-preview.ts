import type { ImportProgress } from '../../../drizzle/tables.js';
import { assignGroups, groupSql } from '../assign-groups.js';
import { writePreview } from '../preview.js';
import { currentUsersVersion } from '../preview-basis.js';
import { byRowRanges, type StepContext, type StepTransition } from './step.js';

/**
 * Stages 4 and 5 (the REVIEW and ASSIGN steps): validation computed the preview; these
 * recompute what moved since. Users changed: actions, users and groups again; only the rules:
 * the groups.
 */
export async function refreshPreview(
  context: StepContext,
  phase: ImportProgress['phase'],
): Promise<StepTransition> {
  const { db, session } = context;
  // The users' version before computing; the rules with their own hash, once for every range.
  const usersVersion = await currentUsersVersion(db, session.companyId);
  const groups = await groupSql(db, session);
  const basis = { usersVersion, rulesHash: groups.rulesHash };
  const previous = session.previewBasis;
  const usersMoved = previous?.usersVersion !== basis.usersVersion;
  if (usersMoved || previous?.rulesHash !== basis.rulesHash) {
    await byRowRanges(context, phase, { validOnly: true }, (range) =>
      usersMoved
        ? writePreview(db, session, { range, validate: false, groups })
        : assignGroups(db, session, groups, range),
    );
  }
  return { kind: 'preview-release', basis, values: {} };
}
