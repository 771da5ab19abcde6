import { GraphQLError } from 'graphql';
import { GraphQLUpload } from 'graphql-upload-ts';
import { builder } from './builder.js';

builder.scalarType('DateTime', {
  description: 'A moment in time, as an ISO 8601 string in UTC (e.g. 2026-01-31T09:30:00.000Z).',
  serialize: (value) => (value instanceof Date ? value : new Date(value)).toISOString(),
  parseValue: (value) => {
    const date = typeof value === 'string' ? new Date(value) : null;
    if (!date || Number.isNaN(date.getTime())) {
      throw new GraphQLError('DateTime must be an ISO 8601 string.');
    }
    return date;
  },
});

builder.addScalarType('Upload', GraphQLUpload, {
  description:
    'A file sent with the GraphQL multipart request spec (multipart/form-data with operations, map and the file).',
});
