/**
 * Anomalies a product declares errors (issue 26, part 4): finance.orders declares its row count's
 * (`pipeline.anomalies.errors: ['rows']`). Against a history of five weeks of runs that served
 * twice today's orders, a run's load is judged before it is swapped in: rejected, kept aside, the
 * run failed at once (no retry, no dependent run), the serving version answering as before, and the
 * anomaly shown with its band and severity in the catalog and counted in the metrics. An operator
 * who knows the data changed for good accepts it (`run --accept-anomalies`): the load is served,
 * the anomaly stays a warning, and its measures start the baseline the next runs are judged by.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_SIGNING_KEY, SIGNATURE_HEADER, signSubgraphRequest } from '../policy/subgraph-signature.js';
import { finance } from '../subgraphs/finance/index.js';
import type { PipelineRunRecord } from '../subgraphs/kit/pipelines/run-log.js';
import type { PipelineRunner } from '../subgraphs/kit/pipelines/runner.js';
import { qualityHistoryAt } from '../subgraphs/kit/warehouse/build.js';
import { deliverIncrement } from '../subgraphs/synthetic-sources/live.js';
import { postGraphQL, startTestMesh, tokenFor, type TestMesh } from './harness/mesh.js';
import { serveTestPipelines } from './harness/pipelines.js';

let mesh: TestMesh;
let pipelines: PipelineRunner | undefined;
let url: string;
const steward = () => ({ authorization: `Bearer ${tokenFor()}` });
const servedOrders = async () => (await postGraphQL<any>(mesh.gateway.url, '{ orders(first: 1) { totalCount } }', undefined, steward())).body.data.orders.totalCount as number;
const runLog = () => join(mesh.dataDir, 'pipelines', 'finance.jsonl');
const runs = async () => (await readFile(runLog(), 'utf8')).split('\n').filter(Boolean).map((line) => JSON.parse(line) as PipelineRunRecord);
const ended = async (runId: string) => (await runs()).find((run) => run.runId === runId);
/** POSTs to the finance subgraph's /pipelines, signed as the platform's command is. */
const ask = async (body: Record<string, unknown>) => {
  const text = JSON.stringify(body);
  const response = await fetch(new URL('pipelines', mesh.subgraphs.finance!.url), { method: 'POST', headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signSubgraphRequest({ key: DEV_SIGNING_KEY, body: text }) }, body: text });
  return { status: response.status, body: (await response.json()) as any };
};

beforeAll(async () => {
  mesh = await startTestMesh();
  url = `duckdb:${join(mesh.dataDir, 'warehouses', 'finance.duckdb')}`;
  // Five weeks of daily runs, each serving twice today's orders.
  const rows = 2 * (await servedOrders());
  await mkdir(join(mesh.dataDir, 'pipelines'), { recursive: true });
  const day = 86_400_000;
  const past = Array.from({ length: 35 }, (_, i) => {
    const at = new Date(Date.now() - (35 - i) * day).toISOString();
    return { runId: `past-${i}`, pipeline: 'finance.orders', trigger: 'schedule', startedAt: at, endedAt: at, attempts: 1, outcome: 'succeeded', load: 'swapped', rows, error: null, measures: { at, rows: rows + (i % 3), columns: {} } };
  });
  await writeFile(runLog(), past.map((run) => `${JSON.stringify(run)}\n`).join(''));
  pipelines = await serveTestPipelines(mesh, finance);
});

afterAll(async () => {
  await pipelines?.stop();
  await mesh?.stop();
});

