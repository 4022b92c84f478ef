/**
 * The pipeline runners' one contract, over both: the process's own and BullMQ on this machine's
 * Redis (each test with a key prefix of its own, removed afterwards). Plus what only replicas show:
 * two BullMQ runners on one Redis run each tick once, and never two runs of a domain at once.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { bullmqRunner } from './bullmq-runner.js';
import { localRunner } from './local-runner.js';
import { FinalRunError, PipelineError, rangeOf, type PipelineRunner, type PipelineSpec, type RunEvent, type RunnerOptions, type RunRequest } from './runner.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefixes: string[] = [];
const running: PipelineRunner[] = [];

afterEach(async () => {
  for (const runner of running.splice(0)) await runner.stop();
});
afterAll(async () => {
  const redis = new Redis(REDIS_URL);
  for (const prefix of prefixes) {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
  }
  redis.disconnect();
});

const spec = (id: string, overrides: Partial<PipelineSpec> = {}): PipelineSpec => ({ id, dependsOn: [], everyMs: null, attempts: 1, backoffMs: 50, timeoutMs: 5_000, anomalyErrors: [], ...overrides });

const runners: Record<string, (options: RunnerOptions, prefix?: string) => PipelineRunner> = {
  local: (options) => localRunner(options),
  bullmq: (options, prefix = `test-pipelines-${randomUUID().slice(0, 8)}`) => {
    prefixes.push(prefix);
    return bullmqRunner({ ...options, redisUrl: REDIS_URL, queue: 'shipping', prefix });
  },
};

/** A started runner, its events recorded. */
async function started(kind: string, pipelines: PipelineSpec[], work: RunnerOptions['work'], prefix?: string) {
  const events: RunEvent[] = [];
  const runner = runners[kind]!({ pipelines, work, onEvent: (event) => events.push(event) }, prefix);
  running.push(runner);
  await runner.start();
  return { runner, events, of: (pipeline: string, event?: RunEvent['event']) => events.filter((e) => e.pipeline === pipeline && (!event || e.event === event)) };
}

const succeed = async () => undefined;

