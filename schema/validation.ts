import { z } from 'zod';

/**
 * C0 controls and DEL: never part of a name, a search or a key, and Postgres refuses NUL in
 * text outright (which was an "Unexpected error.").
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point.
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;
/** The same, but tab and line breaks are allowed (free text such as a comment). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point.
const CONTROL_CHARACTERS_BUT_LINES = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

/** A one-line string argument: at most `max` characters and no control characters. */
export function singleLineText(what: string, max: number) {
  return z
    .string()
    .max(max, `${what} must be at most ${max} characters.`)
    .refine((value) => !CONTROL_CHARACTERS.test(value), {
      message: `${what} must not contain control characters.`,
    });
}

/** Free text (line breaks allowed): at most `max` characters, no other control characters. */
export function multiLineText(what: string, max: number) {
  return z
    .string()
    .max(max, `${what} must be at most ${max} characters.`)
    .refine((value) => !CONTROL_CHARACTERS_BUT_LINES.test(value), {
      message: `${what} must not contain control characters.`,
    });
}

/** Longest `users(search:)`: each user is matched three times with ILIKE. */
export const MAX_SEARCH_LENGTH = 200;
