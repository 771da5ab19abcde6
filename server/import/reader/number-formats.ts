/**
 * What a cell's number format means for the text an import reads: most formats are shown as
 * General (the number itself), dates and times as ISO text, and a zero-padded or text-like
 * format (`00000`, `"EMP"0000`) as it is displayed, since it usually holds an identifier.
 */
export type CellFormat =
  | { kind: 'general' }
  | {
      kind: 'date';
      /** The format shows a date (year, month or day). */
      date: boolean;
      /** The format shows a time of day (hours, minutes or seconds). */
      time: boolean;
      seconds: boolean;
      /** `[h]:mm`: a duration, its hours counted past 24. */
      elapsed: boolean;
    }
  | { kind: 'padded'; parts: (string | 0)[]; placeholders: number };

export const GENERAL: CellFormat = { kind: 'general' };

/** Excel's built-in formats that are not General-like (ECMA-376 §18.8.30). */
const BUILT_IN: Record<number, string> = {
  14: 'mm-dd-yy',
  15: 'd-mmm-yy',
  16: 'd-mmm',
  17: 'mmm-yy',
  18: 'h:mm AM/PM',
  19: 'h:mm:ss AM/PM',
  20: 'h:mm',
  21: 'h:mm:ss',
  22: 'm/d/yy h:mm',
  45: 'mm:ss',
  46: '[h]:mm:ss',
  47: 'mm:ss.0',
};
/** Built-in ids of East Asian date formats, which differ by locale: all dates. */
const EAST_ASIAN_DATES = new Set([27, 28, 29, 30, 31, 34, 35, 36, 50, 51, 52, 53, 54, 57, 58]);
const EAST_ASIAN_TIMES = new Set([32, 33, 55, 56]);

export function builtInFormat(id: number): CellFormat {
  if (EAST_ASIAN_DATES.has(id)) return classify('yyyy-mm-dd');
  if (EAST_ASIAN_TIMES.has(id)) return classify('h:mm:ss');
  const code = BUILT_IN[id];
  return code ? classify(code) : GENERAL;
}

/** Characters Excel displays as they are in a format, without quotes. */
const PLAIN_LITERALS = new Set([..."$-+/():!^&'~{}<>= "]);

/** The meaning of a format code (only its first section, for positive numbers, counts). */
export function classify(code: string): CellFormat {
  const tokens: { literal: boolean; text: string }[] = [];
  let elapsed = false;
  for (let at = 0; at < code.length; at += 1) {
    const char = code.charAt(at);
    if (char === ';') break;
    if (char === '"') {
      const end = code.indexOf('"', at + 1);
      const stop = end === -1 ? code.length : end;
      tokens.push({ literal: true, text: code.slice(at + 1, stop) });
      at = stop;
    } else if (char === '\\') {
      tokens.push({ literal: true, text: code.charAt(at + 1) });
      at += 1;
    } else if (char === '_' || char === '*') {
      // Space the width of, or fill with, the next character: nothing to read.
      at += 1;
    } else if (char === '[') {
      const end = code.indexOf(']', at);
      const stop = end === -1 ? code.length : end;
      // Colours, conditions and locales say nothing of the value; [h], [mm], [ss] do.
      if (/^\[(h+|m+|s+)\]$/i.test(code.slice(at, stop + 1))) {
        elapsed = true;
        tokens.push({ literal: false, text: code.slice(at + 1, stop) });
      }
      at = stop;
    } else {
      tokens.push({ literal: false, text: char });
    }
  }
  const codeText = tokens
    .filter((token) => !token.literal)
    .map((token) => token.text)
    .join('')
    .toLowerCase()
    .replace(/am\/pm|a\/p/g, 'h');
  if (codeText === 'general' || codeText === '@' || codeText === '') return GENERAL;
  const hasTime = /[hs]/.test(codeText) || elapsed;
  const hasDate = /[yd]/.test(codeText) || (/m/.test(codeText) && !hasTime);
  if (hasDate || hasTime) {
    return { kind: 'date', date: hasDate, time: hasTime, seconds: codeText.includes('s'), elapsed };
  }
  const parts: (string | 0)[] = [];
  let placeholders = 0;
  let literals = '';
  for (const token of tokens) {
    if (token.literal) {
      parts.push(token.text);
      literals += token.text;
    } else if (token.text === '0') {
      parts.push(0);
      placeholders += 1;
    } else if (PLAIN_LITERALS.has(token.text)) {
      parts.push(token.text);
      literals += token.text.trim();
    } else {
      return GENERAL;
    }
  }
  if (placeholders === 0 || (placeholders === 1 && literals === '')) return GENERAL;
  return { kind: 'padded', parts, placeholders };
}

/**
 * An integer as a padded format displays it: digits fill the placeholders from the right,
 * the first placeholder taking any digits left over.
 */
export function formatPadded(
  value: number,
  format: { parts: (string | 0)[]; placeholders: number },
) {
  const digits = String(Math.abs(value)).padStart(format.placeholders, '0');
  let next = digits.length - format.placeholders;
  let first = true;
  let text = value < 0 ? '-' : '';
  for (const part of format.parts) {
    if (part !== 0) {
      text += part;
    } else if (first) {
      text += digits.slice(0, next + 1);
      next += 1;
      first = false;
    } else {
      text += digits.charAt(next);
      next += 1;
    }
  }
  return text;
}
