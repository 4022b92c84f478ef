/**
 * Two replicas of a domain's subgraph on one Redis (issue 26): their pipelines share one BullMQ
 * queue, so each scheduled tick runs once, in one of them, and the other serves the version that
 * run made (it hears the run end through the queue's events) and reads the runs it recorded; the
 * invoices' pipeline follows each run of the orders' (its dependency); a backfill of a range asked of
 * either replica runs once; a run whose replica is killed mid-run is run again by the other.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_SIGNING_KEY, SIGNATURE_HEADER, signSubgraphRequest } from '../policy/subgraph-signature.js';
import type { PipelineRunRecord } from '../subgraphs/kit/pipelines/run-log.js';
import { deliverIncrement } from '../subgraphs/synthetic-sources/live.js';
import { freePort } from './harness/mesh.js';
import { npmService, stop, type Started } from './harness/npm-start.js';

const REDIS = 'redis://127.0.0.1:6379';
const prefix = `replicas-test-${process.pid}-${randomUUID().slice(0, 8)}`;

describe('two replicas of the finance subgraph on Redis', () => {
  let dataDir: string;
  const replicas: { started: Started; port: number }[] = [];

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'replicas-'));
    const env = { DATA_DIR: dataDir, SCALE: '0.05', PIPELINES_REDIS_URL: REDIS, PIPELINES_REDIS_PREFIX: prefix, PIPELINES_EVERY: '10', LOG_LEVEL: 'info' };
    // The first builds the warehouse; the second starts on it.
    for (let i = 0; i < 2; i += 1) {
      const port = await freePort();
      replicas.push({ port, started: await npmService('subgraph', ['finance'], { ...env, PORT: String(port) }, /subgraph finance serving/) });
    }
  });

  afterAll(async () => {
    for (const { started } of replicas) await stop(started);
    const redis = new Redis(REDIS);
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
    await rm(dataDir, { recursive: true, force: true });
  });

  /** When the version a replica serves was loaded (its freshness metric). */
  const servedAt = async (port: number) => {
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    return Number(/^data_product_last_updated_timestamp_seconds\{[^}]*product="finance\.orders"[^}]*\} (\S+)$/m.exec(metrics)?.[1]);
  };

  it('runs each tick once, in one replica, and both serve the version it made', async () => {
    const before = await Promise.all(replicas.map(({ port }) => servedAt(port)));
    expect(before[0]).toBe(before[1]);
    await deliverIncrement({ rawDir: join(dataDir, 'raw'), orders: 30 });
    // Both serve the merged version: the one that ran it, and the other once it heard the run end.
    await expect.poll(async () => (await Promise.all(replicas.map(({ port }) => servedAt(port)))).every((at) => at > before[0]!), { timeout: 60_000, interval: 1_000 }).toBe(true);
    const after = await Promise.all(replicas.map(({ port }) => servedAt(port)));
    expect(after[0]).toBe(after[1]);
    expect(replicas.some(({ started }) => /serving the version another replica's pipeline run made/.test(started.output()))).toBe(true);
    // Three more ticks of the two products' schedules.
    await new Promise((resolve) => setTimeout(resolve, 30_000));
    const runs = (await readFile(join(dataDir, 'pipelines', 'finance.jsonl'), 'utf8')).split('\n').filter(Boolean).map((line) => JSON.parse(line) as PipelineRunRecord);
    const scheduled = runs.filter((run) => run.trigger === 'schedule');
    expect(scheduled.length).toBeGreaterThanOrEqual(4);
    // Each run recorded once, by the replica that ran it; never two runs of a product within one tick.
    expect(new Set(scheduled.map((run) => run.runId)).size).toBe(scheduled.length);
    const starts = scheduled.filter((run) => run.pipeline === 'finance.orders').map((run) => Date.parse(run.startedAt)).sort((a, b) => a - b);
    for (let i = 1; i < starts.length; i += 1) expect(starts[i]! - starts[i - 1]!).toBeGreaterThan(5_000);
    // The invoices load after each run of the orders (their dependency), in whichever replica, never before it ended.
    expect(scheduled.every((run) => run.pipeline === 'finance.orders')).toBe(true);
    for (const run of scheduled) {
      const dependent = runs.find((candidate) => candidate.pipeline === 'finance.invoices' && candidate.parent?.runId === run.runId);
      if (!dependent) continue; // the last tick's may still be running
      expect(dependent).toMatchObject({ trigger: 'dependency', outcome: 'succeeded', parent: { pipeline: 'finance.orders' } });
      expect(Date.parse(dependent.startedAt)).toBeGreaterThanOrEqual(Date.parse(run.endedAt));
    }
    expect(runs.filter((run) => run.pipeline === 'finance.invoices' && run.trigger === 'dependency').length).toBeGreaterThanOrEqual(scheduled.length - 1);
    // Exactly one merge, in one replica, whichever.
    expect(runs.filter((run) => run.load === 'swapped' && run.increment)).toHaveLength(1);
    const merges = replicas.map(({ started }) => (started.output().match(/increments merged into the serving warehouse/g) ?? []).length);
    expect(merges.reduce((a, b) => a + b, 0)).toBe(1);
  }, 150_000);

  it("runs a backfill of a range asked of either replica once, and both serve the version it made", async () => {
    const before = await Promise.all(replicas.map(({ port }) => servedAt(port)));
    const body = JSON.stringify({ action: 'backfill', pipeline: 'finance.orders', from: '2025-06-01', to: '2025-06-30' });
    const asked = await fetch(`http://127.0.0.1:${replicas[1]!.port}/pipelines`, { method: 'POST', headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signSubgraphRequest({ key: DEV_SIGNING_KEY, body }) }, body });
    expect(asked.status).toBe(200);
    const { runId } = (await asked.json()) as { runId: string };
    await expect.poll(async () => (await Promise.all(replicas.map(({ port }) => servedAt(port)))).every((at, i) => at > before[i]!), { timeout: 60_000, interval: 1_000 }).toBe(true);
    const runs = (await readFile(join(dataDir, 'pipelines', 'finance.jsonl'), 'utf8')).split('\n').filter(Boolean).map((line) => JSON.parse(line) as PipelineRunRecord);
    const backfills = runs.filter((run) => run.runId === runId);
    expect(backfills).toHaveLength(1);
    expect(backfills[0]).toMatchObject({ trigger: 'backfill', range: { from: '2025-06-01', to: '2025-06-30' }, outcome: 'succeeded', load: 'swapped', increment: { inserted: 0, deleted: 0 } });
    const reloads = replicas.map(({ started }) => (started.output().match(/range reloaded into the serving warehouse \(backfill\)/g) ?? []).length);
    expect(reloads.reduce((a, b) => a + b, 0)).toBe(1);
  }, 90_000);

  it('runs again in the other replica a run whose replica is killed (kill -9) mid-run; the survivor serves what it made', async () => {
    const ask = async (body: Record<string, unknown>) => {
      const text = JSON.stringify(body);
      const response = await fetch(`http://127.0.0.1:${replicas[0]!.port}/pipelines`, { method: 'POST', headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signSubgraphRequest({ key: DEV_SIGNING_KEY, body: text }) }, body: text });
      expect(response.status).toBe(200);
      return (await response.json()) as { runId?: string };
    };
    // A large delivery, merged by a run asked for (the ticks held meanwhile).
    await ask({ action: 'pause', pipeline: 'finance.orders' });
    await deliverIncrement({ rawDir: join(dataDir, 'raw'), orders: 20_000 });
    await ask({ action: 'resume', pipeline: 'finance.orders' });
    const { runId } = await ask({ action: 'run', pipeline: 'finance.orders' });
    // The replica that takes it is killed as its run starts.
    const started = new RegExp(`"run":"${runId}"[^\\n]*pipeline run started|pipeline run started[^\\n]*"run":"${runId}"`);
    let victim = -1;
    await expect.poll(() => (victim = replicas.findIndex(({ started: service }) => started.test(service.output()))), { timeout: 30_000, interval: 20 }).toBeGreaterThanOrEqual(0);
    process.kill(-replicas[victim]!.started.child.pid!, 'SIGKILL');
    const survivor = replicas[1 - victim]!;
    const before = await servedAt(survivor.port);
    // BullMQ finds the job stalled once its lock lapses, and the survivor runs it.
    const ran = async () => (await readFile(join(dataDir, 'pipelines', 'finance.jsonl'), 'utf8')).split('\n').filter(Boolean).map((line) => JSON.parse(line) as PipelineRunRecord).find((run) => run.runId === runId);
    await expect.poll(ran, { timeout: 120_000, interval: 1_000 }).toMatchObject({ outcome: 'succeeded', load: 'swapped', increment: { inserted: expect.any(Number) } });
    expect((await ran())!.increment!.inserted).toBeGreaterThanOrEqual(19_000);
    expect(started.test(survivor.started.output())).toBe(true);
    await expect.poll(() => servedAt(survivor.port), { timeout: 30_000, interval: 500 }).toBeGreaterThan(before);
  }, 240_000);
});
