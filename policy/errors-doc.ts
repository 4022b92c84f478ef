/**
 * Keeps the README's error tables generated from their catalogues (error codes, token refusal
 * reasons): `npm run docs:errors` rewrites the parts between the markers, and a test fails while
 * the README is out of date.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { renderErrorTable } from './errors.js';
import { TOKEN_REJECTIONS } from './identity.js';

export const README = fileURLToPath(new URL('../README.md', import.meta.url));
interface GeneratedSection {
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

/** The README with its generated tables replaced by the catalogues'. */
export function withErrorTable(readme: string): string {
  let text = readme;
  for (const { start, end, render } of SECTIONS) {
    const from = text.indexOf(start);
    const to = text.indexOf(end);
    if (from < 0 || to < from) throw new Error(`README.md has no generated section markers (${start} … ${end}).`);
    text = `${text.slice(0, from + start.length)}\n${render()}\n${text.slice(to)}`;
  }
  return text;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const readme = await readFile(README, 'utf8');
  await writeFile(README, withErrorTable(readme));
  console.log('README.md error tables updated.');
}
