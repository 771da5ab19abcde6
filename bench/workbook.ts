import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import ExcelJS from 'exceljs';

/** The sheet's headers: the three built-ins, then seven columns a real HR export has. */
export const HEADERS = [
  'Email',
  'userName',
  'reference',
  'First name',
  'Last name',
  'Department',
  'Position',
  'City',
  'Country',
  'Hire date',
] as const;

/** Columns the benchmark company has as custom fields before the upload (its rules use them). */
export const PRESET_CUSTOM_FIELDS = ['Department', 'Country'] as const;

/** One row in a thousand has an email without "@": the session stops at VALIDATION. */
export const INVALID_EVERY = 1000;

const FIRST_NAMES = [
  'Anna',
  'Ben',
  'Clara',
  'David',
  'Elena',
  'Felix',
  'Greta',
  'Hugo',
  'Ida',
  'Jonas',
  'Karin',
  'Lukas',
  'Maria',
  'Noah',
  'Olga',
  'Paul',
  'Quentin',
  'Rosa',
  'Simon',
  'Tina',
  'Ulrich',
  'Vera',
  'Walter',
  'Xenia',
  'Yusuf',
  'Zoe',
  'Amir',
  'Beatriz',
  'Chen',
  'Dmitri',
  'Emma',
  'Fatima',
  'Giorgio',
  'Hana',
  'Ivan',
  'Julia',
  'Kenji',
  'Lea',
  'Mateo',
  'Nina',
];
const LAST_NAMES = [
  'Müller',
  'Schmidt',
  'Schneider',
  'Fischer',
  'Weber',
  'Meyer',
  'Wagner',
  'Becker',
  'Schulz',
  'Hoffmann',
  'Martin',
  'Bernard',
  'Dubois',
  'Thomas',
  'Robert',
  'Richard',
  'Garcia',
  'Martinez',
  'Lopez',
  'Gonzalez',
  'Rossi',
  'Russo',
  'Ferrari',
  'Esposito',
  'Smith',
  'Johnson',
  'Williams',
  'Brown',
  'Jones',
  'Miller',
  'Davis',
  'Wilson',
  'Nowak',
  'Kowalski',
  'Novak',
  'Horvat',
  'Jensen',
  'Nielsen',
  'Hansen',
  'Larsen',
];
export const DEPARTMENTS = [
  'Sales',
  'Engineering',
  'Support',
  'Marketing',
  'Finance',
  'Operations',
  'Legal',
  'Human Resources',
  'Logistics',
  'Research',
  'Procurement',
  'IT',
];
const POSITIONS = [
  'Associate',
  'Specialist',
  'Senior Specialist',
  'Team Lead',
  'Manager',
  'Senior Manager',
  'Director',
  'Analyst',
  'Consultant',
  'Engineer',
  'Senior Engineer',
  'Coordinator',
  'Assistant',
  'Administrator',
  'Representative',
  'Officer',
  'Architect',
  'Intern',
];
const CITIES: [city: string, country: string][] = [
  ['Berlin', 'Germany'],
  ['Munich', 'Germany'],
  ['Hamburg', 'Germany'],
  ['Vienna', 'Austria'],
  ['Zurich', 'Switzerland'],
  ['Paris', 'France'],
  ['Lyon', 'France'],
  ['Madrid', 'Spain'],
  ['Barcelona', 'Spain'],
  ['Milan', 'Italy'],
  ['Rome', 'Italy'],
  ['London', 'United Kingdom'],
  ['Manchester', 'United Kingdom'],
  ['Dublin', 'Ireland'],
  ['Amsterdam', 'Netherlands'],
  ['Brussels', 'Belgium'],
  ['Warsaw', 'Poland'],
  ['Prague', 'Czechia'],
  ['Copenhagen', 'Denmark'],
  ['Stockholm', 'Sweden'],
  ['Oslo', 'Norway'],
  ['Helsinki', 'Finland'],
  ['Lisbon', 'Portugal'],
  ['New York', 'United States'],
  ['Chicago', 'United States'],
  ['Toronto', 'Canada'],
];
const CONTRACTOR_DOMAIN = 'contractor.example.com';
const EMPLOYEE_DOMAIN = 'example.com';
export const CONTRACTOR_SUFFIX = `@${CONTRACTOR_DOMAIN}`;

const pick = <T>(list: readonly T[], index: number): T => list[index % list.length] as T;

