/**
 * Keeps policy/README.md's tables generated from their catalogues (error codes, token refusal
 * reasons): `npm run docs:errors` (test/docs-errors.ts) rewrites the parts between the
 * markers, and a test fails while the file is out of date. Also lists the project's READMEs.
 */
import { fileURLToPath } from 'node:url';
import { renderErrorTable } from './errors.js';
import { TOKEN_REJECTIONS } from './identity.js';

/** The front door. */
export const README = fileURLToPath(new URL('../README.md', import.meta.url));
/** Who sees what, and the error codes: where the error and token-reason tables are generated. */
export const POLICY_README = fileURLToPath(new URL('./README.md', import.meta.url));
/** Every README of the project: the front door and the reference beside each part's code. */
export const READMES: readonly string[] = [
  README,
  POLICY_README,
  fileURLToPath(new URL('../subgraphs/README.md', import.meta.url)),
  fileURLToPath(new URL('../gateway/README.md', import.meta.url)),
  fileURLToPath(new URL('../gateway/registry/README.md', import.meta.url)),
  fileURLToPath(new URL('../test/README.md', import.meta.url)),
];

/** A part of the README between two markers, rendered from a catalogue. */
export interface GeneratedSection {
  readonly start: string;
  readonly end: string;
  readonly render: () => string;
}

const SECTIONS: readonly GeneratedSection[] = [
  {
    start: '<!-- error-table:start (generated from policy/errors.ts by `npm run docs:errors`) -->',
    end: '<!-- error-table:end -->',
    render: renderErrorTable,
  },
  {
    start: '<!-- token-reasons:start (generated from policy/identity.ts by `npm run docs:errors`) -->',
    end: '<!-- token-reasons:end -->',
    render: () =>
      ['| reason | meaning |', '| --- | --- |', ...Object.entries(TOKEN_REJECTIONS).map(([reason, text]) => `| \`${reason}\` | ${text} |`)].join('\n'),
  },
];

/** The README with the given generated sections replaced by what their catalogues render. */
export function withGeneratedSections(readme: string, sections: readonly GeneratedSection[]): string {
  let text = readme;
  for (const { start, end, render } of sections) {
    const from = text.indexOf(start);
    const to = text.indexOf(end);
    if (from < 0 || to < from) throw new Error(`The README has no generated section markers (${start} … ${end}).`);
    text = `${text.slice(0, from + start.length)}\n${render()}\n${text.slice(to)}`;
  }
  return text;
}

/** policy/README.md with its error and token-reason tables replaced by the catalogues'. */
export function withErrorTable(readme: string): string {
  return withGeneratedSections(readme, SECTIONS);
}

