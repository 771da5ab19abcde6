import { asc, eq, sql } from 'drizzle-orm';
import type { Database } from '../../drizzle/client.js';
import {
  type ColumnDecision,
  type ImportColumn,
  importRows,
  importSessions,
} from '../../drizzle/tables.js';
import {
  FieldMappedTwiceError,
  InvalidColumnDecisionError,
  RequiredFieldUnmappedError,
  SessionBusyError,
  UnknownFieldError,
  UnknownHeaderError,
} from '../errors.js';
import { listColumnMappings, rememberColumnMappings } from '../settings/column-mappings.js';
import {
  builtInFields,
  createCustomField,
  listUserFields,
  type UserField,
} from '../settings/fields.js';
import {
  BUILT_IN_ALIASES,
  builtInHeaderKeys,
  editDistance,
  headerKey,
  languageName,
} from './column-aliases.js';
import { EMAIL_PATTERN } from './validation.js';
import { assertStage, type ImportSession, lockSession } from './workflow.js';

/** What the admin decides for one column at stage 2. */
export type ColumnAction = 'MATCHED' | 'MAP' | 'ADD' | 'IGNORE';

export interface ColumnChoice {
  header: string;
  action: ColumnAction;
  /** The field to MAP to; ignored for the other actions. */
  fieldKey?: string | null;
}

/** What a matched session column came from, beside the file: remembered mappings, decisions. */
export interface ColumnMemory {
  /** headerKey → field key, the company's remembered mappings. */
  remembered: Map<string, string>;
  /** The session's confirmed decisions, for a replaced file read again. */
  decisions: ColumnDecision[] | null;
}

export async function loadColumnMemory(
  db: Database,
  session: Pick<ImportSession, 'companyId' | 'columnDecisions'>,
): Promise<ColumnMemory> {
  const mappings = await listColumnMappings(db, session.companyId);
  return {
    remembered: new Map(mappings.map((mapping) => [mapping.headerKey, mapping.fieldKey])),
    decisions: session.columnDecisions,
  };
}

/**
 * headerKeys that stand for a required field, for the reader to know the header row by:
 * labels, aliases, and headers remembered or decided for one.
 */
export function requiredHeaderKeys(memory: ColumnMemory): string[] {
  const required = new Set(builtInFields.map((field) => field.key));
  return [
    ...builtInHeaderKeys(builtInFields),
    ...[...memory.remembered].flatMap(([key, fieldKey]) => (required.has(fieldKey) ? [key] : [])),
    ...(memory.decisions ?? []).flatMap((decision) =>
      decision.fieldKey && required.has(decision.fieldKey) ? [headerKey(decision.header)] : [],
    ),
  ];
}

const sameHeader = (a: string, b: string) => a.trim().toLowerCase() === b.trim().toLowerCase();

/**
 * Headers to fields. A header equal to a field's label (ignoring case and surrounding spaces)
 * is MATCHED; so is one the company remembered (matchSource REMEMBERED). A replaced file's
 * columns take the decisions confirmed for the file before. Each field is filled by one column
 * at most: the first to claim it. Everything else is NEW, for stage 2.
 */
export function matchFileColumns(
  headers: string[],
  fields: UserField[],
  memory: ColumnMemory = { remembered: new Map(), decisions: null },
): ImportColumn[] {
  const byLabel = new Map(fields.map((field) => [field.label.trim().toLowerCase(), field.key]));
  const fieldKeys = new Set(fields.map((field) => field.key));
  const taken = new Set<string>();
  const claim = (fieldKey: string | null | undefined) => {
    if (!fieldKey || !fieldKeys.has(fieldKey) || taken.has(fieldKey)) return null;
    taken.add(fieldKey);
    return fieldKey;
  };
  const columns: ImportColumn[] = [];
  headers.forEach((header, columnIndex) => {
    const trimmed = header.trim();
    if (!trimmed) return;
    const decided = memory.decisions?.find((decision) => sameHeader(decision.header, trimmed));
    if (decided?.status === 'IGNORED') {
      columns.push({ header: trimmed, columnIndex, fieldKey: null, status: 'IGNORED' });
      return;
    }
    if (decided?.status === 'MAPPED') {
      const fieldKey = claim(decided.fieldKey);
      if (fieldKey) {
        columns.push({ header: trimmed, columnIndex, fieldKey, status: 'MAPPED' });
        return;
      }
    }
    const byHeader = claim(byLabel.get(trimmed.toLowerCase()));
    if (byHeader) {
      columns.push({
        header: trimmed,
        columnIndex,
        fieldKey: byHeader,
        status: 'MATCHED',
        matchSource: 'HEADER',
      });
      return;
    }
    const remembered = claim(memory.remembered.get(headerKey(trimmed)));
    if (remembered) {
      columns.push({
        header: trimmed,
        columnIndex,
        fieldKey: remembered,
        status: 'MATCHED',
        matchSource: 'REMEMBERED',
      });
      return;
    }
    columns.push({ header: trimmed, columnIndex, fieldKey: null, status: 'NEW' });
  });
  return columns;
}

