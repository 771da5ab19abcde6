/** Why a cell of a staged row could not be read; validation turns it into a row error. */
export interface RowProblem {
  columnIndex: number;
  code: 'CELL_TOO_LONG' | 'CELL_ERROR_VALUE' | 'FORMULA_WITHOUT_VALUE';
  message: string;
  /** What the cell holds, for people: the error value, the formula, the start of the text. */
  value: string | null;
}

/** One data row as read and staged: its spreadsheet row number and its cells as text. */
export interface StagedRow {
  rowNumber: number;
  cells: (string | null)[];
  /** Cells that could not be read (their `cells` entry is null). */
  problems?: RowProblem[];
}

/**
 * A batch of rows as one JSON text, `[[rowNumber, cells, problems?], …]`, as the reader thread
 * hands it to the main thread and the main thread to Postgres, which parses it
 * (`jsonb_array_elements`). Handing over the rows themselves cost the main thread a structured
 * clone of each batch and a JSON text of each row again for the INSERT: at 100k rows 0.7 s of
 * its CPU for staging, while it also answers requests; a JSON text per batch, written once in
 * the reader thread, is copied as one string.
 */
export interface RowsBatch {
  /** How many rows `json` holds. */
  count: number;
  json: string;
  /** The UTF-8 bytes of `json`: what staging it stores, about. */
  bytes: number;
}

export function toRowsBatch(rows: StagedRow[]): RowsBatch {
  const json = JSON.stringify(
    rows.map((row) =>
      row.problems ? [row.rowNumber, row.cells, row.problems] : [row.rowNumber, row.cells],
    ),
  );
  return { count: rows.length, json, bytes: Buffer.byteLength(json) };
}

/** The rows of a batch again (tests, and anything that must look at them one by one). */
export function fromRowsBatch(batch: RowsBatch): StagedRow[] {
  const entries = JSON.parse(batch.json) as [number, (string | null)[], RowProblem[]?][];
  return entries.map(([rowNumber, cells, problems]) =>
    problems ? { rowNumber, cells, problems } : { rowNumber, cells },
  );
}
