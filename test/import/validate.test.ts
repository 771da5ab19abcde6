import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DatabaseHandle, queryRows } from '../../drizzle/client.js';
import { type ImportColumn, importRowPreviews, users } from '../../drizzle/tables.js';
import { groupSql } from '../../server/import/assign-groups.js';
import { copyImportRows } from '../../server/import/load-rows.js';
import { writePreview } from '../../server/import/preview.js';
import { createImportSession } from '../../server/import/sessions.js';
import { validateRows } from '../../server/import/validate-rows.js';
import { countRows, findDuplicateRows, nfcSql } from '../../server/import/validation.js';
import { createCompany } from '../../server/infrastructure/auth.js';
import { createTestDatabase } from '../support/database.js';

let database: DatabaseHandle;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database.close();
});

const columns: ImportColumn[] = [
  { header: 'Email', columnIndex: 0, fieldKey: 'email', status: 'MATCHED' },
  { header: 'userName', columnIndex: 1, fieldKey: 'userName', status: 'MATCHED' },
  { header: 'reference', columnIndex: 2, fieldKey: 'reference', status: 'MATCHED' },
];

/** How a test validates: as validateRows does, or as the worker may run it. */
type Validation =
  | 'at once'
  | 'in ranges of 2'
  | 'in ranges of 1, two at once'
  | 'duplicate check last';

async function validate(
  target: { id: string; companyId: string; columns: ImportColumn[] },
  how: Validation,
) {
  if (how === 'at once') return validateRows(database.db, target);
  if (how === 'in ranges of 2')
    return validateRows(database.db, target, { pace: { rows: 2, targetMs: null } });
  if (how === 'in ranges of 1, two at once') {
    return validateRows(database.db, target, { pace: { rows: 1, targetMs: null }, lanes: 2 });
  }
  // The worker runs the duplicate check beside the ranges: here it ends after all of them,
  // and only the last statement can flag the duplicates.
  const groups = await groupSql(database.db, target);
  await writePreview(database.db, target, { validate: true, groups });
  await findDuplicateRows(database.db, target);
  await writePreview(database.db, target, { validate: true, groups, onlyDuplicates: true });
  return countRows(database.db, target.id);
}

/** Stages the given rows in a new session, validates them and returns each row's errors. */
async function errorCodes(
  rows: (string | null)[][],
  companyId?: string,
  how: Validation = 'at once',
) {
  const company = companyId ?? (await createCompany(database.db, 'Validation')).companyId;
  const session = await createImportSession(database.db, {
    companyId: company,
    fileName: 'v.xlsx',
    chunks: [Buffer.from('PK\x03\x04')],
    maxBytes: 1024,
    comment: null,
  });
  await copyImportRows(
    database.db,
    session,
    rows.map((cells, index) => ({ rowNumber: index + 2, cells })),
  );
  const counts = await validate({ id: session.id, companyId: company, columns }, how);
  const staged = await database.db
    .select({
      rowNumber: importRowPreviews.rowNumber,
      errors: importRowPreviews.errors,
      action: importRowPreviews.action,
    })
    .from(importRowPreviews)
    .where(eq(importRowPreviews.sessionId, session.id))
    .orderBy(importRowPreviews.rowNumber);
  return {
    counts,
    codes: staged.map((row) => (row.errors ?? []).map((error) => error.code)),
    errors: staged.map((row) => row.errors ?? []),
    actions: staged.map((row) => row.action),
  };
}

