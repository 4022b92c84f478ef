/**
 * The gateway on every core (issue 15, part 2): `GATEWAY_WORKERS=2 tsx gateway/main.ts` as an
 * operator starts it, over a real mesh: both workers serve the one port, a hot reload reaches every
 * worker, `/metrics` adds the workers up, each worker's audit chain verifies after load, a worker
 * that dies is replaced, and a wrong worker count stops the start.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFile, writeFile, mkdtemp, readdir } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeSupergraph } from '../gateway/supergraph/supergraph.js';
import { verifyAuditLog } from '../policy/audit.js';
import { domains } from '../subgraphs/domains.js';
import { printDomainSdl } from '../subgraphs/kit/domain-schema.js';
import { freePort, startTestMesh, tokenFor, type TestMesh } from './harness/mesh.js';

let mesh: TestMesh;
let primary: ChildProcess;
let port: number;
let dir: string;
let supergraphFile: string;
let output = '';

/** One request on a connection of its own, so that the cluster hands it to the next worker. */
function fresh(method: 'GET' | 'POST', path: string, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method, agent: false, headers: { connection: 'close', ...(body ? { 'content-type': 'application/json', authorization: `Bearer ${tokenFor()}` } : {}) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.setTimeout(5_000, () => req.destroy(new Error(`no answer to ${method} ${path} within 5 s`)));
    req.end(body);
  });
}

const workerOf = async () => (JSON.parse((await fresh('GET', '/health/live')).text) as { worker?: number }).worker;
const query = (text: string) => fresh('POST', '/graphql', JSON.stringify({ query: text }));

