/**
 * Keeps the README's table of registry check codes generated from `codes.ts`: `npm run docs:errors`
 * rewrites it, and a test fails while the README is out of date.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { README, withGeneratedSections, type GeneratedSection } from '../../policy/errors-doc.js';
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
  await writeFile(README, withCheckCodeTable(await readFile(README, 'utf8')));
  console.log('README.md registry code table updated.');
}
