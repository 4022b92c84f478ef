import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRunLog, type PipelineRunRecord } from './run-log.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'run-log-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const past = (i: number, pipeline = 'finance.orders'): PipelineRunRecord => {
  const at = new Date(Date.UTC(2026, 0, 1) + i * 60_000).toISOString();
  return { runId: `r${i}`, pipeline, trigger: 'schedule', startedAt: at, endedAt: at, attempts: 1, outcome: 'succeeded', load: 'current', rows: null, error: null };
};

describe('the run log', () => {
  it('records a run when it ends, with what its incremental load changed, and reads it back', async () => {
    const path = join(dir, 'a', 'finance.jsonl');
    const log = await openRunLog(path);
    await log.record({ event: 'started', runId: 'x', pipeline: 'finance.orders', trigger: 'schedule', attempt: 1, at: '2026-12-07T10:00:00.000Z' });
    await log.record(
      { event: 'succeeded', runId: 'x', pipeline: 'finance.orders', trigger: 'schedule', attempt: 1, at: '2026-12-07T10:00:02.000Z' },
      { load: 'swapped', rows: 120, increment: { inserted: 20, updated: 5, deleted: 1, watermark: '20261207T100000Z-000003' } },
    );
    const again = await openRunLog(path);
    expect(again.runs('finance.orders')).toEqual([
      { runId: 'x', pipeline: 'finance.orders', trigger: 'schedule', startedAt: '2026-12-07T10:00:00.000Z', endedAt: '2026-12-07T10:00:02.000Z', attempts: 1, outcome: 'succeeded', load: 'swapped', rows: 120, error: null, increment: { inserted: 20, updated: 5, deleted: 1, watermark: '20261207T100000Z-000003' } },
    ]);
  });

  it('keeps the runs around a line a crash cut, and rotates a file far longer than what it keeps', async () => {
    const path = join(dir, 'long.jsonl');
    const runs = Array.from({ length: 1_050 }, (_, i) => past(i));
    const other = [past(5_000, 'finance.invoices')];
    await writeFile(path, [...runs.slice(0, 500).map((run) => JSON.stringify(run)), '{"runId":"cut', ...runs.slice(500).map((run) => JSON.stringify(run)), ...other.map((run) => JSON.stringify(run))].join('\n') + '\n');
    // 1,052 lines for two pipelines: under ten times the 100 kept per pipeline each, not rotated.
    let log = await openRunLog(path);
    expect(log.runs('finance.orders').map((run) => run.runId).slice(0, 2)).toEqual(['r1049', 'r1048']);
    expect((await readFile(path, 'utf8')).split('\n').filter(Boolean)).toHaveLength(1_052);
    await writeFile(path, Array.from({ length: 2_100 }, (_, i) => `${JSON.stringify(past(i))}\n`).join(''));
    log = await openRunLog(path);
    const rotated = (await readFile(path, 'utf8')).split('\n').filter(Boolean).map((line) => JSON.parse(line) as PipelineRunRecord);
    expect(rotated.map((run) => run.runId)).toEqual(Array.from({ length: 100 }, (_, i) => `r${2_000 + i}`));
    expect(log.runs('finance.orders')).toHaveLength(100);
    expect(log.runs('finance.orders')[0]!.runId).toBe('r2099');
  });
});

describe('the run log shared by replicas on Redis', () => {
  const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
  const key = `run-log-test-${process.pid}-${Date.now()}:finance:runs`;
  afterAll(async () => {
    const redis = new Redis(REDIS_URL);
    const keys = await redis.keys(`${key}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  it("shows each replica the runs the others recorded, whatever their DATA_DIR; the first brings its file's history", async () => {
    const shared = { redisUrl: REDIS_URL, key, pipelines: ['finance.orders', 'finance.invoices'] };
    // Replica A had a history of its own before the replicas shared Redis.
    const fileA = join(dir, 'replica-a', 'finance.jsonl');
    await mkdir(join(dir, 'replica-a'), { recursive: true });
    await writeFile(fileA, [past(1), past(2)].map((run) => `${JSON.stringify(run)}\n`).join(''));
    const a = await openRunLog(fileA, shared);
    const b = await openRunLog(join(dir, 'replica-b', 'finance.jsonl'), shared);
    try {
      expect(b.runs('finance.orders').map((run) => run.runId)).toEqual(['r2', 'r1']);
      await a.record({ event: 'started', runId: 'j7', pipeline: 'finance.orders', trigger: 'schedule', attempt: 1, at: '2026-12-07T10:00:00.000Z' });
      await a.record({ event: 'succeeded', runId: 'j7', pipeline: 'finance.orders', trigger: 'schedule', attempt: 1, at: '2026-12-07T10:00:03.000Z' }, { load: 'swapped', rows: 9 });
      await b.record({ event: 'started', runId: 'j8', pipeline: 'finance.invoices', trigger: 'dependency', attempt: 1, at: '2026-12-07T10:00:04.000Z', parent: { pipeline: 'finance.orders', runId: 'j7' } });
      await b.record({ event: 'succeeded', runId: 'j8', pipeline: 'finance.invoices', trigger: 'dependency', attempt: 1, at: '2026-12-07T10:00:05.000Z', parent: { pipeline: 'finance.orders', runId: 'j7' } }, { load: 'current', rows: null });
      await Promise.all([a.reload(), b.reload()]);
      for (const log of [a, b]) {
        expect(log.runs('finance.orders').map((run) => run.runId)).toEqual(['j7', 'r2', 'r1']);
        expect(log.runs('finance.invoices')).toEqual([expect.objectContaining({ runId: 'j8', parent: { pipeline: 'finance.orders', runId: 'j7' } })]);
      }
      // A third replica, its own file empty, starts with the whole history, and does not seed it again.
      const c = await openRunLog(join(dir, 'replica-c', 'finance.jsonl'), shared);
      expect(c.runs('finance.orders').map((run) => run.runId)).toEqual(['j7', 'r2', 'r1']);
      await c.close();
      // Each list keeps the latest 100 runs.
      for (let i = 0; i < 120; i += 1) await a.record({ event: 'succeeded', runId: `k${i}`, pipeline: 'finance.orders', trigger: 'schedule', attempt: 1, at: '2026-12-07T11:00:00.000Z' }, { load: 'current', rows: null });
      await b.reload();
      expect(b.runs('finance.orders')).toHaveLength(100);
      expect(b.runs('finance.orders')[0]!.runId).toBe('k119');
    } finally {
      await a.close();
      await b.close();
    }
  });
});
