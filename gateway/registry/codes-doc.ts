/**
 * Keeps gateway/registry/README.md's table of check codes generated from `codes.ts` (`npm run
 * docs:errors`, test/docs-errors.ts, rewrites it); a test fails while the file is out of date.
 */
import { fileURLToPath } from 'node:url';
import { withGeneratedSections, type GeneratedSection } from '../../policy/errors-doc.js';
import { renderCheckCodeTable } from './codes.js';

/** Shipping a subgraph: where the check-code table is generated. */
export const REGISTRY_README = fileURLToPath(new URL('./README.md', import.meta.url));

export const CHECK_CODE_SECTION: GeneratedSection = {
  start: '<!-- check-codes:start (generated from gateway/registry/codes.ts by `npm run docs:errors`) -->',
  end: '<!-- check-codes:end -->',
  render: renderCheckCodeTable,
};

export function withCheckCodeTable(readme: string): string {
  return withGeneratedSections(readme, [CHECK_CODE_SECTION]);
}
