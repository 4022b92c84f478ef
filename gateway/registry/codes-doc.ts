/**
 * Keeps gateway/registry/README.md's table of check codes generated from `codes.ts`, and `npm run
 * docs:errors` rewrites every generated table (this one, and policy/README.md's error codes and
 * token refusal reasons); a test fails while a file is out of date.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { defineCommand, runCommand } from '../../policy/command-line.js';
import { POLICY_README, withErrorTable, withGeneratedSections, type GeneratedSection } from '../../policy/errors-doc.js';

/** Shipping a subgraph: where the check-code table is generated. */
export const REGISTRY_README = fileURLToPath(new URL('./README.md', import.meta.url));
import { renderCheckCodeTable } from './codes.js';

export const CHECK_CODE_SECTION: GeneratedSection = {
  start: '<!-- check-codes:start (generated from gateway/registry/codes.ts by `npm run docs:errors`) -->',
  end: '<!-- check-codes:end -->',
  render: renderCheckCodeTable,
};

export function withCheckCodeTable(readme: string): string {
  return withGeneratedSections(readme, [CHECK_CODE_SECTION]);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await runCommand(
    defineCommand('npm run docs:errors --', 'Rewrites the README\'s generated tables: error codes (policy/errors.ts), token refusal reasons (policy/identity.ts), registry check codes (gateway/registry/codes.ts).').action(async () => {
      await writeFile(POLICY_README, withErrorTable(await readFile(POLICY_README, 'utf8')));
      await writeFile(REGISTRY_README, withCheckCodeTable(await readFile(REGISTRY_README, 'utf8')));
      console.log('policy/README.md and gateway/registry/README.md generated tables updated.');
    }),
  );
}
