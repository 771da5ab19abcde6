import { and, asc, eq, sql } from 'drizzle-orm';
import type { Database } from '../../drizzle/client.js';
import { columnMappings, customFields, distributionRules, users } from '../../drizzle/tables.js';
import { InUseError, NameTakenError, NotFoundError, TooManyFieldsError } from '../errors.js';
import { bumpUsersVersion, lockCompanyForChange } from '../import/preview-basis.js';
import { isUniqueViolation } from '../infrastructure/database-errors.js';

/** A field a user record has: one of the three built-ins, or a company's custom field. */
export interface UserField {
  key: string;
  label: string;
  builtIn: boolean;
  /** The custom field's row id; null for built-ins. */
  customFieldId: string | null;
}

/** Required in every file and every row; their keys are reserved. */
export const builtInFields: readonly UserField[] = [
  { key: 'email', label: 'Email', builtIn: true, customFieldId: null },
  { key: 'userName', label: 'userName', builtIn: true, customFieldId: null },
  { key: 'reference', label: 'reference', builtIn: true, customFieldId: null },
];

export type CustomField = typeof customFields.$inferSelect;

export const MAX_LABEL_LENGTH = 100;

/** Custom fields a company may have unless MAX_CUSTOM_FIELDS says otherwise. */
export const DEFAULT_MAX_CUSTOM_FIELDS = 200;

export async function listCustomFields(db: Database, companyId: string): Promise<CustomField[]> {
  return db
    .select()
    .from(customFields)
    .where(eq(customFields.companyId, companyId))
    .orderBy(asc(customFields.createdAt), asc(customFields.id));
}

/** Built-ins first, then custom fields in the order they were created. */
export async function listUserFields(db: Database, companyId: string): Promise<UserField[]> {
  return userFieldsOf(await listCustomFields(db, companyId));
}

/** A company's user fields from its custom fields (in creation order): built-ins first. */
export function userFieldsOf(custom: readonly CustomField[]): UserField[] {
  return [
    ...builtInFields,
    ...custom.map((field) => ({
      key: field.key,
      label: field.label,
      builtIn: false,
      customFieldId: field.id,
    })),
  ];
}

/** Label → key: lowercase ASCII words joined by underscores, e.g. "Hire date" → "hire_date". */
export function keyFromLabel(label: string): string {
  const key = label
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 40);
  return /^[a-z]/.test(key) ? key : `field_${key}`.replace(/_+$/, '');
}

function labelTakenByBuiltIn(label: string): boolean {
  return builtInFields.some((field) => field.label.toLowerCase() === label.toLowerCase());
}

async function labelTaken(
  db: Database,
  companyId: string,
  label: string,
  exceptId?: string,
): Promise<boolean> {
  if (labelTakenByBuiltIn(label)) return true;
  const rows = await db
    .select({ id: customFields.id })
    .from(customFields)
    .where(
      and(
        eq(customFields.companyId, companyId),
        sql`lower(${customFields.label}) = lower(${label})`,
      ),
    );
  return rows.some((row) => row.id !== exceptId);
}

export async function createCustomField(
  db: Database,
  companyId: string,
  label: string,
  options: { maxFields?: number } = {},
): Promise<CustomField> {
  if (await labelTaken(db, companyId, label)) throw new NameTakenError('field', label);
  // Every path that adds fields (the mutation, an import's confirmation) comes through here:
  // the company's template and every row of its imports grow with them.
  const existing = await listCustomFields(db, companyId);
  const maxFields = options.maxFields ?? DEFAULT_MAX_CUSTOM_FIELDS;
  if (existing.length >= maxFields) throw new TooManyFieldsError(maxFields);
  const existingKeys = new Set([
    ...builtInFields.map((field) => field.key.toLowerCase()),
    ...existing.map((field) => field.key),
  ]);
  const base = keyFromLabel(label);
  let key = base;
  for (let suffix = 2; existingKeys.has(key); suffix++) key = `${base}_${suffix}`;
  const [created] = await db
    .insert(customFields)
    .values({ companyId, key, label })
    .returning()
    .catch((error: unknown) => {
      throw isUniqueViolation(error) ? new NameTakenError('field', label) : error;
    });
  if (!created) throw new Error('custom field insert returned nothing');
  return created;
}

export async function findCustomField(
  db: Database,
  companyId: string,
  id: string,
): Promise<CustomField | undefined> {
  const [field] = await db
    .select()
    .from(customFields)
    .where(and(eq(customFields.companyId, companyId), eq(customFields.id, id)));
  return field;
}

export async function renameCustomField(
  db: Database,
  companyId: string,
  id: string,
  label: string,
): Promise<CustomField> {
  const field = await findCustomField(db, companyId, id);
  if (!field) throw new NotFoundError('custom field', id);
  if (await labelTaken(db, companyId, label, id)) throw new NameTakenError('field', label);
  const [renamed] = await db
    .update(customFields)
    .set({ label })
    .where(eq(customFields.id, id))
    .returning()
    .catch((error: unknown) => {
      throw isUniqueViolation(error) ? new NameTakenError('field', label) : error;
    });
  if (!renamed) throw new NotFoundError('custom field', id);
  return renamed;
}

/**
 * Deletes the field, every user's value of it and the headers remembered for it (a new field
 * of the same label gets the same key: an old mapping would fill it unasked). Refused while a
 * rule tests the field.
 */
export async function deleteCustomField(
  db: Database,
  companyId: string,
  id: string,
): Promise<CustomField> {
  const field = await findCustomField(db, companyId, id);
  if (!field) throw new NotFoundError('custom field', id);
  const rules = await db
    .select({ id: distributionRules.id })
    .from(distributionRules)
    .where(
      and(eq(distributionRules.companyId, companyId), eq(distributionRules.fieldKey, field.key)),
    );
  if (rules.length > 0) {
    throw new InUseError(
      `The field "${field.label}" is tested by ${rules.length} distribution rule(s): change or delete them first.`,
      rules.map((rule) => rule.id),
    );
  }
  return db.transaction(async (tx) => {
    await lockCompanyForChange(tx, companyId);
    await tx
      .update(users)
      .set({ customValues: sql`${users.customValues} - ${field.key}::text` })
      .where(and(eq(users.companyId, companyId), sql`${users.customValues} ? ${field.key}::text`));
    await bumpUsersVersion(tx, companyId);
    await tx.delete(customFields).where(eq(customFields.id, id));
    await tx
      .delete(columnMappings)
      .where(and(eq(columnMappings.companyId, companyId), eq(columnMappings.fieldKey, field.key)));
    return field;
  });
}
