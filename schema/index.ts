import { lexicographicSortSchema, printSchema } from 'graphql';
import { builder } from './builder.js';
import './scalars.js';
import './errors.js';
import './company.js';
import './company-settings.js';
import './fields.js';
import './training-groups.js';
import './rules.js';
import './users.js';
import './user-status.js';

export const schema = builder.toSchema({ sortSchema: true });

/** The SDL committed as schema/schema.graphql. */
export function printSortedSchema(): string {
  return `${printSchema(lexicographicSortSchema(schema))}\n`;
}

import './downloads.js';
import './import-session.js';
import './import-rows.js';
import './sync.js';
import './revert.js';
import './api-tokens.js';
import './import-columns.js';
import './row-edits.js';
