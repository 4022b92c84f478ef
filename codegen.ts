/**
 * Typed clients for apps: `npm run codegen` generates, with GraphQL Code Generator's client preset,
 * TypeScript types and typed document nodes for an app's operations, and a persisted-documents
 * manifest (SHA-256 hash → document) that the app registers with the registry as its trusted
 * documents.
 *
 *   npm run codegen                                  the example app (test/example-app)
 *   npm run codegen -- --app ../my-app               an app folder: its operations under src/, the
 *                                                    client in src/gql/; or as its codegen.json says:
 *                                                    { "documents": ["ops/**\/*.graphql"], "out": "lib/gql" }
 *   npm run codegen -- --documents 'x/**\/*.ts' --out x/gql    any layout, named on the command line
 *
 * The schema is the composed API schema file the gateway writes (`--schema`, env `API_SCHEMA_PATH`,
 * default `data/api-schema.graphql`), never live introspection: what the app compiles against is
 * exactly what was published. GraphQL Code Generator may also read this file as its configuration
 * (`graphql-codegen --config codegen.ts`): the example app's.
 *
 * Exit codes: 0 generated, 1 an operation does not fit the schema (named), 2 the command could not
 * run (no schema file, no documents, a wrong command line).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CodegenConfig } from '@graphql-codegen/cli';

/** Where an app's operations are and where its client goes. */
export interface ClientTarget {
  /** Globs of the files holding the app's operations (`.ts`, `.tsx` with `graphql(…)`, or `.graphql`). */
  readonly documents: readonly string[];
  /** The folder the client is generated into (it is left out of `documents`). */
  readonly out: string;
  /** The composed API schema file. */
  readonly schema: string;
}

export const DEFAULT_SCHEMA = 'data/api-schema.graphql';
const EXAMPLE_APP = 'test/example-app';

/** An app folder's target: its `codegen.json` (`documents`, `out`, relative to the app), else `src/` and `src/gql/`. */
export function appTarget(app: string, schema: string): ClientTarget {
  const file = join(app, 'codegen.json');
  if (!existsSync(file)) return { documents: [join(app, 'src', '**', '*.{ts,tsx,graphql}')], out: join(app, 'src', 'gql'), schema };
  let configured: { documents?: unknown; out?: unknown };
  try {
    configured = JSON.parse(readFileSync(file, 'utf8')) as typeof configured;
  } catch (error) {
    throw new Error(`${file} is not JSON: ${(error as Error).message}`);
  }
  const documents = typeof configured.documents === 'string' ? [configured.documents] : configured.documents;
  if (!Array.isArray(documents) || documents.length === 0 || !documents.every((d) => typeof d === 'string') || typeof configured.out !== 'string') {
    throw new Error(`${file} must say { "documents": ["<glob>", …], "out": "<folder>" } (paths relative to the app).`);
  }
  return { documents: documents.map((glob: string) => join(app, glob)), out: join(app, configured.out), schema };
}

/** GraphQL Code Generator's configuration for one app's client. */
export function clientConfig(target: ClientTarget): CodegenConfig {
  const out = target.out.endsWith('/') ? target.out : `${target.out}/`;
  return {
    schema: target.schema,
    documents: [...target.documents, `!${join(out, '**')}`],
    ignoreNoDocuments: false,
    generates: {
      [out]: {
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
}

const config: CodegenConfig = clientConfig(appTarget(EXAMPLE_APP, process.env.API_SCHEMA_PATH || DEFAULT_SCHEMA));

export default config;

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const { CommandFailure, defineCommand, EXIT_REFUSED, runCommand } = await import('./policy/command-line.js');
  const command = defineCommand('npm run codegen --', 'Generates a typed client (types, typed documents, a persisted-documents manifest) for an app\'s operations, from the composed API schema.')
    .option('--app <dir>', 'an app folder: its codegen.json, else operations under src/ and the client in src/gql/ (default: the example app)')
    .option('--documents <glob>', 'files holding the operations (repeatable; with --out, instead of --app)', (value: string, previous: string[] = []) => [...previous, value])
    .option('--out <dir>', 'with --documents: the folder the client is generated into')
    .option('--schema <file>', `the composed API schema (default env API_SCHEMA_PATH, else ${DEFAULT_SCHEMA})`)
    .action(async (options: { app?: string; documents?: string[]; out?: string; schema?: string }) => {
      if (options.app && (options.documents || options.out)) throw new CommandFailure('Give --app, or --documents with --out, not both.');
      if (Boolean(options.documents) !== Boolean(options.out)) throw new CommandFailure('--documents and --out go together: where the operations are, and where the client goes.');
      const schema = options.schema ?? (process.env.API_SCHEMA_PATH || DEFAULT_SCHEMA);
      if (!existsSync(schema)) throw new CommandFailure(`No API schema at ${schema}: start the mesh once (npm start writes it), or give --schema <file>.`);
      let target: ClientTarget;
      try {
        target = options.documents ? { documents: options.documents, out: options.out!, schema } : appTarget(options.app ?? EXAMPLE_APP, schema);
      } catch (error) {
        throw new CommandFailure((error as Error).message);
      }
      const { generate } = await import('@graphql-codegen/cli');
      try {
        await generate({ ...clientConfig(target), silent: true, errorsOnly: true }, true);
      } catch (error) {
        const message = (error as Error).message ?? String(error);
        // An operation that does not fit the schema is the answer "no" (1); anything else, a failure to run (2).
        if (/GraphQL Document Validation failed|Cannot query field|Unknown (type|argument|fragment)|Variable "\$/.test(message)) throw new CommandFailure(message, EXIT_REFUSED);
        throw new CommandFailure(/Unable to find any GraphQL type definitions|No (documents|sources) found/i.test(message) ? `No operations found in ${target.documents.join(', ')}.` : message);
      }
      console.log(`Typed client for ${target.documents.map((glob) => relative(process.cwd(), glob) || '.').join(', ')} generated in ${relative(process.cwd(), target.out) || '.'} (persisted-documents.json: register it with npm run registry -- clients register <app> --manifest …).`);
    });
  await runCommand(command);
}
