/**
 * The README's "Your own domain, from a data file" (issue 25, part 5): its three commands, run as
 * written (the team's folder and the ports moved to free ones, as tests run side by side), print
 * what the README shows, and the data product answers through the supergraph as it shows.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { README } from '../policy/errors-doc.js';
import { freePort } from './harness/mesh.js';
import { npmStart, stop, type Started } from './harness/npm-start.js';
import { runProcess } from './harness/run-process.js';

const root = resolve(import.meta.dirname, '..');

/** The section's command block (continuation lines joined), the scaffold's output and the answer it shows. */
async function readmeSection(): Promise<{ commands: string[]; made: string; answer: unknown }> {
  const readme = await readFile(README, 'utf8');
  const section = /## Your own domain, from a data file\n([\s\S]*?)\n## /.exec(readme)?.[1];
  if (!section) throw new Error('README has no "Your own domain, from a data file" section');
  const blocks = [...section.matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1], text: m[2]! }));
  const commands = blocks.find((b) => b.lang === 'sh')!.text.replace(/\\\n\s*/g, '').trim().split('\n');
  return { commands, made: blocks.find((b) => b.lang === '')!.text.trimEnd(), answer: JSON.parse(blocks.find((b) => b.lang === 'json')!.text) };
}

describe("the README's three commands from a data file to a governed data product", () => {
  let work: string;
  let section: Awaited<ReturnType<typeof readmeSection>>;
  let mesh: Started | undefined;
  let port: number;
  let made: Awaited<ReturnType<typeof runProcess>>;

  beforeAll(async () => {
    section = await readmeSection();
    expect(section.commands).toHaveLength(3);
    work = await mkdtemp(join(tmpdir(), 'readme-domain-'));
    const [gateway, customers, products, finance, shipping] = (await Promise.all(Array.from({ length: 5 }, () => freePort()))) as [number, number, number, number, number];
    port = gateway;
    // The built-in mesh, on free ports.
    const base = JSON.parse(await readFile(join(root, 'subgraphs/mesh.json'), 'utf8'));
    const ports: Record<string, number> = { customers, products, finance };
    base.domains = base.domains.map((d: { name: string; module: string }) => ({ ...d, module: join(root, 'subgraphs', d.module), url: `http://127.0.0.1:${ports[d.name]}/graphql` }));
    await writeFile(join(work, 'base.json'), JSON.stringify(base));
    // 1. As written, into the test's folder, on a free port.
    const [scaffold, start] = section.commands;
    const args = scaffold!.replace(/^npm run domain -- /, '').match(/"[^"]*"|\S+/g)!.map((arg) => arg.replace(/^"(.*)"$/, '$1').replace('../shipping', join(work, 'shipping')));
    made = await runProcess('npm', ['run', '-s', 'domain', '--', ...args, '--port', String(shipping)], { cwd: root, env: { ...process.env, MESH_MANIFEST: join(work, 'base.json') } });
    // 2. As written, with the manifest it made.
    expect(start).toBe('MESH_MANIFEST=../shipping/mesh.json npm start');
    mesh = await npmStart({ MESH_MANIFEST: join(work, 'shipping/mesh.json'), DATA_DIR: join(work, 'data'), PORT: String(port), SUBGRAPHS: '', SCALE: '', SEED: '', LOG_LEVEL: 'info' });
  }, 240_000);

  afterAll(async () => {
    await stop(mesh);
    await rm(work, { recursive: true, force: true });
  });

  it('makes the domain, saying what the README shows', () => {
    expect(made.code, made.output).toBe(0);
    const normalized = made.stdout.replace(join(work, 'shipping'), '/home/you/shipping').replace(/\(\d+ ms\)/, '(87 ms)');
    expect(normalized.split('\nNext:')[0]).toBe(section.made);
  });

  it('publishes it with the mesh, and answers the query as the README shows', async () => {
    expect(mesh!.output()).toMatch(/\[registry\] published shipping version 1/);
    const curl = section.commands[2]!.replace('http://localhost:4000/', `http://localhost:${port}/`);
    const answered = await runProcess('bash', ['-c', curl], { cwd: root, env: process.env });
    expect(answered.code, answered.output).toBe(0);
    expect(JSON.parse(answered.stdout)).toEqual(section.answer);
  });
});
