import { type SQL, sql } from 'drizzle-orm';

/** A list of row numbers as one parameter (drizzle spreads a JS array into a tuple). */
export function intArraySql(numbers: number[]): SQL {
  return sql`${`{${numbers.map((number) => Math.trunc(number)).join(',')}}`}::int[]`;
}

/** A list of texts as one parameter, whatever they hold. */
export function textArraySql(texts: string[]): SQL {
  return sql`array(select jsonb_array_elements_text(${JSON.stringify(texts)}::text::jsonb))`;
}
