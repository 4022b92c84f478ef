/**
 * The domains' boundary, enforced: a domain never imports another domain, nor the gateway (the list
 * of domains is the mesh's). That it uses nothing of the platform but the kit's public API, and the
 * other rules (no import cycle, policy/ standing alone, the gateway knowing no subgraph code), are
 * dependency-cruiser's, in test/import-rules.test.ts.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join, relative, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { domains } from '../subgraphs/domains.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

async function sourceFiles(folder: string): Promise<string[]> {
  const entries = await readdir(join(root, folder), { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => relative(root, join(entry.parentPath, entry.name)));
}

/** Every relative import of a file, as a path from the project root. */
async function importsOf(file: string): Promise<string[]> {
  const text = await readFile(join(root, file), 'utf8');
  const specifiers = [...text.matchAll(/(?:from|import)\s*\(?\s*['"](\.[^'"]+)['"]/g)].map((m) => m[1]!);
  return specifiers.map((specifier) => relative(root, resolve(root, dirname(file), specifier)));
}

async function violations(folder: string, forbidden: (target: string, file: string) => boolean): Promise<string[]> {
  const found: string[] = [];
  for (const file of await sourceFiles(folder)) {
    for (const target of await importsOf(file)) if (forbidden(target, file)) found.push(`${file} → ${target}`);
  }
  return found;
}

describe("the domains' boundary", () => {
  it('a domain imports no other domain and nothing of the gateway', async () => {
    const names = domains.map((domain) => domain.name);
    const domainOf = (path: string) => names.find((name) => path.startsWith(`subgraphs/${name}/`));
    for (const name of names) {
      expect(await violations(`subgraphs/${name}`, (target, file) => {
        const targetDomain = domainOf(target);
        return targetDomain !== undefined && targetDomain !== domainOf(file);
      })).toEqual([]);
      expect(await violations(`subgraphs/${name}`, (target) => target.startsWith('gateway/'))).toEqual([]);
    }
  });

  it('the checker sees imports (it would catch a violation)', async () => {
    expect(await importsOf('subgraphs/customers/index.ts')).toContain('subgraphs/customers/repository.js');
  });
});
