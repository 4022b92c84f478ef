/**
 * Rate limits in cost units, against the real mesh: a client over its budget gets 429 with
 * Retry-After while another is unaffected; two gateways sharing Redis share one budget; a Redis of
 * the test's own, stopped mid-test, degrades to local buckets (said in /health/ready) and recovers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLimitsConfig } from '../gateway/request-stages/allowances.js';
import { exportWithTrailers, freePort, logLines, postGraphQL, startTestGateway, startTestMesh, testGatewayConfig, tokenFor, type TestMesh } from './harness/mesh.js';

const SHARED_REDIS = 'redis://127.0.0.1:6379';
// products(first: 29) { nodes { sku } } costs 30: a budget of 100 admits three.
const QUERY = '{ products(first: 29) { nodes { sku } } }';
const limits = parseLimitsConfig(JSON.stringify({ anonymous: { ratePerWindow: 100 }, authenticated: { ratePerWindow: 100 }, clients: { 'bulk-app': { ratePerWindow: 1000 } }, rateWindowSeconds: 60 }));
const token = (subject: string, client?: string) => `Bearer ${tokenFor({ subject, roles: ['analyst'], regions: ['EMEA'], ...(client ? { client } : {}) })}`;

async function redisServer(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  for (let i = 0; i < 50; i++) {
    const probe = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined);
    const up = await probe.connect().then(() => true, () => false);
    probe.disconnect();
    if (up) return child;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('the test Redis did not start');
}

describe('rate limits', () => {
  let mesh: TestMesh;
  const prefix = `mesh-rate-test-${process.pid}-${Date.now()}`;
  const gateways: { stop(): Promise<void> }[] = [];

  beforeAll(async () => {
    mesh = await startTestMesh();
  });

  afterAll(async () => {
    for (const gateway of gateways) await gateway.stop();
    const redis = new Redis(SHARED_REDIS);
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
    await mesh?.stop();
  });

  async function gateway(name: string, redisUrl: string | null) {
    const started = await startTestGateway(
      testGatewayConfig({
        dataDir: mesh.dataDir,
        name,
        supergraph: { kind: 'registry', registryUrl: mesh.registryUrl, pollMs: 100 },
        overrides: { limits, rateLimitStore: { redisUrl, redisPrefix: prefix } },
      }),
    );
    gateways.push(started);
    await started.ready;
    return started;
  }

  it('refuses a subject over its budget with 429 and Retry-After, and leaves another subject alone', async () => {
    const memory = await gateway('memory', null);
    for (let i = 0; i < 3; i++) expect((await postGraphQL(memory.url, QUERY, undefined, { authorization: token('rate-a') })).status).toBe(200);
    const over = await fetch(memory.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: token('rate-a') }, body: JSON.stringify({ query: QUERY }) });
    expect(over.status).toBe(429);
    const retryAfter = Number(over.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(((await over.json()) as any).errors[0]).toMatchObject({
      message: expect.stringMatching(/subject "rate-a" spent its 100 cost units for this 60 s window/),
      extensions: { code: 'RATE_LIMITED', bucket: 'subject', retryAfterSeconds: retryAfter, budget: 100 },
    });
    // Another subject has a bucket of its own.
    expect((await postGraphQL(memory.url, QUERY, undefined, { authorization: token('rate-b') })).status).toBe(200);
    // A client configured with more gets more.
    for (let i = 0; i < 5; i++) expect((await postGraphQL(memory.url, QUERY, undefined, { authorization: token('rate-c', 'bulk-app') })).status).toBe(200);
  });

  it('keeps an anonymous caller who changes its client name in the bucket of its address', async () => {
    const memory = await gateway('anonymous', null);
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await postGraphQL(memory.url, QUERY, undefined, { 'apollographql-client-name': `rotating-${i}` })).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
  });

  it('charges a CSV export what its pages cost: refused before the first row, or stopped with a note', async () => {
    const memory = await gateway('exports', null);
    const exportCsv = (authorization: string, query: string, limit: number) =>
      fetch(new URL('/export/csv', memory.url), { method: 'POST', headers: { 'content-type': 'application/json', authorization }, body: JSON.stringify({ query, limit }) });
    // A page of 500 products costs 501: over a budget of 100 before the first row.
    const refused = await exportCsv(token('export-a'), '{ products { nodes { sku } } }', 1000);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(((await refused.json()) as any).errors[0].extensions).toMatchObject({ code: 'RATE_LIMITED', bucket: 'subject' });
    // A steward of the bulk app (1000 units): the first page of 500 orders (501) passes, the second is refused.
    const steward = `Bearer ${tokenFor({ subject: 'export-b', roles: ['steward'], purpose: 'customer-support', client: 'bulk-app' })}`;
    const stopped = await exportWithTrailers(new URL('/export/csv', memory.url).toString(), { query: '{ orders { nodes { id } } }', limit: 2000 }, steward);
    expect(stopped.status).toBe(200);
    // The transfer is cut after the first page: no client takes 500 rows for the whole export.
    expect(stopped.aborted).toBe(true);
    expect(stopped.trailers['x-export-status']).toBeUndefined();
    const lines = stopped.text.trim().split('\n');
    expect(lines).toHaveLength(1 + 500);
    expect(lines.filter((line) => line.startsWith('#'))).toEqual([]);
    // Why is in the gateway's log, under the request id.
    expect(logLines.some((line) => line.includes('a CSV export failed while streaming') && line.includes('RATE_LIMITED'))).toBe(true);
  });

  it('keeps a bucket per verified client too, whatever subjects share it', async () => {
    const memory = await gateway('clients', null);
    const asClient = (subject: string) => postGraphQL(memory.url, QUERY, undefined, { authorization: token(subject, 'dashboard') });
    expect((await asClient('d-1')).status).toBe(200);
    expect((await asClient('d-2')).status).toBe(200);
    expect((await asClient('d-3')).status).toBe(200);
    const fourth = await asClient('d-4');
    expect(fourth.status).toBe(429);
    expect(fourth.body.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', bucket: 'client' });
  });

  it('never lets a header claim spend a verified client\'s bucket', async () => {
    const memory = await gateway('squat', null);
    // Squatters without `azp` name the app in the header, from several subjects: each spends only its own bucket.
    const squat = (subject: string) => postGraphQL(memory.url, QUERY, undefined, { authorization: token(subject), 'apollographql-client-name': 'wallboard' });
    for (const subject of ['sq-1', 'sq-2']) {
      const statuses = [];
      for (let i = 0; i < 4; i++) statuses.push((await squat(subject)).status);
      expect(statuses, subject).toEqual([200, 200, 200, 429]);
    }
    // The real app, whose verified token says azp=wallboard, has its whole bucket (three of these).
    const app = (subject: string) => postGraphQL(memory.url, QUERY, undefined, { authorization: token(subject, 'wallboard'), 'apollographql-client-name': 'wallboard' });
    expect([(await app('w-1')).status, (await app('w-2')).status, (await app('w-3')).status]).toEqual([200, 200, 200]);
    // Positive control: its bucket is real, and holds exactly that.
    const fourth = await app('w-4');
    expect([fourth.status, fourth.body.errors?.[0]?.extensions?.bucket]).toEqual([429, 'client']);
    // In /metrics the claim is counted apart from the app (eight operations estimated at 30, and four).
    const metrics = await (await fetch(new URL('/metrics', memory.url))).text();
    expect(metrics).toMatch(/mesh_estimated_cost_total\{client="claimed:wallboard",service="gateway"\} 240/);
    expect(metrics).toMatch(/mesh_estimated_cost_total\{client="wallboard",service="gateway"\} 120/);
  });

  it('shares one budget between two gateways on one Redis', async () => {
    const first = await gateway('redis-1', SHARED_REDIS);
    const second = await gateway('redis-2', SHARED_REDIS);
    expect((await postGraphQL(first.url, QUERY, undefined, { authorization: token('shared') })).status).toBe(200);
    expect((await postGraphQL(second.url, QUERY, undefined, { authorization: token('shared') })).status).toBe(200);
    expect((await postGraphQL(first.url, QUERY, undefined, { authorization: token('shared') })).status).toBe(200);
    expect((await postGraphQL(second.url, QUERY, undefined, { authorization: token('shared') })).status).toBe(429);
    const ready = (await (await fetch(new URL('/health/ready', first.url))).json()) as any;
    expect(ready.rateLimits).toEqual({ store: 'redis', degraded: false });
  });

  it('counts with local buckets while its Redis is down, says so, and shares again when it is back', async () => {
    const port = await freePort();
    let redis = await redisServer(port);
    const own = await gateway('outage', `redis://127.0.0.1:${port}`);
    const readiness = async () => ((await (await fetch(new URL('/health/ready', own.url))).json()) as any).rateLimits;
    expect((await postGraphQL(own.url, QUERY, undefined, { authorization: token('outage-a') })).status).toBe(200);

    redis.kill('SIGKILL');
    await once(redis, 'exit');
    await expect.poll(async () => (await readiness()).degraded, { timeout: 10_000, interval: 50 }).toBe(true);
    expect(await readiness()).toMatchObject({ store: 'redis', degraded: true });
    expect(logLines.some((line) => line.includes('Redis does not answer; counting with local buckets'))).toBe(true);
    // Still serving, and still limiting (locally): three admitted, the fourth refused.
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await postGraphQL(own.url, QUERY, undefined, { authorization: token('outage-b') })).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect((await fetch(new URL('/health/ready', own.url))).status).toBe(200);

    redis = await redisServer(port);
    try {
      for (let i = 0; i < 40 && (await readiness()).degraded; i++) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await readiness()).toEqual({ store: 'redis', degraded: false });
      expect((await postGraphQL(own.url, QUERY, undefined, { authorization: token('outage-c') })).status).toBe(200);
      const counted = new Redis(port, '127.0.0.1');
      expect(await counted.get(`${prefix}:sub:outage-c`)).toBe('30');
      counted.disconnect();
    } finally {
      redis.kill('SIGKILL');
    }
  });
});
