import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