for (const kind of Object.keys(runners)) {
  describe(`the ${kind} pipeline runner`, () => {
    it('runs a schedule, tick after tick, and says when the next tick is due', async () => {
      const before = Date.now();
      const { runner, of } = await started(kind, [spec('shipping.parcels', { everyMs: 200 }), spec('shipping.returns')], succeed);
      const { nextRunAt, paused } = await runner.status('shipping.parcels');
      expect(paused).toBe(false);
      expect(Date.parse(nextRunAt!)).toBeGreaterThanOrEqual(before);
      expect(Date.parse(nextRunAt!)).toBeLessThanOrEqual(Date.now() + 200);
      expect(await runner.status('shipping.returns')).toEqual({ nextRunAt: null, paused: false });
      await expect.poll(() => of('shipping.parcels', 'succeeded').length, { timeout: 10_000 }).toBeGreaterThanOrEqual(3);
      expect(new Set(of('shipping.parcels', 'succeeded').map((e) => e.trigger))).toEqual(new Set(['schedule']));
    });

    it('runs a dependent after its upstream succeeds, never before, and not after a failure', async () => {
      let failUpstream = false;
      const order: string[] = [];
      const { runner, of } = await started(kind, [spec('shipping.parcels'), spec('shipping.deliveries', { dependsOn: ['shipping.parcels'] })], async ({ pipeline }) => {
        order.push(`${pipeline} start`);
        await new Promise((resolve) => setTimeout(resolve, 50));
        if (pipeline === 'shipping.parcels' && failUpstream) throw new Error('source unreadable');
        order.push(`${pipeline} end`);
      });
      await runner.run('shipping.parcels');
      await expect.poll(() => of('shipping.deliveries', 'succeeded').length, { timeout: 10_000 }).toBe(1);
      expect(order).toEqual(['shipping.parcels start', 'shipping.parcels end', 'shipping.deliveries start', 'shipping.deliveries end']);
      expect(of('shipping.deliveries', 'started')[0]!.trigger).toBe('dependency');
      // Its parent, in its every event: the run it followed (the flow, for lineage and the run history).
      const upstream = of('shipping.parcels', 'succeeded')[0]!;
      expect(of('shipping.deliveries').map((event) => event.parent)).toEqual(of('shipping.deliveries').map(() => ({ pipeline: 'shipping.parcels', runId: upstream.runId })));
      expect(upstream.parent).toBeUndefined();
      failUpstream = true;
      await runner.run('shipping.parcels');
      await expect.poll(() => of('shipping.parcels', 'failed').length, { timeout: 10_000 }).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(of('shipping.deliveries', 'started')).toHaveLength(1);
    });

    it('retries a failing run with growing backoff, then succeeds; gives up after its attempts', async () => {
      const calls: number[] = [];
      const { runner, of } = await started(kind, [spec('shipping.parcels', { attempts: 3, backoffMs: 100 }), spec('shipping.returns', { attempts: 2, backoffMs: 50 })], async ({ pipeline, attempt }) => {
        if (pipeline === 'shipping.returns') throw new Error('always');
        calls.push(Date.now());
        if (attempt < 3) throw new Error(`attempt ${attempt} failed`);
      });
      await runner.run('shipping.parcels');
      await expect.poll(() => of('shipping.parcels', 'succeeded').length, { timeout: 10_000 }).toBe(1);
      expect(of('shipping.parcels').map((e) => `${e.event} ${e.attempt}`)).toEqual(['started 1', 'retrying 1', 'started 2', 'retrying 2', 'started 3', 'succeeded 3']);
      // The delays before attempts 2 and 3: at least 100 and 200 ms.
      expect(calls[1]! - calls[0]!).toBeGreaterThanOrEqual(95);
      expect(calls[2]! - calls[1]!).toBeGreaterThanOrEqual(195);
      await runner.run('shipping.returns');
      await expect.poll(() => of('shipping.returns', 'failed').length, { timeout: 10_000 }).toBe(1);
      expect(of('shipping.returns').map((e) => `${e.event} ${e.attempt}`)).toEqual(['started 1', 'retrying 1', 'started 2', 'failed 2']);
      expect(of('shipping.returns', 'failed')[0]!.error).toBe('always');
    });

    it('fails a run at once, without a retry, on a failure no retry would change (a rejected load); its dependents do not follow', async () => {
      const { runner, of } = await started(kind, [spec('shipping.parcels', { attempts: 3, backoffMs: 50 }), spec('shipping.deliveries', { dependsOn: ['shipping.parcels'] })], async ({ pipeline }) => {
        if (pipeline === 'shipping.parcels') throw new FinalRunError('the shipping load was rejected by shipping.parcels anomaly_rows');
      });
      await runner.run('shipping.parcels');
      await expect.poll(() => of('shipping.parcels', 'failed').length, { timeout: 10_000 }).toBe(1);
      expect(of('shipping.parcels').map((e) => `${e.event} ${e.attempt}`)).toEqual(['started 1', 'failed 1']);
      expect(of('shipping.parcels', 'failed')[0]!.error).toBe('the shipping load was rejected by shipping.parcels anomaly_rows');
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(of('shipping.parcels')).toHaveLength(2);
      expect(of('shipping.deliveries')).toHaveLength(0);
    });

    it('bounds an attempt by its timeout, aborting its signal', async () => {
      let abortedSeen = false;
      const { runner, of } = await started(kind, [spec('shipping.parcels', { timeoutMs: 200 })], ({ signal }) => new Promise<void>(() => signal.addEventListener('abort', () => (abortedSeen = true))));
      await runner.run('shipping.parcels');
      await expect.poll(() => of('shipping.parcels', 'failed').length, { timeout: 10_000 }).toBe(1);
      expect(of('shipping.parcels', 'failed')[0]!.error).toBe('timed out after 200 ms');
      expect(abortedSeen).toBe(true);
    });

    it('holds a paused pipeline: its ticks are skipped and a run asked for refused, until resumed', async () => {
      const { runner, of } = await started(kind, [spec('shipping.parcels', { everyMs: 150 })], succeed);
      await runner.pause('shipping.parcels');
      expect(await runner.paused()).toEqual(['shipping.parcels']);
      await expect(runner.run('shipping.parcels')).rejects.toMatchObject({ code: 'PIPELINE_PAUSED' });
      await expect.poll(() => of('shipping.parcels', 'skipped').length, { timeout: 10_000 }).toBeGreaterThanOrEqual(2);
      expect(of('shipping.parcels', 'started')).toHaveLength(0);
      await runner.resume('shipping.parcels');
      expect(await runner.paused()).toEqual([]);
      await expect.poll(() => of('shipping.parcels', 'succeeded').length, { timeout: 10_000 }).toBeGreaterThanOrEqual(1);
    });

    it("hands a backfill's range and an acceptance of anomalies to its run, and to its every event; its dependents follow without them", async () => {
      const seen: RunRequest[] = [];
      const { runner, of } = await started(kind, [spec('shipping.parcels'), spec('shipping.deliveries', { dependsOn: ['shipping.parcels'] })], async (request) => void seen.push(request));
      const runId = await runner.run('shipping.parcels', 'backfill', { range: { from: '2025-06-01', to: '2025-06-30' } });
      await expect.poll(() => of('shipping.deliveries', 'succeeded').length, { timeout: 10_000 }).toBe(1);
      expect(seen.map(({ pipeline, trigger, range }) => ({ pipeline, trigger, range }))).toEqual([
        { pipeline: 'shipping.parcels', trigger: 'backfill', range: { from: '2025-06-01', to: '2025-06-30' } },
        { pipeline: 'shipping.deliveries', trigger: 'dependency', range: undefined },
      ]);
      expect(of('shipping.parcels', 'succeeded')[0]).toMatchObject({ runId, range: { from: '2025-06-01', to: '2025-06-30' } });
      // A manual run carries no range, whatever it is given; an acceptance of its anomalies, it does.
      await runner.run('shipping.parcels', 'manual', { range: { from: '2025-06-01', to: '2025-06-30' }, acceptAnomalies: true });
      await expect.poll(() => seen.length, { timeout: 10_000 }).toBe(4);
      expect(seen[2]).toMatchObject({ trigger: 'manual', acceptAnomalies: true });
      expect(seen[2]!.range).toBeUndefined();
      expect(of('shipping.parcels', 'succeeded')[1]).toMatchObject({ acceptAnomalies: true });
      expect(seen[3]!.acceptAnomalies).toBeUndefined(); // not its dependents'
    });

    it('refuses a second run while one is queued or running, and an unknown pipeline', async () => {
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      const { runner, of } = await started(kind, [spec('shipping.parcels')], () => held);
      await runner.run('shipping.parcels');
      await expect.poll(() => of('shipping.parcels', 'started').length, { timeout: 10_000 }).toBe(1);
      const overlap = await runner.run('shipping.parcels').catch((error: unknown) => error);
      expect(overlap).toBeInstanceOf(PipelineError);
      expect(overlap).toMatchObject({ code: 'PIPELINE_RUN_OVERLAPS' });
      release();
      await expect.poll(() => of('shipping.parcels', 'succeeded').length, { timeout: 10_000 }).toBe(1);
      await expect(runner.run('shipping.nothing')).rejects.toMatchObject({ code: 'PIPELINE_UNKNOWN', message: expect.stringMatching(/pipelines: shipping\.parcels/) });
    });
  });
}

