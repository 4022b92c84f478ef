/**
 * Keeps the README's table of registry check codes generated from `codes.ts`, and `npm run
 * docs:errors` rewrites every generated table of the README (this one, and policy/errors-doc.ts's
 * error codes and token refusal reasons); a test fails while the README is out of date.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { defineCommand, runCommand } from '../../policy/command-line.js';
import { README, withErrorTable, withGeneratedSections, type GeneratedSection } from '../../policy/errors-doc.js';
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
      await writeFile(README, withCheckCodeTable(withErrorTable(await readFile(README, 'utf8'))));
      console.log('README.md generated tables updated.');
    }),
  );
}
