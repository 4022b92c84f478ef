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

/** The README's token command, curl request body and the answer it shows. */
async function readmeExample(): Promise<{ tokenArgs: string[]; body: string; answer: unknown }> {
  const readme = await readFile(README, 'utf8');
  const block = /```sh\n(TOKEN=\$\(npm run -s token -- [^)]*\)\ncurl -s http:\/\/localhost:4000\/graphql[\s\S]*?)```/.exec(readme)?.[1];
  const tokenArgs = block && /TOKEN=\$\(npm run -s token -- ([^)]*)\)/.exec(block)?.[1];
  const body = block && /-d '(.*)'/.exec(block)?.[1];
  const answer = /prints \(formatted here\):\n\n```json\n([\s\S]*?)```/.exec(readme)?.[1];
  if (!tokenArgs || !body || !answer) throw new Error('README has no token and curl example with its answer');
  return { tokenArgs: tokenArgs.split(/\s+/), body, answer: JSON.parse(answer) };
}

/** Runs `npm run -s token -- …` as the README does and returns what it prints. */
async function mintAsReadme(args: readonly string[]): Promise<string> {
  const child = spawn('npm', ['run', '-s', 'token', '--', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number];
  if (code !== 0) throw new Error(`npm run token exited ${code}`);
  return out.trim();
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

  it("answers the README's query, with the README's token, with the README's answer", async () => {
    const { tokenArgs, body, answer } = await readmeExample();
    const token = await mintAsReadme(tokenArgs);
    expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const post = (authorization?: string) =>
      fetch(`http://localhost:${env.PORT}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
        body,
      });
    const response = await post(`Bearer ${token}`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual(answer);
    // As the README says: without the token, the customer is not served.
    const anonymous = (await (await post()).json()) as { data: { customer: unknown } };
    expect(anonymous.data.customer).toBeNull();
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
