/**
 * The runner in the process across a crash (issue 26): `npm run subgraph -- finance` without Redis
 * is killed (SIGKILL) while a run asked for is merging a large delivery; started again on the same
 * DATA_DIR, it runs that run again (its journal kept it), with the same run id, and the run ends
 * recorded as succeeded; the serving version answers with the delivery whole.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_SIGNING_KEY, SIGNATURE_HEADER, signSubgraphRequest } from '../policy/subgraph-signature.js';
import type { PipelineRunRecord } from '../subgraphs/kit/pipelines/run-log.js';
import { deliverIncrement } from '../subgraphs/synthetic-sources/live.js';
import { freePort } from './harness/mesh.js';
import { npmService, stop, type Started } from './harness/npm-start.js';

describe('a subgraph killed while its pipeline runs, started again', () => {
  let dataDir: string;
  let port: number;
  let env: NodeJS.ProcessEnv;
  let service: Started | undefined;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'pipeline-restart-'));
    port = await freePort();
    env = { DATA_DIR: dataDir, SCALE: '0.05', PORT: String(port), LOG_LEVEL: 'info' };
    service = await npmService('subgraph', ['finance'], env, /subgraph finance serving/);
  });

  afterAll(async () => {
    await stop(service);
    await rm(dataDir, { recursive: true, force: true });
  });

  it('runs the run it was running again, with its run id, and serves the delivery whole', async () => {
    const body = JSON.stringify({ action: 'run', pipeline: 'finance.orders' });
    await deliverIncrement({ rawDir: join(dataDir, 'raw'), orders: 20_000 });
    const asked = await fetch(`http://127.0.0.1:${port}/pipelines`, { method: 'POST', headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signSubgraphRequest({ key: DEV_SIGNING_KEY, body }) }, body });
    expect(asked.status).toBe(200);
    const { runId } = (await asked.json()) as { runId: string };
    const started = new RegExp(`"run":"${runId}"[^\\n]*pipeline run started|pipeline run started[^\\n]*"run":"${runId}"`);
    await expect.poll(() => started.test(service!.output()), { timeout: 30_000, interval: 20 }).toBe(true);
    process.kill(-service!.child.pid!, 'SIGKILL');
    const journal = JSON.parse(await readFile(join(dataDir, 'pipelines', 'finance.queue.json'), 'utf8')) as { runId: string; trigger: string }[];
    expect(journal).toContainEqual(expect.objectContaining({ runId, trigger: 'manual' }));
    // Started again: its start-up load merges the delivery, then its journal runs the run again.
    service = await npmService('subgraph', ['finance'], env, /subgraph finance serving/);
    const ran = async () => (await readFile(join(dataDir, 'pipelines', 'finance.jsonl'), 'utf8').catch(() => '')).split('\n').filter(Boolean).map((line) => JSON.parse(line) as PipelineRunRecord).find((run) => run.runId === runId);
    await expect.poll(ran, { timeout: 60_000, interval: 500 }).toMatchObject({ pipeline: 'finance.orders', trigger: 'manual', outcome: 'succeeded' });
    await expect.poll(async () => JSON.parse(await readFile(join(dataDir, 'pipelines', 'finance.queue.json'), 'utf8')), { timeout: 30_000 }).toEqual([]);
    // The delivery merged whole, once: by the start-up load of the process started again.
    const merges = service.output().split('\n').filter((line) => line.includes('increments merged into the serving warehouse')).map((line) => JSON.parse(line) as { changes: { orders: { inserted: number } } });
    expect(merges).toHaveLength(1);
    expect(merges[0]!.changes.orders.inserted).toBeGreaterThanOrEqual(19_000);
  }, 180_000);
});
