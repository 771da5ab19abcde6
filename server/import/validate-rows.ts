import { type Database, isEmbedded } from '../../drizzle/client.js';
import type { ImportColumn } from '../../drizzle/tables.js';
import { type GroupSql, groupSql } from './assign-groups.js';
import { clearPreviews, writePreview } from './preview.js';
import { inPacedRowRanges, type RangePace } from './row-ranges.js';
import { analyzeLoaded } from './rows.js';
import { countRows, findDuplicateRows, rangeDuplicates } from './validation.js';

/** How validateRows cuts its work. */
export interface ValidateOptions {
  /** The rules to assign groups with; read here when absent. */
  groups?: GroupSql;
  /** Range by range at this pace; without it, every row in one statement. */
  pace?: RangePace;
  /**
   * Ranges at once, on as many connections, once the duplicate check has ended (default 1).
   * Until then one: the check keeps a core busy.
   */
  lanes?: number;
  /**
   * With a pace: reports each range's rows once it is done, without holding up the next range
   * (see inPacedRowRanges); a throw ends validation.
   */
  onRange?: (rows: number) => Promise<void>;
}

/**
 * Stage 3 for a whole session: each row's checks and the rest of its preview (action, user,
 * group), and the duplicates in the file; returns the counts. With a pace, on Postgres, the
 * duplicate check (one statement over every row: 4-6 s at a million) runs beside the ranges,
 * on another connection, and the rows it finds are checked again once both are done; from its
 * end on, `lanes` ranges run at once. On PGlite the ranges find the duplicates themselves, in
 * row order. Without a pace, the duplicates first and then one statement.
 */
export async function validateRows(
  db: Database,
  session: { id: string; companyId: string; columns: ImportColumn[] },
  options: ValidateOptions = {},
): Promise<{ valid: number; invalid: number }> {
  // A step that runs again (after a crash) starts over: the ranges insert every preview.
  await clearPreviews(db, session.id);
  const groups = options.groups ?? (await groupSql(db, session));
  const { pace, onRange } = options;
  if (!pace) {
    await findDuplicateRows(db, session);
    await writePreview(db, session, { validate: true, groups });
    await analyzeLoaded(db, 'import_row_previews');
  } else if (isEmbedded(db)) {
    // One connection on the server's thread: the duplicates range by range (rangeDuplicates),
    // so that no statement goes over every row.
    await rangeDuplicates.start(db, session.id);
    try {
      await inPacedRowRanges(
        db,
        session.id,
        { validOnly: false },
        pace,
        async (range) => {
          await rangeDuplicates.mark(db, session, range);
          await writePreview(db, session, { range, validate: true, groups });
        },
        { report: onRange },
      );
    } finally {
      // Also when the walk stops (a cancellation): the keys would stay until the process ends.
      await rangeDuplicates.end(db, session.id);
    }
    await analyzeLoaded(db, 'import_row_previews');
  } else {
    let duplicatesChecked = false;
    const lanes = () => (duplicatesChecked ? (options.lanes ?? 1) : 1);
    const [ranged, duplicates] = await Promise.allSettled([
      inPacedRowRanges(
        db,
        session.id,
        { validOnly: false },
        pace,
        async (range) => {
          await writePreview(db, session, { range, validate: true, groups });
        },
        { lanes, report: onRange },
      ),
      findDuplicateRows(db, session).finally(() => {
        duplicatesChecked = true;
      }),
    ]);
    if (ranged.status === 'rejected') throw ranged.reason;
    if (duplicates.status === 'rejected') throw duplicates.reason;
    await analyzeLoaded(db, 'import_row_previews');
    await writePreview(db, session, { validate: true, groups, onlyDuplicates: true });
  }
  return countRows(db, session.id);
}
