/**
 * Every command line of the project, as `npm run` starts it: `--help` prints a usage and exits 0,
 * doing nothing else; an unknown option exits 2 and names it (the README's exit codes).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runProcess, type Finished } from './harness/run-process.js';

const root = resolve(import.meta.dirname, '..');
const scripts = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')).scripts as Record<string, string>;

/** Scripts whose command line is a tool's own (its help is the tool's), or that run the tests themselves. */
const TOOLS: Record<string, string> = {
  test: 'runs this test (tsc, then vitest)',
  typecheck: 'tsc',
  bench: 'vitest bench',
};

/** The usage line each of the project's own commands prints. */
const USAGES: Record<string, RegExp> = {
  start: /^Usage: npm start -- \[options\]/m,
  gateway: /^Usage: npm run gateway -- \[options\]/m,
  subgraph: /^Usage: tsx subgraphs\/main\.ts serve \[options\] <domain>/m,
  data: /^Usage: tsx subgraphs\/main\.ts prepare \[options\]/m,
  sdl: /^Usage: tsx subgraphs\/main\.ts sdl \[options\] <domain>/m,
  domain: /^Usage: npm run domain -- \[options\] \[command\]/m,
  pipelines: /^Usage: npm run pipelines -- \[options\] \[command\]/m,
  catalog: /^Usage: npm run -s catalog -- \[options\] \[command\]/m,
  quality: /^Usage: npm run -s quality -- \[options\] \[command\]/m,
  registry: /^Usage: npm run -s registry -- \[options\] \[command\]/m,
  'docs:errors': /^Usage: npm run docs:errors -- \[options\]/m,
  token: /^Usage: npm run -s token -- \[options\]/m,
  'audit:verify': /^Usage: npm run -s audit:verify -- \[options\] <logs\.\.\.>/m,
  codegen: /^Usage: npm run codegen -- \[options\]/m,
  build: /^Usage: npm run build -- \[options\]/m,
  'build:ide': /^Usage: npm run build:ide -- \[options\]/m,
  prepare: /^Usage: npm run build:ide -- \[options\]/m,
  'bench:peers': /^`npm run bench:peers`: The Guild's federation gateway benchmark/m,
  'bench:pairs': /^Usage: npm run bench:pairs -- \[options\]/m,
  'profile:gateway': /^`npm run profile:gateway`: where this gateway spends its time/m,
};

function npmRun(script: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<Finished> {
  return runProcess('npm', ['run', '-s', script, '--', ...args], { cwd: root, env });
}

/** Runs `work` over `items`, four at a time. */
async function eachLimited<T>(items: readonly T[], work: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(Array.from({ length: 4 }, async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await work(item);
  }));
}

describe('every command line in package.json', () => {
  let dataDir: string;
  // Help must do nothing: no data generated, nothing built or served, in a folder of its own.
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'help-'));
    env = { DATA_DIR: dataDir, REGISTRY_URL: join(dataDir, 'registry') };
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('is known here: a project command with its usage, or a tool named as such', () => {
    expect(Object.keys(scripts).filter((name) => !(name in USAGES) && !(name in TOOLS))).toEqual([]);
  });

  it('prints its usage on --help, exit 0, and does nothing else', async () => {
    const answers: Record<string, { code: number | null; usage: boolean; stderr: string }> = {};
    await eachLimited(Object.keys(USAGES), async (script) => {
      const { code, stdout, stderr } = await npmRun(script, ['--help'], env);
      answers[script] = { code, usage: USAGES[script]!.test(stdout), stderr: stderr.trim().slice(0, 300) };
    });
    for (const script of Object.keys(USAGES)) expect({ script, ...answers[script] }).toEqual({ script, code: 0, usage: true, stderr: '' });
    // Nothing was generated, built or registered by asking for help.
    const { readdir } = await import('node:fs/promises');
    expect(await readdir(dataDir)).toEqual([]);
  }, 180_000);

  it('refuses an unknown option with exit 2, naming it', async () => {
    const answers: Record<string, { code: number | null; named: boolean }> = {};
    const ours = Object.keys(USAGES).filter((script) => script !== 'bench:peers' && script !== 'profile:gateway');
    await eachLimited(ours, async (script) => {
      const { code, stderr } = await npmRun(script, ['--no-such-option'], env);
      answers[script] = { code, named: /unknown option '--no-such-option'/.test(stderr) };
    });
    for (const script of ours) expect({ script, ...answers[script] }).toEqual({ script, code: 2, named: true });
    for (const script of ['bench:peers', 'profile:gateway']) {
      const { code, stderr } = await npmRun(script, ['--no-such-option'], env);
      expect({ script, code, named: /unknown argument '--no-such-option'/.test(stderr) }).toEqual({ script, code: 2, named: true });
    }
  }, 180_000);
});
