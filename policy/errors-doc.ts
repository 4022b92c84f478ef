/**
 * Keeps the README's error table generated from the catalogue: `npm run docs:errors` rewrites the
 * part between the markers, and a test fails while the README is out of date.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { renderErrorTable } from './errors.js';

export const README = fileURLToPath(new URL('../README.md', import.meta.url));
const START = '<!-- error-table:start (generated from policy/errors.ts by `npm run docs:errors`) -->';
const END = '<!-- error-table:end -->';

/** The README with its error table replaced by the catalogue's. */
export function withErrorTable(readme: string): string {
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start < 0 || end < start) throw new Error(`README.md has no error table markers (${START} … ${END}).`);
  return `${readme.slice(0, start + START.length)}\n${renderErrorTable()}\n${readme.slice(end)}`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const readme = await readFile(README, 'utf8');
  await writeFile(README, withErrorTable(readme));
  console.log('README.md error table updated.');
}