describe('validateRows', () => {
  it('accepts addresses as real ones look and refuses the rest', async () => {
    const valid = [
      'ann.lee+newsletter@sub.example.com',
      "o'brien@example.ie",
      'x_y-z@mail.example-domain.org',
      'UPPER@EXAMPLE.COM',
      '1234@example.io',
      'a@b.co',
      `${'a'.repeat(64)}@example.com`,
      `ann@${'b'.repeat(63)}.${'c'.repeat(63)}.com`,
      'ann@x-1.example.com',
    ];
    const invalid = [
      'plainaddress',
      '@example.com',
      'ann@',
      'ann@localhost',
      'ann lee@example.com',
      'Ann <ann@example.com>',
      'ann@@example.com',
      'ann@example..com',
      'ann@-example.com',
      'ann@example.com.',
      `${'a'.repeat(65)}@example.com`,
      `ann@${'b'.repeat(64)}.com`,
      `ann@example.${'c'.repeat(64)}`,
      'ann@example-.com',
      'ann@example.-com',
    ];
    const { codes } = await errorCodes(
      [...valid, ...invalid].map((email, index) => [email, 'Name', `R${index}`]),
    );
    expect(codes.slice(0, valid.length)).toEqual(valid.map(() => []));
    expect(codes.slice(valid.length)).toEqual(invalid.map(() => ['INVALID_EMAIL']));
  });

  // The same errors however the statements are cut: at once, in ranges (two at once once the
  // duplicate check has ended, as the worker runs them), or with the duplicate check ending
  // after every range was checked.
  it.each<{ how: Validation }>([
    { how: 'at once' },
    { how: 'in ranges of 2' },
    { how: 'in ranges of 1, two at once' },
    { how: 'duplicate check last' },
  ])(
    'flags blanks, lengths, in-file duplicates (naming the first row) and taken references, $how',
    async ({ how }) => {
      const company = await createCompany(database.db, 'Owner of R-TAKEN');
      await database.db.insert(users).values({
        companyId: company.companyId,
        email: 'owner@example.com',
        userName: 'Owner',
        reference: 'R-TAKEN',
      });
      const { counts, codes, errors, actions } = await errorCodes(
        [
          ['first@example.com', 'First', 'R1'],
          [null, null, null],
          ['FIRST@example.com', 'Again', 'R2'],
          ['other@example.com', 'Other', 'R1'],
          ['long@example.com', 'x'.repeat(201), 'R3'],
          ['new@example.com', 'New', 'R-TAKEN'],
          ['owner@example.com', 'Owner', 'R-TAKEN'],
          ['First@Example.COM', 'Third', 'R4'],
          ['r1-again@example.com', 'R1 again', 'R1'],
        ],
        company.companyId,
        how,
      );
      expect(codes).toEqual([
        [],
        ['REQUIRED', 'REQUIRED', 'REQUIRED'],
        ['DUPLICATE_IN_FILE'],
        ['DUPLICATE_IN_FILE'],
        ['TOO_LONG'],
        ['REFERENCE_TAKEN'],
        ['DUPLICATE_IN_FILE'],
        ['DUPLICATE_IN_FILE'],
        ['DUPLICATE_IN_FILE'],
      ]);
      expect(errors[2]?.[0]?.message).toContain('row 2');
      // The first row wins even when duplicates follow in several later ranges.
      expect(errors[7]?.[0]).toMatchObject({ columnIndex: 0, value: 'First@Example.COM' });
      expect(errors[7]?.[0]?.message).toContain('row 2;');
      expect(errors[8]?.[0]?.message).toContain('row 2;');
      expect(errors[3]?.[0]).toMatchObject({ columnIndex: 2, value: 'R1' });
      expect(errors[5]?.[0]?.message).toContain('owner@example.com');
      expect(counts).toEqual({ valid: 1, invalid: 8 });
      expect(actions).toEqual(['CREATE', ...Array.from({ length: 8 }, () => 'SKIP')]);
    },
  );

  // A row that fails its own checks is not imported: a later valid row with its email or
  // reference is no duplicate of it.
  it.each<{ how: Validation }>([
    { how: 'at once' },
    { how: 'in ranges of 2' },
    { how: 'in ranges of 1, two at once' },
    { how: 'duplicate check last' },
  ])('leaves invalid rows out of the duplicate check, $how', async ({ how }) => {
    const { codes, actions } = await errorCodes(
      [
        ['İnga@example.com', 'Inga', 'R-INGA'],
        ['inga@example.com', 'Inga', 'R-INGA'],
        ['bo@example.com', null, 'R-BO'],
        ['BO@example.com', 'Bo', 'R-BO'],
        ['cy@example.com', 'Cy', 'R-CY'],
        ['CY@example.com', 'Cy again', 'R-CY2'],
        ['cy@example.com', 'Cy', 'R-CY'],
      ],
      undefined,
      how,
    );
    expect(codes).toEqual([
      ['INVALID_EMAIL'],
      [],
      ['REQUIRED'],
      [],
      [],
      ['DUPLICATE_IN_FILE'],
      ['DUPLICATE_IN_FILE', 'DUPLICATE_IN_FILE'],
    ]);
    expect(actions).toEqual(['SKIP', 'CREATE', 'SKIP', 'CREATE', 'CREATE', 'SKIP', 'SKIP']);
  });
});

describe('nfcSql', () => {
  // It skips normalize() for text already in NFC, so it must give what normalize() gives.
  it('gives what normalize(text, NFC) gives, for text in NFC or not', async () => {
    const texts = [
      'ann@example.com',
      'Zo\u00eb',
      'Zoe\u0308',
      '\u1100\u1161\u11a8',
      'A\u030a\u0301',
      '\u212b',
      '',
      null,
    ];
    for (const text of texts) {
      const [row] = await queryRows<{ fast: string | null; full: string | null }>(
        database.db,
        sql`select ${nfcSql(sql`${text}::text`)} as fast, normalize(${text}::text, NFC) as full`,
      );
      expect(row).toEqual({
        fast: text?.normalize('NFC') ?? null,
        full: text?.normalize('NFC') ?? null,
      });
    }
  });
});
