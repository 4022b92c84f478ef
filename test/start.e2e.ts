/**
 * The README's first command, as a newcomer runs it: `npm start` on the default data set, then the
 * README's cross-domain query, whose answer must be the one the README shows. A second start must
 * reuse the generated data and warehouses.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { README } from '../policy/errors-doc.js';
import { freePort } from './harness/mesh.js';

interface Started {
  child: ChildProcess;
  output: () => string;
}

/** `npm start` in its own process group; resolves once it prints that the mesh is ready. */
async function npmStart(env: NodeJS.ProcessEnv): Promise<Started> {
  const child = spawn('npm', ['start'], { env: { ...process.env, ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('The mesh is ready.')) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`npm start exited (${code}) before it was ready:\n${output}`)));
  });
  await ready;
  return { child, output: () => output };
}

/** Ctrl-C: the launcher stops every part; all of them must be gone. */
async function stop(started: Started | undefined): Promise<void> {
  if (!started || started.child.exitCode !== null || started.child.signalCode !== null) return;
  const exited = once(started.child, 'exit');
  process.kill(-started.child.pid!, 'SIGINT');
  await exited;
}

/** The README's curl request body and the answer it shows. */
async function readmeExample(): Promise<{ body: string; answer: unknown }> {
  const readme = await readFile(README, 'utf8');
  const command = /```sh\n(curl -s http:\/\/localhost:4000\/graphql[\s\S]*?)```/.exec(readme)?.[1];
  const body = command && /-d '(.*)'/.exec(command)?.[1];
  const answer = /prints \(formatted here\):\n\n```json\n([\s\S]*?)```/.exec(readme)?.[1];
  if (!body || !answer) throw new Error('README has no curl example with its answer');
  return { body, answer: JSON.parse(answer) };
}

describe('npm start', () => {
  let dataDir: string;
  let env: NodeJS.ProcessEnv;
  let first: Started | undefined;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'mesh-start-'));
    const [gateway, ...subgraphPorts] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    env = {
      DATA_DIR: dataDir,
      PORT: String(gateway),
      SUBGRAPHS: ['customers', 'products', 'finance'].map((name, i) => `${name}=http://127.0.0.1:${subgraphPorts[i]}/graphql`).join(','),
      SCALE: '',
      SEED: '',
      LOG_LEVEL: 'info',
    };
    first = await npmStart(env);
  });

  afterAll(async () => {
    await stop(first);
    await rm(dataDir, { recursive: true, force: true });
  });

  it('prints where the gateway and subgraphs listen', () => {
    expect(first!.output()).toContain(`Gateway:   http://localhost:${env.PORT}/graphql`);
    expect(first!.output()).toMatch(/raw data generated/);
    expect(first!.output()).toMatch(/warehouse built/);
  });

  it("answers the README's query with the README's answer", async () => {
    const { body, answer } = await readmeExample();
    const response = await fetch(`http://localhost:${env.PORT}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual(answer);
  });

  it('stops every part on Ctrl-C, and a second start reuses the data', async () => {
    await stop(first);
    const health = await fetch(`http://127.0.0.1:${env.PORT}/health/live`).catch(() => null);
    expect(health).toBeNull();
    const second = await npmStart(env);
    try {
      expect(second.output()).toMatch(/raw data reused/);
      expect(second.output()).not.toMatch(/raw data generated|warehouse built/);
      for (const domain of ['customers', 'products', 'finance']) {
        expect(second.output()).toMatch(new RegExp(`warehouse reused\\s+service: "${domain}"\\s+domain: "${domain}"`));
      }
    } finally {
      await stop(second);
    }
  });
});
