/**
 * What HR exports call the built-in fields, in the languages admins upload in. Pure data and
 * pure functions: the workbook reader (in its worker thread) uses them to recognise the header
 * row, and stage 2 to suggest fields.
 */

export type AliasLanguage = 'en' | 'de' | 'fr' | 'es' | 'ru';

export interface FieldAlias {
  alias: string;
  language: AliasLanguage;
}

const LANGUAGE_NAMES: Record<AliasLanguage, string> = {
  en: 'English',
  de: 'German',
  fr: 'French',
  es: 'Spanish',
  ru: 'Russian',
};

export function languageName(language: AliasLanguage): string {
  return LANGUAGE_NAMES[language];
}

const aliases = (language: AliasLanguage, ...names: string[]): FieldAlias[] =>
  names.map((alias) => ({ alias, language }));

/** Known other names of the built-in fields, by field key. */
export const BUILT_IN_ALIASES: Readonly<Record<string, readonly FieldAlias[]>> = {
  email: [
    ...aliases(
      'en',
      'E-mail',
      'Mail',
      'Email address',
      'E-mail address',
      'Mail address',
      'Work email',
      'Business email',
      'Login',
    ),
    ...aliases('de', 'E-Mail-Adresse', 'Mailadresse', 'Dienstliche E-Mail', 'Anmeldename'),
    ...aliases('fr', 'Courriel', 'Adresse e-mail', 'Adresse électronique', 'Adresse mail'),
    ...aliases('es', 'Correo', 'Correo electrónico', 'Dirección de correo', 'Correo corporativo'),
    ...aliases('ru', 'Почта', 'Электронная почта', 'Эл. почта', 'Адрес почты', 'Логин'),
  ],
  userName: [
    ...aliases('en', 'User name', 'Name', 'Full name', 'Display name', 'Employee name', 'Username'),
    ...aliases('de', 'Benutzername', 'Vollständiger Name', 'Mitarbeitername', 'Anzeigename'),
    ...aliases('fr', 'Nom', 'Nom complet', "Nom d'utilisateur", "Nom de l'employé"),
    ...aliases('es', 'Nombre', 'Nombre completo', 'Nombre de usuario', 'Nombre del empleado'),
    ...aliases('ru', 'Имя', 'ФИО', 'Имя пользователя', 'Полное имя', 'Сотрудник'),
  ],
  reference: [
    ...aliases(
      'en',
      'Ref',
      'Employee ID',
      'Employee number',
      'Staff ID',
      'Staff number',
      'Personnel number',
      'External ID',
      'ID',
    ),
    ...aliases('de', 'Personalnummer', 'Mitarbeiternummer', 'Mitarbeiter-ID', 'Referenz'),
    ...aliases('fr', 'Matricule', 'Numéro employé', 'Identifiant', 'Référence'),
    ...aliases('es', 'Número de empleado', 'ID de empleado', 'Legajo', 'Referencia'),
    ...aliases('ru', 'Табельный номер', 'Табельный №', 'Код сотрудника', 'Идентификатор'),
  ],
};

/**
 * A header reduced to what tells headers apart: Unicode compatibility form, accents dropped,
 * lower case, letters and digits only. "E-Mail-Adresse" and "e-mail adresse" are one key.
 */
export function headerKey(header: string): string {
  return header
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, '');
}

/** headerKeys of the labels and aliases of the built-in fields. */
export function builtInHeaderKeys(labels: readonly { key: string; label: string }[]): string[] {
  return labels.flatMap((field) => [
    headerKey(field.label),
    ...(BUILT_IN_ALIASES[field.key] ?? []).map((alias) => headerKey(alias.alias)),
  ]);
}

/** Levenshtein distance, for near-miss headers ("Emial", "Refrence"). */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  const previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = previous[0] as number;
    previous[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = previous[j] as number;
      previous[j] = Math.min(
        above + 1,
        (previous[j - 1] as number) + 1,
        diagonal + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      diagonal = above;
    }
  }
  return previous[b.length] as number;
}
