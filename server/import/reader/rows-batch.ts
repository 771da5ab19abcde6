/** One data row as read and staged: its spreadsheet row number and its cells as text. */
export interface StagedRow {
  rowNumber: number;
  cells: (string | null)[];
}

/**
 * A batch of rows as one JSON text, `[[rowNumber, cells], …]`, as the reader thread hands it
 * to the main thread and the main thread to Postgres, which parses it
 * (`jsonb_array_elements`). Handing over the rows themselves cost the main thread a structured
 * clone of each batch and a JSON text of each row again for the INSERT: at 100k rows 0.7 s of
 * its CPU for staging, while it also answers requests; a JSON text per batch, written once in
 * the reader thread, is copied as one string.
 */
export interface RowsBatch {
  /** How many rows `json` holds. */
  count: number;
  json: string;
}

export function toRowsBatch(rows: StagedRow[]): RowsBatch {
  return {
    count: rows.length,
    json: JSON.stringify(rows.map((row) => [row.rowNumber, row.cells])),
  };
}

/** The rows of a batch again (tests, and anything that must look at them one by one). */
export function fromRowsBatch(batch: RowsBatch): StagedRow[] {
  const pairs = JSON.parse(batch.json) as [number, (string | null)[]][];
  return pairs.map(([rowNumber, cells]) => ({ rowNumber, cells }));
}