/** The built-in fields no column of the session fills yet. */
export function unmappedRequiredFields(columns: ImportColumn[]): UserField[] {
  const filled = new Set(
    columns.flatMap((column) =>
      column.fieldKey && column.status !== 'IGNORED' && column.status !== 'NEW'
        ? [column.fieldKey]
        : [],
    ),
  );
  return builtInFields.filter((field) => !filled.has(field.key));
}

/** True when the read must stop at stage 2: a column to decide, or a required field unfilled. */
export function needsColumnDecisions(columns: ImportColumn[]): boolean {
  return (
    columns.some((column) => column.status === 'NEW') || unmappedRequiredFields(columns).length > 0
  );
}

export type SuggestionReason = 'NORMALIZED_NAME' | 'ALIAS' | 'SIMILAR_NAME' | 'VALUES';

export interface FieldSuggestion {
  fieldKey: string;
  /** 0 to 1: how sure the suggestion is. */
  score: number;
  reason: SuggestionReason;
  /** The reason in words. */
  explanation: string;
}

const SAMPLE_ROWS = 200;
const MAX_SUGGESTIONS = 3;
const emailPattern = new RegExp(EMAIL_PATTERN);

/**
 * Ranked fields for one column: its header against each field's label and (for the built-ins)
 * the known aliases, as normalized names, aliases and near misses by edit distance; and its
 * values (addresses suggest Email whatever the header says). Fields other columns already fill
 * are left out.
 */
export function suggestFields(
  header: string,
  sample: string[],
  fields: UserField[],
  taken: Set<string>,
): FieldSuggestion[] {
  const key = headerKey(header);
  const best = new Map<string, FieldSuggestion>();
  const offer = (suggestion: FieldSuggestion) => {
    const previous = best.get(suggestion.fieldKey);
    if (!previous || previous.score < suggestion.score) best.set(suggestion.fieldKey, suggestion);
  };
  for (const field of fields) {
    if (taken.has(field.key)) continue;
    const labelKey = headerKey(field.label);
    if (key && key === labelKey) {
      offer({
        fieldKey: field.key,
        score: 0.95,
        reason: 'NORMALIZED_NAME',
        explanation: `"${header}" is "${field.label}" written differently.`,
      });
    }
    const aliases = BUILT_IN_ALIASES[field.key] ?? [];
    for (const alias of aliases) {
      if (key && key === headerKey(alias.alias)) {
        offer({
          fieldKey: field.key,
          // Login names are often but not always addresses.
          score: key === 'login' || key === 'логин' ? 0.7 : 0.9,
          reason: 'ALIAS',
          explanation: `"${alias.alias}" is a ${languageName(alias.language)} name for ${field.label}.`,
        });
      }
    }
    for (const name of [field.label, ...aliases.map((alias) => alias.alias)]) {
      const nameKey = headerKey(name);
      if (!key || !nameKey || key === nameKey || Math.min(key.length, nameKey.length) < 4) continue;
      const similarity = 1 - editDistance(key, nameKey) / Math.max(key.length, nameKey.length);
      if (similarity >= 0.7) {
        offer({
          fieldKey: field.key,
          score: Math.round(similarity * 0.8 * 100) / 100,
          reason: 'SIMILAR_NAME',
          explanation: `"${header}" looks like a misspelling of "${name}".`,
        });
      }
    }
  }
  if (!taken.has('email') && sample.length > 0) {
    const emails = sample.filter((value) => emailPattern.test(value.trim())).length;
    const share = emails / sample.length;
    if (share >= 0.8) {
      offer({
        fieldKey: 'email',
        score: Math.round((0.6 + 0.3 * share) * 100) / 100,
        reason: 'VALUES',
        explanation: `${Math.round(share * 100)}% of its first ${sample.length} values are email addresses.`,
      });
    }
  }
  return [...best.values()]
    .sort((a, b) => b.score - a.score || a.fieldKey.localeCompare(b.fieldKey))
    .slice(0, MAX_SUGGESTIONS);
}

/**
 * Suggestions for every NEW column of a session, by column index, from the first staged rows'
 * values (one query for all the columns).
 */
export async function columnSuggestions(
  db: Database,
  session: Pick<ImportSession, 'id' | 'companyId' | 'columns'>,
): Promise<Map<number, FieldSuggestion[]>> {
  const suggestions = new Map<number, FieldSuggestion[]>();
  const open = session.columns.filter((column) => column.status === 'NEW');
  if (open.length === 0) return suggestions;
  const fields = await listUserFields(db, session.companyId);
  const rows = await db
    .select({ cells: importRows.cells })
    .from(importRows)
    .where(eq(importRows.sessionId, session.id))
    .orderBy(asc(importRows.rowNumber))
    .limit(SAMPLE_ROWS);
  const taken = new Set(
    session.columns.flatMap((column) =>
      column.fieldKey && column.status !== 'NEW' && column.status !== 'IGNORED'
        ? [column.fieldKey]
        : [],
    ),
  );
  for (const column of open) {
    const sample = rows.flatMap((row) => {
      const value = row.cells[column.columnIndex];
      return value ? [value] : [];
    });
    suggestions.set(column.columnIndex, suggestFields(column.header, sample, fields, taken));
  }
  return suggestions;
}

