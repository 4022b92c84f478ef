/**
 * The production build on a small project of its own (in test/artifacts, so that it resolves this
 * project's packages): what it compiles and copies, and that a type error writes nothing.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProduction } from './build.js';

const project = resolve(import.meta.dirname, '../../test/artifacts', `build-${process.pid}`);

async function write(path: string, text: string): Promise<void> {
  await mkdir(dirname(join(project, path)), { recursive: true });
  await writeFile(join(project, path), text);
}

beforeAll(async () => {
  await write('tsconfig.json', JSON.stringify({ extends: '../../../tsconfig.json', include: ['gateway', 'subgraphs', 'policy'] }));
  await write('gateway/served.ts', "import { shared } from '../policy/shared.js';\nexport const served: number = shared + 1;\n");
  await write('gateway/served.test.ts', "export const notShipped: number = 1;\n");
  await write('gateway/schema.graphql', 'type Query { served: Int }\n');
  await write('policy/shared.ts', 'export const shared: number = 41;\n');
  await mkdir(join(project, 'subgraphs'), { recursive: true });
});

afterAll(async () => {
  await rm(project, { recursive: true, force: true });
});

describe('npm run build', () => {
  it('compiles the parts to JavaScript beside the schemas they read, with the IDE bundled; no tests', async () => {
    const report = await buildProduction(project);
    expect(report).toEqual({ dir: join(project, 'dist'), compiled: 2, assets: 1 });
    const served = await import(join(project, 'dist/gateway/served.js'));
    expect(served.served).toBe(42);
    expect(await readFile(join(project, 'dist/gateway/schema.graphql'), 'utf8')).toBe('type Query { served: Int }\n');
    expect(existsSync(join(project, 'dist/gateway/ide/bundle/main.js'))).toBe(true);
    expect(existsSync(join(project, 'dist/gateway/served.test.js'))).toBe(false);
  });

  it('writes nothing when a file does not type-check: the build before stays whole, and no half-built folder is left', async () => {
    await write('gateway/broken.ts', "export const broken: number = 'a string';\n");
    await expect(buildProduction(project)).rejects.toThrow(/The build does not type-check:[\s\S]*gateway\/broken\.ts[\s\S]*not assignable to type 'number'/);
    expect(existsSync(join(project, 'dist/gateway/served.js'))).toBe(true);
    expect(existsSync(join(project, 'dist/gateway/broken.js'))).toBe(false);
    expect((await readdir(project)).filter((name) => name.startsWith('dist'))).toEqual(['dist']);
  });
});
