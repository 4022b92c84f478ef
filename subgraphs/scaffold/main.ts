/**
 * `npm run domain -- new <name> --source <file or postgres URL>`: a domain from a source, in a
 * folder of its own (see scaffold.ts); `npm run domain -- test <folder>`: that domain's own test.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { Option } from 'commander';
import { CommandFailure, defineCommand, EXIT_REFUSED, runCommand, wholeNumber } from '../../policy/command-line.js';
import { exitCodeOf, ScaffoldError } from './codes.js';
import { scaffoldDomain } from './scaffold.js';
import { limitsFromEnv, type SourceFormat } from './source.js';

interface NewOptions {
  source: string;
  format?: SourceFormat;
  table?: string;
  query?: string;
  into?: string;
  product?: string;
  type?: string;
  key?: string;
  rowPolicy?: string;
  owner?: string;
  purpose?: string;
  port?: number;
}

const command = defineCommand('npm run domain --', 'Makes a domain from a source (new), and runs a domain\'s own test (test).');
command
  .command('new')
  .description('makes a domain from a CSV, Parquet or JSON-lines file or a PostgreSQL table or query: its subgraph, data product, quality rules, test and raw data, in a new folder')
  .argument('<name>', 'the domain\'s name (lower-case letters, digits and _)')
  .requiredOption('--source <file-or-url>', 'a .csv, .parquet, .jsonl/.ndjson file, or a postgres:// connection string (read only)')
  .addOption(new Option('--format <format>', 'the file\'s format, when its name does not say').choices(['csv', 'parquet', 'jsonl']))
  .option('--table <table>', 'PostgreSQL: the table (schema.table)')
  .option('--query <sql>', 'PostgreSQL: a query instead of a table')
  .option('--into <folder>', 'the folder to make (default ./<name>)')
  .option('--product <name>', 'the data product\'s name (default: the file\'s or table\'s)')
  .option('--type <Name>', 'the GraphQL type of one row (default: the product\'s name, singular)')
  .option('--key <column>', 'the key column (default: a filled, unique column, `id` first)')
  .option('--row-policy <column>', 'the column a row policy on the token\'s regions filters (default: `region`, when there is one)')
  .option('--owner <email>', 'the product owner (else a placeholder the registry refuses to publish)')
  .option('--purpose <text>', 'what the product is for (else a placeholder)')
  .option('--port <port>', 'the port it serves on (default: the first free from 4010)', wholeNumber(1, 65_535))
  .action(async (name: string, options: NewOptions) => {
    const argv = process.argv.slice(2).map((arg) => (/\s/.test(arg) ? JSON.stringify(arg) : arg));
    try {
      const started = performance.now();
      const result = await scaffoldDomain({
        name,
        source: { location: options.source, ...(options.format ? { format: options.format } : {}), ...(options.table ? { table: options.table } : {}), ...(options.query ? { query: options.query } : {}) },
        ...(options.into ? { into: options.into } : {}),
        ...(options.product ? { product: options.product } : {}),
        ...(options.type ? { typeName: options.type } : {}),
        ...(options.key ? { key: options.key } : {}),
        ...(options.rowPolicy ? { rowPolicy: options.rowPolicy } : {}),
        ...(options.owner ? { owner: options.owner } : {}),
        ...(options.purpose ? { purpose: options.purpose } : {}),
        ...(options.port ? { port: options.port } : {}),
        limits: limitsFromEnv(),
        command: `npm run domain -- ${argv.join(' ').replace(/postgres(ql)?:\/\/[^\s"]*/g, 'postgres://…')}`,
      });
      const { proposal } = result;
      const pii = proposal.columns.filter((column) => column.pii).map((column) => `${column.field} (${column.redact ? 'redacted: too few values to hash' : 'hashed'})`);
      console.log(`Made the ${result.domain} domain in ${result.folder} (${Math.round(performance.now() - started)} ms):`);
      console.log(`  data product ${result.domain}.${result.product}: ${proposal.columns.length} columns, type ${result.typeName}, key ${proposal.key.column}, ${proposal.exact ? `${proposal.rowsProfiled} rows profiled` : `first ${proposal.rowsProfiled} rows profiled`}`);
      console.log(`  personal data (CONFIDENTIAL, pii, masked): ${pii.length > 0 ? pii.join(', ') : 'none found'}`);
      if (proposal.rowPolicy) console.log(`  row policy: a token sees the rows of its regions (${proposal.rowPolicy.column})`);
      const renamed = proposal.columns.filter((column) => column.renamed);
      if (renamed.length > 0) console.log(`  renamed: ${renamed.map((column) => `${JSON.stringify(column.source)} → ${column.column}`).join(', ')}`);
      if (result.placeholders.length > 0) console.log(`  to fill in before publishing: ${result.placeholders.join(', ')} (search for "<fill in:" in ${result.folder})`);
      console.log('Next:');
      console.log(`  MESH_MANIFEST=${result.manifest} npm start`);
      console.log(`  npm run domain -- test ${result.folder}`);
    } catch (error) {
      if (error instanceof ScaffoldError) throw new CommandFailure(error.message, exitCodeOf(error.code));
      throw error;
    }
  });
command
  .command('test')
  .description('runs a domain\'s own tests (its *.test.ts), with the kit this mesh provides')
  .argument('<folder>', 'the domain\'s folder')
  .action(async (folder: string) => {
    const { startVitest } = await import('vitest/node');
    const kit = (file: string) => fileURLToPath(new URL(`../kit/${file}`, import.meta.url));
    const vitest = await startVitest(
      'test',
      [],
      { root: resolve(folder), include: ['**/*.test.ts'], exclude: ['**/node_modules/**', 'data/**'], watch: false, testTimeout: 60_000, hookTimeout: 120_000 },
      {
        resolve: {
          alias: [
            // As the mesh's own tests do (test/vitest.config.ts): one graphql, Node's resolution of it.
            { find: /^graphql$/, replacement: createRequire(import.meta.url).resolve('graphql') },
            { find: /^@data-mesh\/kit\/testing$/, replacement: kit('testing.ts') },
            { find: /^@data-mesh\/kit$/, replacement: kit('index.ts') },
          ],
        },
      },
    );
    const failed = !vitest || vitest.state.getCountOfFailedTests() > 0 || vitest.state.getFiles().length === 0 || process.exitCode;
    await vitest?.close();
    if (failed) throw new CommandFailure(`The tests of ${resolve(folder)} failed (or none was found).`, EXIT_REFUSED);
  });

await runCommand(command);