describe('BullMQ replicas on one Redis', () => {
  it('run each tick once, and never two runs of the domain at once', async () => {
    const prefix = `test-pipelines-${randomUUID().slice(0, 8)}`;
    let active = 0;
    let most = 0;
    const work: RunnerOptions['work'] = async () => {
      active += 1;
      most = Math.max(most, active);
      await new Promise((resolve) => setTimeout(resolve, 40));
      active -= 1;
    };
    const pipelines = [spec('shipping.parcels', { everyMs: 200 }), spec('shipping.returns', { everyMs: 200 })];
    const [a, b] = [await started('bullmq', pipelines, work, prefix), await started('bullmq', pipelines, work, prefix)];
    await expect.poll(() => a.of('shipping.parcels', 'succeeded').length + b.of('shipping.parcels', 'succeeded').length, { timeout: 15_000 }).toBeGreaterThanOrEqual(6);
    const runs = [...a.of('shipping.parcels', 'started'), ...b.of('shipping.parcels', 'started')].map((e) => e.runId);
    expect(new Set(runs).size).toBe(runs.length); // no tick run twice
    expect(most).toBe(1);
  });
});

describe("a backfill's range as an operator types it", () => {
  it('takes two real days in order, and refuses anything else, coded', () => {
    expect(rangeOf('2025-06-01', '2025-06-30')).toEqual({ from: '2025-06-01', to: '2025-06-30' });
    expect(rangeOf('2024-02-29', '2024-02-29')).toEqual({ from: '2024-02-29', to: '2024-02-29' });
    for (const [from, to] of [
      ['2025-06-30', '2025-06-01'], // reversed
      ['2025-02-30', '2025-03-01'], // no such day
      ['2025-6-1', '2025-06-30'], // not YYYY-MM-DD
      ['2025-06-01T00:00:00Z', '2025-06-30'],
      ["2025-06-01' or 1=1 --", '2025-06-30'], // SQL in a day
      ['2025-06-01', undefined], // one end only
      [20250601, '2025-06-30'], // a number
      ['1900-01-01', '2025-06-30'], // wider than ten years
    ] as const) {
      expect(() => rangeOf(from, to), `${String(from)} to ${String(to)}`).toThrow(expect.objectContaining({ code: 'PIPELINE_RANGE_INVALID' }));
    }
  });
});

