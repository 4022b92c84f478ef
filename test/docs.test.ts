/**
 * The docs hold together: the README is a front door (under 250 lines) whose map reaches every
 * part's reference, and no relative link in any README points at nothing; each benchmark's figures
 * are its latest run, with the command and the date.
 */
import { existsSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { readdir, readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { README, READMES } from '../policy/errors-doc.js';

const root = resolve(import.meta.dirname, '..');

/** The relative links of a markdown text (`[text](path)`, anchors dropped), each as the file it points at. */
function linkedFiles(markdown: string, from: string): string[] {
  return [...markdown.matchAll(/\]\(([^)\s]+)\)/g)]
    .map((match) => match[1]!)
    .filter((target) => !/^[a-z]+:|^#/.test(target))
    .map((target) => resolve(dirname(from), target.split('#')[0]!));
}

/** The links of a README that point at nothing, as paths from the project root. */
async function brokenLinks(path: string, text?: string): Promise<string[]> {
  const markdown = text ?? (await readFile(path, 'utf8'));
  return linkedFiles(markdown, path).filter((target) => !existsSync(target)).map((target) => relative(root, target));
}

describe('the docs', () => {
  it('keep the README a front door: under 250 lines', async () => {
    expect((await readFile(README, 'utf8')).split('\n').length).toBeLessThan(250);
  });

  it('reach every part\'s reference from the README\'s map', async () => {
    const linked = new Set(linkedFiles(await readFile(README, 'utf8'), README));
    expect(READMES.filter((path) => path !== README && !linked.has(path)).map((path) => relative(root, path))).toEqual([]);
  });

  it('have no relative link that points at nothing', async () => {
    for (const path of READMES) expect(await brokenLinks(path), relative(root, path)).toEqual([]);
  });

  it('would find a broken link (the check sees links)', async () => {
    expect(await brokenLinks(README, 'See [the gateway](gateway/README.md) and [nothing](gateway/NOWHERE.md#part), [a site](https://example.com).')).toEqual(['gateway/NOWHERE.md']);
  });

  it('give each benchmark its latest figures, with the command that measures them and the date', async () => {
    const performance = (await readFile(resolve(root, 'test/README.md'), 'utf8')).split(/^## Performance$/m)[1] ?? '';
    const sections = performance.split(/^### /m).slice(1);
    const benchFiles = (await readdir(resolve(root, 'test'))).filter((name) => name.endsWith('.bench.ts'));
    const scripts = Object.keys((JSON.parse(await readFile(resolve(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts).filter((name) => name.startsWith('bench'));
    for (const measured of [...benchFiles.map((file) => `test/${file}`), ...scripts.map((script) => `npm run ${script}`)]) {
      const section = sections.find((text) => text.includes(measured));
      expect(section, measured).toBeDefined();
      // One latest run: a date, and no diary of runs.
      expect(section!.match(/last run (\d{4}-\d{2}-\d{2})/gi), measured).toHaveLength(1);
    }
  });
});
