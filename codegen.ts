/**
 * Typed clients for apps: `npm run codegen` generates, with GraphQL Code Generator's client preset,
 * TypeScript types and typed document nodes for the example app's operations, and a
 * persisted-documents manifest (SHA-256 hash → document) that the app registers with the registry
 * as its trusted documents.
 *
 * The schema is the composed API schema file the gateway writes (env `API_SCHEMA_PATH`, default
 * `data/api-schema.graphql`), never live introspection: what the app compiles against is exactly
 * what was published.
 */
import type { CodegenConfig } from '@graphql-codegen/cli';

const config: CodegenConfig = {
  schema: process.env.API_SCHEMA_PATH || 'data/api-schema.graphql',
  documents: ['test/example-app/src/**/*.ts', '!test/example-app/src/gql/**'],
  ignoreNoDocuments: false,
  generates: {
    'test/example-app/src/gql/': {
      preset: 'client',
      presetConfig: {
        fragmentMasking: false,
        persistedDocuments: { hashAlgorithm: 'sha256', mode: 'embedHashInDocument' },
      },
      config: {
        useTypeImports: true,
        enumsAsTypes: true,
        scalars: { LocalDate: 'string', DateTime: 'string' },
        strictScalars: true,
      },
    },
  },
};

export default config;