async function until<T>(what: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await what().catch(() => undefined as T);
    if (value !== undefined && ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out; gateway output:\n${output.slice(-3000)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** The workers that answered ready over a dozen fresh connections. */
async function readyWorkers(): Promise<Set<number>> {
  const ready = new Set<number>();
  for (let i = 0; i < 12; i++) {
    const answer = await fresh('GET', '/health/ready');
    if (answer.status === 200) ready.add((JSON.parse(answer.text) as { worker: number }).worker);
  }
  return ready;
}

/** The workers seen over `tries` fresh connections. */
async function workersSeen(tries = 12): Promise<Set<number>> {
  const seen = new Set<number>();
  for (let i = 0; i < tries; i++) {
    const worker = await workerOf();
    if (worker !== undefined) seen.add(worker);
  }
  return seen;
}

function startCluster(env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'gateway/main.ts'], {
    env: { ...process.env, NODE_ENV: '', SUPERGRAPH_SOURCE: 'file', SUPERGRAPH_FILE: supergraphFile, HOST: '127.0.0.1', PORT: String(port), DATA_DIR: dir, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return child;
}

beforeAll(async () => {
  mesh = await startTestMesh();
  dir = await mkdtemp(join(tmpdir(), 'gateway-cluster-'));
  supergraphFile = join(dir, 'supergraph.graphql');
  await writeFile(supergraphFile, await readFile(mesh.supergraphPath, 'utf8'));
  port = await freePort();
  primary = startCluster({ GATEWAY_WORKERS: '2' });
  await until(readyWorkers, (ready) => ready.size === 2);
}, 120_000);

afterAll(async () => {
  if (primary && primary.exitCode === null) {
    primary.kill('SIGTERM');
    await once(primary, 'exit');
  }
  await mesh?.stop();
});

describe('the gateway with GATEWAY_WORKERS=2', () => {
  it('serves one port from two workers', async () => {
    expect([...(await until(() => workersSeen(), (seen) => seen.size === 2))].sort()).toEqual([1, 2]);
    const answer = await query('{ customers(first: 2) { nodes { id } } }');
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text).data.customers.nodes).toHaveLength(2);
  });

  it('adds the workers\' metrics up on every worker\'s /metrics', async () => {
    const count = async () => {
      const text = (await fresh('GET', '/metrics')).text;
      return [...text.matchAll(/^mesh_requests_total\{[^}]*operation="ClusterProbe"[^}]*\} (\d+)/gm)].reduce((sum, match) => sum + Number(match[1]), 0);
    };
    const before = await count();
    for (let i = 0; i < 10; i++) expect((await query('query ClusterProbe { products(first: 1) { nodes { sku } } }')).status).toBe(200);
    // Both workers answered some of the ten; every /metrics, whichever worker serves it, counts all ten.
    for (let i = 0; i < 4; i++) expect((await count()) - before).toBe(10);
  });

  it('reloads the supergraph in every worker', async () => {
    const versionsSeen = async () => {
      const versions = new Set<string>();
      for (let i = 0; i < 12; i++) versions.add((JSON.parse((await fresh('GET', '/health/ready')).text) as { supergraph: { version: string } }).supergraph.version);
      return versions;
    };
    const [old] = [...(await versionsSeen())];
    // The same mesh without the finance domain: a different supergraph.
    const next = composeSupergraph(
      domains.filter((domain) => domain.name !== 'finance').map((domain) => ({ name: domain.name, url: mesh.subgraphs[domain.name]!.url, sdl: printDomainSdl(domain) })),
    );
    await writeFile(supergraphFile, next.supergraphSdl);
    const after = await until(versionsSeen, (versions) => versions.size === 1 && !versions.has(old!));
    expect(after.size).toBe(1);
    // No worker still knows the finance fields.
    for (let i = 0; i < 6; i++) expect(JSON.parse((await query('{ orders(first: 1) { nodes { id } } }')).text).errors[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  it('replaces a worker that dies', async () => {
    const before = await until(() => workersSeen(), (seen) => seen.size === 2);
    const { execFileSync } = await import('node:child_process');
    // The primary's children that are gateway workers (not, say, a compiler service).
    const children = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(primary.pid)], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter((line) => line.includes('gateway/main.ts'))
      .map((line) => Number(line.trim().split(/\s+/)[0]));
    expect(children).toHaveLength(2);
    process.kill(children[0]!, 'SIGKILL');
    const seen = await until(readyWorkers, (workers) => workers.size === 2 && [...workers].some((worker) => !before.has(worker)));
    expect(seen.size).toBe(2);
    expect((await query('{ products(first: 1) { nodes { sku } } }')).status).toBe(200);
  });

  it('stops every worker on SIGTERM, each audit chain whole', async () => {
    for (let i = 0; i < 6; i++) expect((await query('query AuditedInCluster { customers(first: 1) { nodes { id } } }')).status).toBe(200);
    primary.kill('SIGTERM');
    const [code] = (await once(primary, 'exit')) as [number | null];
    expect(code).toBe(0);
    const logs = (await readdir(join(dir, 'audit'))).filter((file) => /^gateway-\d+\.jsonl$/.test(file));
    // Two workers at first, and the one that replaced the dead one.
    expect(logs.length).toBeGreaterThanOrEqual(2);
    let audited = 0;
    for (const file of logs) {
      const text = await readFile(join(dir, 'audit', file), 'utf8');
      expect(verifyAuditLog(text), file).toMatchObject({ ok: true });
      audited += text.split('\n').filter((line) => line.includes('AuditedInCluster')).length;
    }
    expect(audited).toBe(6);
  });

  it('refuses a worker count that is not one', async () => {
    const wrong = startCluster({ GATEWAY_WORKERS: 'many', PORT: String(await freePort()) });
    const [code] = (await once(wrong, 'exit')) as [number | null];
    expect(code).toBe(1);
    expect(output).toContain('GATEWAY_WORKERS must be "auto" or a whole number from 1 to 999, got "many".');
  });
});

describe('a gateway whose workers cannot start', () => {
  it('stops after they die again and again at start, with exit code 1', async () => {
    const before = output.length;
    const broken = startCluster({ GATEWAY_WORKERS: '2', PORT: String(await freePort()), SUPERGRAPH_FILE: join(dir, 'no-such-supergraph.graphql') });
    const [code] = (await once(broken, 'exit')) as [number | null];
    expect(code).toBe(1);
    const said = output.slice(before);
    expect(said).toMatch(/a gateway worker died; starting another/);
    expect(said).toMatch(/gateway workers died 5 times in a row right after starting; stopping/);
  }, 120_000);
});
