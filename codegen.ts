import type { CodegenConfig } from '@graphql-codegen/cli';

// Typed documents for the client package, from the committed schema (never a running server).
const config: CodegenConfig = {
  schema: 'schema/schema.graphql',
  documents: ['client/operations/**/*.graphql'],
  ignoreNoDocuments: false,
  generates: {
    'client/gql/': {
      preset: 'client',
      presetConfig: { fragmentMasking: false },
      config: {
        // NodeNext resolution needs explicit .js extensions in the generated imports.
        emitLegacyCommonJSImports: false,
        useTypeImports: true,
        enumsAsTypes: true,
        scalars: { DateTime: 'string', Upload: 'File | Blob' },
      },
    },
  },
};

export default config;