describe("a product's anomalies declared errors", () => {
  it('reject a load whose row count leaves the band: the run fails at once, nothing follows it, and the version before is served', async () => {
    const before = await servedOrders();
    await deliverIncrement({ rawDir: join(mesh.dataDir, 'raw'), orders: 12 });
    const { body } = await ask({ action: 'run', pipeline: 'finance.orders' });
    const runId = body.runId as string;
    await expect.poll(() => ended(runId), { timeout: 30_000, interval: 200 }).toBeTruthy();
    const run = (await ended(runId))!;
    expect(run).toMatchObject({ outcome: 'failed', attempts: 1, load: 'rejected', error: expect.stringMatching(/^the finance load was rejected by finance\.orders anomaly_rows; kept aside at .*finance\.duckdb\.rejected, the serving version stays$/) });
    expect(run.anomalies).toEqual([expect.objectContaining({ measure: 'rows', kind: 'below', severity: 'error', value: before + 12 })]);
    expect(run.anomalies![0]!.band!.low).toBeGreaterThan(before + 12);
    expect(run.measures).toBeUndefined(); // a version not served joins no history
    expect(existsSync(join(mesh.dataDir, 'warehouses', 'finance.duckdb.rejected'))).toBe(true);
    expect(await servedOrders()).toBe(before);
    // In the quality history, as the check that rejected the load.
    const rejected = (await qualityHistoryAt(url)).at(-1)!;
    expect(rejected.outcome).toBe('rejected');
    // The run names it, and what its load read: the delivery's orders.
    expect(run.quality).toEqual({ runId: rejected.runId, outcome: 'rejected' });
    expect(run.read).toBeGreaterThanOrEqual(12);
    expect(rejected.results.find((result) => result.check === 'anomaly_rows')).toMatchObject({ product: 'finance.orders', severity: 'error', outcome: 'fail', value: before + 12, unit: 'rows', threshold: expect.stringMatching(/^from \d+(\.\d+)? to \d+(\.\d+)? \(expected \d+, from \d+ (same-weekday )?runs\)$/) });
    // No dependent run: the invoices did not follow a failed run.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await runs()).filter((candidate) => candidate.parent?.runId === runId)).toEqual([]);
    // Counted, for the PipelineRunFailed and DataAnomaly alerts.
    const metrics = await (await fetch(new URL('/metrics', mesh.subgraphs.finance!.url))).text();
    expect(metrics).toMatch(/^pipeline_runs_total\{[^}]*pipeline="finance\.orders"[^}]*trigger="manual"[^}]*outcome="failed"[^}]*\} 1$/m);
    expect(metrics).toMatch(/^pipeline_run_anomalies_total\{[^}]*pipeline="finance\.orders"[^}]*measure="rows"[^}]*kind="below"[^}]*\} 1$/m);
    // In the catalog, beside the run.
    const catalogRun = async () => (await postGraphQL<any>(mesh.gateway.url, '{ dataProduct(id: "finance.orders") { pipeline { runs(first: 5) { runId outcome load qualityOutcome rowsRead anomaliesAccepted anomalies { measure kind severity expectedLow } } } } }', undefined, steward())).body.data?.dataProduct?.pipeline?.runs.find((candidate: any) => candidate.runId === runId);
    await expect.poll(catalogRun, { timeout: 45_000, interval: 1_000 }).toMatchObject({ outcome: 'failed', load: 'rejected', qualityOutcome: 'rejected', rowsRead: run.read, anomaliesAccepted: false, anomalies: [{ measure: 'rows', kind: 'below', severity: 'error', expectedLow: expect.any(Number) }] });
  }, 90_000);

  it('are accepted when an operator says the data changed for good: the load is served, the anomaly a warning, its measures the new baseline', async () => {
    const before = await servedOrders();
    // An acceptance that is not a yes or no is refused.
    expect(await ask({ action: 'run', pipeline: 'finance.orders', acceptAnomalies: 'yes' })).toMatchObject({ status: 400, body: { error: { code: 'BAD_REQUEST' } } });
    const { body } = await ask({ action: 'run', pipeline: 'finance.orders', acceptAnomalies: true });
    await expect.poll(() => ended(body.runId), { timeout: 30_000, interval: 200 }).toBeTruthy();
    const accepted = (await ended(body.runId))!;
    expect(accepted).toMatchObject({ outcome: 'succeeded', load: 'swapped', anomaliesAccepted: true, rows: before + 12 });
    expect(accepted.anomalies).toEqual([expect.objectContaining({ measure: 'rows', kind: 'below', severity: 'warning' })]);
    expect(await servedOrders()).toBe(before + 12);
    // The invoices, loaded by the orders' run, are measured by the run that follows it: their history grows too.
    await expect.poll(async () => (await runs()).find((run) => run.parent?.runId === body.runId), { timeout: 30_000, interval: 200 }).toMatchObject({ pipeline: 'finance.invoices', load: 'current', measures: { rows: expect.any(Number) } });
    const invoices = (await runs()).find((run) => run.parent?.runId === body.runId)!;
    expect(invoices.rows).toBe(invoices.measures!.rows);
    expect(invoices.measures!.rows).toBe((await postGraphQL<any>(mesh.gateway.url, '{ invoices(first: 1) { totalCount } }', undefined, steward())).body.data.invoices.totalCount);
    // The next run is judged from the accepted run on: too short a history to judge, so nothing rejects it.
    await deliverIncrement({ rawDir: join(mesh.dataDir, 'raw'), orders: 5 });
    const next = await ask({ action: 'run', pipeline: 'finance.orders' });
    await expect.poll(() => ended(next.body.runId), { timeout: 30_000, interval: 200 }).toBeTruthy();
    const judged = (await ended(next.body.runId))!;
    expect(judged).toMatchObject({ outcome: 'succeeded', load: 'swapped', anomalies: [] });
    // Its new orders served (a delivery may also withdraw a pending order).
    expect(judged.increment!.inserted).toBeGreaterThan(0);
    expect(judged.rows).toBe(before + 12 + judged.increment!.inserted - judged.increment!.deleted);
    expect(await servedOrders()).toBe(judged.rows);
  }, 90_000);
});