/** ASCII form of a name for an email's local part. */
function asciiName(name: string): string {
  return name
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase();
}

export type RowValues = [
  email: string,
  userName: string,
  reference: string,
  firstName: string,
  lastName: string,
  department: string,
  position: string,
  city: string,
  country: string,
  hireDate: Date,
];

/** Row `index`'s email when it is valid: what fixing a bad one gives back. */
export function validEmail(index: number): string {
  // Multipliers co-prime with the list lengths spread the combinations.
  const first = pick(FIRST_NAMES, index * 7 + 3);
  const last = pick(LAST_NAMES, index * 13 + 5);
  const domain = index % 20 === 7 ? CONTRACTOR_DOMAIN : EMPLOYEE_DOMAIN;
  return `${asciiName(first)}.${asciiName(last)}.${index + 1}@${domain}`;
}

/**
 * Row `index` (0-based) of the generated file: deterministic, so a floor can regenerate it.
 * One row in `invalidEvery` has an email without "@".
 */
export function rowValues(index: number, invalidEvery = INVALID_EVERY): RowValues {
  const first = pick(FIRST_NAMES, index * 7 + 3);
  const last = pick(LAST_NAMES, index * 13 + 5);
  const [city, country] = pick(CITIES, index * 11 + 1);
  const email =
    index % invalidEvery === invalidEvery - 1
      ? validEmail(index).replace('@', '.')
      : validEmail(index);
  // Hire dates between 2000-01-01 and about 2025, at midnight UTC as Excel stores a date.
  const hireDate = new Date(Date.UTC(2000, 0, 1) + ((index * 7919) % 9131) * 86_400_000);
  return [
    email,
    `${first} ${last}`,
    `E${String(index + 1).padStart(8, '0')}`,
    first,
    last,
    pick(DEPARTMENTS, index * 5 + 2),
    pick(POSITIONS, index * 3 + 1),
    city,
    country,
    hireDate,
  ];
}

/** The row's cells as Muster stages them: text, dates as ISO dates. */
export function rowCells(index: number): string[] {
  const values = rowValues(index);
  return values.map((value) => (value instanceof Date ? value.toISOString().slice(0, 10) : value));
}

export interface WorkbookFile {
  path: string;
  bytes: number;
  /** True when it was written by this call; false when taken from the cache. */
  generated: boolean;
  generateMs: number;
}

/** Variants of the generated file for the bench's other cases (bench/cases.ts). */
export interface WorkbookVariant {
  /** One row in this many has an email without "@" (default INVALID_EVERY). */
  invalidEvery?: number;
  /** Which of the rows 0 … rows − 1 the file has (default all), keeping their values. */
  includes?(index: number): boolean;
}

/**
 * Writes `rows` users with exceljs's streaming writer (shared strings by default, as Excel
 * writes text; inline strings on request) once, and reuses the file on later runs. The
 * variant must be the same for every call with one path (the cache goes by path).
 */
export async function cachedWorkbook(
  path: string,
  rows: number,
  sharedStrings: boolean,
  variant: WorkbookVariant = {},
): Promise<WorkbookFile> {
  const existing = await stat(path).catch(() => null);
  if (existing?.isFile()) {
    return { path, bytes: existing.size, generated: false, generateMs: 0 };
  }
  await mkdir(dirname(path), { recursive: true });
  const partial = `${path}.${process.pid}.partial`;
  const started = performance.now();
  try {
    const workbook = new ExcelJS.stream.xlsx.WorkbookWriter({
      filename: partial,
      useSharedStrings: sharedStrings,
      useStyles: true,
    });
    const sheet = workbook.addWorksheet('Users');
    sheet.columns = HEADERS.map((header) => ({
      header,
      key: header,
      width: header === 'Email' ? 36 : 16,
      ...(header === 'Hire date' ? { style: { numFmt: 'yyyy-mm-dd' } } : {}),
    }));
    for (let index = 0; index < rows; index++) {
      if (variant.includes && !variant.includes(index)) continue;
      sheet.addRow(rowValues(index, variant.invalidEvery)).commit();
    }
    sheet.commit();
    await workbook.commit();
    await rename(partial, path);
  } catch (error) {
    await rm(partial, { force: true });
    throw error;
  }
  const written = await stat(path);
  return {
    path,
    bytes: written.size,
    generated: true,
    generateMs: performance.now() - started,
  };
}