describe('the runner in the process, with a journal, across a restart', () => {
  let dir: string;
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('runs again the runs that were queued or running when its process died, with their trigger and range', async () => {
    dir = await mkdtemp(join(tmpdir(), 'runner-journal-'));
    const journal = join(dir, 'shipping.queue.json');
    const pipelines = [spec('shipping.parcels'), spec('shipping.returns')];
    // A process whose backfill never ends, and a run queued behind it: then it dies (nothing stops it).
    const dying = localRunner({ pipelines, work: () => new Promise<void>(() => undefined), journal });
    await dying.start();
    const backfill = await dying.run('shipping.parcels', 'backfill', { range: { from: '2025-06-01', to: '2025-06-30' } });
    const queued = await dying.run('shipping.returns');
    expect((JSON.parse(await readFile(journal, 'utf8')) as { runId: string }[]).map(({ runId }) => runId)).toEqual([backfill, queued]);
    // The next process, on the same journal.
    const seen: RunRequest[] = [];
    const events: RunEvent[] = [];
    const next = localRunner({ pipelines, work: async (request) => void seen.push(request), journal, onEvent: (event) => events.push(event) });
    running.push(next);
    await next.start();
    await expect.poll(() => events.filter((event) => event.event === 'succeeded').length, { timeout: 10_000 }).toBe(2);
    expect(seen.map(({ pipeline, runId, trigger, range }) => ({ pipeline, runId, trigger, range }))).toEqual([
      { pipeline: 'shipping.parcels', runId: backfill, trigger: 'backfill', range: { from: '2025-06-01', to: '2025-06-30' } },
      { pipeline: 'shipping.returns', runId: queued, trigger: 'manual', range: undefined },
    ]);
    // Ended: no longer kept, and a third start runs nothing.
    await expect.poll(async () => JSON.parse(await readFile(journal, 'utf8'))).toEqual([]);
  });

  it('starts on a journal it cannot read, or whose entries are wrong, running only the runs it can take', async () => {
    const pipelines = [spec('shipping.parcels'), spec('shipping.returns')];
    const garbled = join(dir, 'garbled.queue.json');
    await writeFile(garbled, '[{"pipeline":"shipping.parcels","runId":"cut');
    const seen: RunRequest[] = [];
    const first = localRunner({ pipelines, work: async (request) => void seen.push(request), journal: garbled });
    running.push(first);
    await first.start(); // a journal cut by a crash mid-write: nothing to run again, and no crash
    const edited = join(dir, 'edited.queue.json');
    await writeFile(
      edited,
      JSON.stringify([
        { pipeline: 'shipping.nothing', runId: 'a', trigger: 'manual' },
        { pipeline: 'shipping.parcels', runId: 'b', trigger: 'backfill', range: { from: "2025-06-01' or 1=1 --", to: '2025-06-30' } },
        { pipeline: 'shipping.parcels', runId: 'c', trigger: 'whenever' },
        'not a run',
        { pipeline: 'shipping.returns', runId: 'd', trigger: 'backfill', range: { from: '2025-06-01', to: '2025-06-30' }, acceptAnomalies: 'yes', parent: { pipeline: 1 } },
      ]),
    );
    const second = localRunner({ pipelines, work: async (request) => void seen.push(request), journal: edited });
    running.push(second);
    await second.start();
    await expect.poll(() => seen.length, { timeout: 10_000 }).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(seen.map(({ pipeline, runId, trigger, range, acceptAnomalies, parent }) => ({ pipeline, runId, trigger, range, acceptAnomalies, parent }))).toEqual([
      { pipeline: 'shipping.returns', runId: 'd', trigger: 'backfill', range: { from: '2025-06-01', to: '2025-06-30' }, acceptAnomalies: undefined, parent: undefined },
    ]);
  });

  it('keeps a run a stop cut short for the next start, and forgets one that ended, failed included', async () => {
    const journal = join(dir, 'stopped.queue.json');
    const pipelines = [spec('shipping.parcels'), spec('shipping.returns')];
    const first = localRunner({ pipelines, work: async ({ pipeline, signal }) => {
      if (pipeline === 'shipping.returns') throw new Error('unreadable');
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
      throw new Error('aborted');
    }, journal });
    await first.start();
    await first.run('shipping.returns');
    const held = await first.run('shipping.parcels');
    await first.stop();
    expect((JSON.parse(await readFile(journal, 'utf8')) as { runId: string }[]).map(({ runId }) => runId)).toEqual([held]);
    const seen: string[] = [];
    const second = localRunner({ pipelines, work: async ({ runId }) => void seen.push(runId), journal });
    running.push(second);
    await second.start();
    await expect.poll(() => seen, { timeout: 10_000 }).toEqual([held]);
  });
});
