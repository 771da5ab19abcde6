import { eq } from 'drizzle-orm';
import type { Database } from '../../drizzle/client.js';
import { type ImportColumn, importSessions, users } from '../../drizzle/tables.js';
import { copyImportRows } from '../../server/import/load-rows.js';
import { currentRulesHash, currentUsersVersion } from '../../server/import/preview-basis.js';
import { createImportSession } from '../../server/import/sessions.js';
import { validateRows } from '../../server/import/validate-rows.js';
import { createCompany } from '../../server/infrastructure/auth.js';

const columns: ImportColumn[] = [
  { header: 'Email', columnIndex: 0, fieldKey: 'email', status: 'MATCHED' },
  { header: 'userName', columnIndex: 1, fieldKey: 'userName', status: 'MATCHED' },
  { header: 'reference', columnIndex: 2, fieldKey: 'reference', status: 'MATCHED' },
];

/**
 * A company's session at GROUP_ASSIGNMENT, validated: five valid rows and one invalid
 * (user1..user5@example.com, the invalid one third). `beforeValidation` may add the company's
 * existing users, groups or rules first.
 */
export async function sessionReadyToCommit(
  db: Database,
  options: { beforeValidation?: (companyId: string) => Promise<void> } = {},
) {
  const { companyId } = await createCompany(db, 'Commit');
  const session = await createImportSession(db, {
    companyId,
    fileName: 'c.xlsx',
    chunks: [Buffer.from('PK\x03\x04')],
    maxBytes: 1024,
    comment: null,
  });
  const rows = [1, 2, 3, 4, 5].map((n) => [`user${n}@example.com`, `User ${n}`, `R${n}`]);
  rows.splice(2, 0, ['not-an-email', 'Bad', 'R-BAD']);
  await copyImportRows(
    db,
    session,
    rows.map((cells, index) => ({ rowNumber: index + 2, cells })),
  );
  const target = { id: session.id, companyId, columns };
  await options.beforeValidation?.(companyId);
  const previewBasis = {
    usersVersion: await currentUsersVersion(db, companyId),
    rulesHash: await currentRulesHash(db, companyId),
  };
  const counts = await validateRows(db, target);
  await db
    .update(importSessions)
    .set({ stage: 'GROUP_ASSIGNMENT', columns, previewBasis, validRowCount: counts.valid })
    .where(eq(importSessions.id, session.id));
  return { ...target, attempt: session.attempt, previewBasis, validRowCount: counts.valid };
}

export async function userCount(db: Database, companyId: string): Promise<number> {
  return db.$count(users, eq(users.companyId, companyId));
}
