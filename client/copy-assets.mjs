// Puts the schema and the operations' sources beside the build, for teams' own codegen.
import { cpSync } from 'node:fs';

cpSync('../schema/schema.graphql', 'dist/schema.graphql');
cpSync('operations', 'dist/operations', { recursive: true });