/** Most columns a confirmColumns call may name (a sheet has at most 500). */
export const MAX_COLUMN_CHOICES = 1000;

/**
 * Stage 2: the admin's decision for each column. MATCHED keeps an automatic match; MAP fills
 * an existing field (built-in or custom) from the column; ADD creates a custom field named by
 * the header (for all the company's users); IGNORE leaves the column out. Columns not named
 * keep their match, and NEW ones are ignored. Every built-in field must end up filled, each
 * field by one column. MAP decisions are remembered for the company; then validation starts.
 */
export async function confirmColumns(
  db: Database,
  companyId: string,
  sessionId: string,
  choices: ColumnChoice[],
): Promise<ImportSession> {
  return db.transaction(async (tx) => {
    const session = await lockSession(tx, companyId, sessionId);
    assertStage(session, ['CUSTOM_FIELDS']);
    if (session.busy) throw new SessionBusyError(session.stage);
    const unknown = choices.filter(
      (choice) => !session.columns.some((column) => sameHeader(column.header, choice.header)),
    );
    if (unknown.length > 0) {
      throw new UnknownHeaderError(
        unknown.map((choice) => choice.header),
        'columns of this file',
        "Use the headers listed in the session's columns.",
      );
    }
    const fields = await listUserFields(tx, companyId);
    const fieldKeys = new Set(fields.map((field) => field.key));
    const seen = new Set<string>();
    const remember: { header: string; fieldKey: string }[] = [];
    const toAdd: ImportColumn[] = [];
    const columns = session.columns.map((column): ImportColumn => {
      const choice = choices.find((candidate) => sameHeader(candidate.header, column.header));
      if (!choice) return column.status === 'NEW' ? { ...column, status: 'IGNORED' } : column;
      if (seen.has(column.header.toLowerCase())) {
        throw new InvalidColumnDecisionError(column.header, 'it is decided more than once.');
      }
      seen.add(column.header.toLowerCase());
      switch (choice.action) {
        case 'MATCHED':
          if (column.status !== 'MATCHED') {
            throw new InvalidColumnDecisionError(
              column.header,
              'it was not matched automatically: MAP it to a field, ADD it or IGNORE it.',
            );
          }
          return column;
        case 'MAP': {
          if (!choice.fieldKey) {
            throw new InvalidColumnDecisionError(
              column.header,
              'MAP needs the fieldKey to map to.',
            );
          }
          if (!fieldKeys.has(choice.fieldKey)) throw new UnknownFieldError(choice.fieldKey);
          remember.push({ header: column.header, fieldKey: choice.fieldKey });
          const { matchSource: _source, ...rest } = column;
          return { ...rest, fieldKey: choice.fieldKey, status: 'MAPPED' };
        }
        case 'ADD': {
          const added: ImportColumn = {
            header: column.header,
            columnIndex: column.columnIndex,
            fieldKey: null,
            status: 'ADDED',
          };
          toAdd.push(added);
          return added;
        }
        default:
          return {
            header: column.header,
            columnIndex: column.columnIndex,
            fieldKey: null,
            status: 'IGNORED',
          };
      }
    });
    const filledBy = new Map<string, string[]>();
    for (const column of columns) {
      if (!column.fieldKey || column.status === 'IGNORED' || column.status === 'NEW') continue;
      filledBy.set(column.fieldKey, [...(filledBy.get(column.fieldKey) ?? []), column.header]);
    }
    for (const [fieldKey, headers] of filledBy) {
      if (headers.length > 1) throw new FieldMappedTwiceError(fieldKey, headers);
    }
    const unmapped = unmappedRequiredFields(columns);
    if (unmapped.length > 0) {
      throw new RequiredFieldUnmappedError(unmapped.map((field) => field.key));
    }
    // Last: a typed error above must not leave new custom fields behind (the transaction
    // would roll them back, but this also keeps the common error path free of writes).
    for (const column of toAdd) {
      column.fieldKey = (await createCustomField(tx, companyId, column.header)).key;
    }
    await rememberColumnMappings(tx, companyId, remember);
    const [updated] = await tx
      .update(importSessions)
      .set({
        columns,
        columnDecisions: columns.map(({ header, status, fieldKey }) => ({
          header,
          status,
          fieldKey,
        })),
        stage: 'VALIDATION',
        step: 'VALIDATE',
        busy: true,
        progress: { phase: 'QUEUED', done: 0, total: null },
        updatedAt: sql`now()`,
      })
      .where(eq(importSessions.id, sessionId))
      .returning();
    return updated as ImportSession;
  });
}
