/**
 * Backfills of a date range (issue 26), on each warehouse dialect: the orders' source is corrected
 * for June 2025 and for other months; a backfill of June reloads June only, as the sources say it
 * (its full file, then the deliveries the serving version applied): June's rows are then those of a
 * full rebuild of the same files, every other month's are those served before, and the amounts
 * derived from June's orders follow them. A reload the quality gate refuses leaves the serving
 * version; a range that cannot be reloaded as the serving version knows it is refused. Then as an
 * operator does it, on a mesh started with npm start: `npm run pipelines -- backfill`, the run and
 * the invoices' run that follows it in the history, the catalog and the lineage; wrong ranges refused.
 */
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_SIGNING_KEY, SIGNATURE_HEADER, signSubgraphRequest } from '../policy/subgraph-signature.js';
import { finance } from '../subgraphs/finance/index.js';
import { pipelineRunLineageId, type LineageEvent } from '../subgraphs/kit/lineage.js';
import type { PipelineRunRecord } from '../subgraphs/kit/pipelines/run-log.js';
import { ensureWarehouse, type Backfill } from '../subgraphs/kit/warehouse/build.js';
import { DIALECTS } from '../subgraphs/kit/warehouse/dialects.js';
import { openWarehouse, readWarehouseAt } from '../subgraphs/kit/warehouse/open.js';
import { readOutbox } from '../subgraphs/kit/events/outbox.js';
import { generateSourceData } from '../subgraphs/synthetic-sources/generate.js';
import { freePort, postGraphQL, tokenFor } from './harness/mesh.js';
import { npmStart, stop, type Started } from './harness/npm-start.js';
import { warehousesOnEachDialect } from './harness/postgres.js';
import { runProcess } from './harness/run-process.js';

const warehouses = warehousesOnEachDialect('backfill_test');

interface Order {
  id: string;
  customer_id: string;
  ordered_at: string;
  status: string;
  channel: string;
  region: string;
}

const JUNE: Backfill = { table: 'orders', column: 'ordered_at', from: '2025-06-01', to: '2025-06-30' };
const inJune = (order: { readonly ordered_at?: unknown }) => {
  const at = order.ordered_at instanceof Date ? order.ordered_at.toISOString() : String(order.ordered_at);
  return at >= '2025-06-01' && at < '2025-07-01';
};
const otherRegion = (region: string) => (region === 'EMEA' ? 'APAC' : 'EMEA');

/** Rows of a finance table, in key order (amounts as text: the dialects' decimals compare alike). */
async function rowsOf(url: string, table: string): Promise<Record<string, unknown>[]> {
  const warehouse = openWarehouse(url);
  try {
    const spec = finance.tables.find(({ name }) => name === table)!;
    const rows = (await sql<Record<string, unknown>>`select * from ${sql.table(table)} order by ${sql.join(spec.primaryKey.map((column) => sql.ref(column)))}`.execute(warehouse.db as Kysely<unknown>)).rows;
    return rows.map((row) => Object.fromEntries(Object.entries(row).map(([key, value]) => [key, value === null || value instanceof Date ? value : String(value)])));
  } finally {
    await warehouse.close();
  }
}

describe.each(DIALECTS.map((adapter) => adapter.dialect))('on %s', (dialect) => {
  const serving = () => warehouses.url(dialect, 'serving_finance');
  const raw = () => join(warehouses.dir(), `raw-${dialect}`, 'finance');
  let fingerprint: string;
  let extractedAt: string;
  const load = (url: string, backfill?: Backfill) => ensureWarehouse({ domain: finance, url, rawDir: raw(), sourceFingerprint: fingerprint, sourceExtractedAt: extractedAt, ...(backfill ? { backfill } : {}) });
  const readOrders = async () => parse(await readFile(join(raw(), 'orders.csv'), 'utf8'), { columns: true }) as Order[];
  const writeOrders = (orders: readonly Order[]) => writeFile(join(raw(), 'orders.csv'), stringify(orders as Order[], { header: true, columns: ['id', 'customer_id', 'ordered_at', 'status', 'channel', 'region'] }));

  beforeAll(async () => {
    ({ fingerprint, extractedAt } = await generateSourceData({ rawDir: join(warehouses.dir(), `raw-${dialect}`), scale: 0.02 }));
    expect((await load(serving())).built).toBe(true);
  });

  it("reloads June only, as its sources say it, with a full rebuild's rows in June and the served rows elsewhere", async () => {
    const orders = await readOrders();
    const june = orders.filter(inJune);
    const invoiced = new Set((parse(await readFile(join(raw(), 'invoices.csv'), 'utf8'), { columns: true }) as { order_id: string }[]).map((invoice) => invoice.order_id));
    expect(june.length).toBeGreaterThan(5);
    const [delivered, corrected] = june.filter(({ id }) => invoiced.has(id));
    const elsewhere = orders.find((order) => !inJune(order) && invoiced.has(order.id))!;
    // A delivery the serving version merges: June's `delivered` order moved to another region.
    const increment = join(raw(), 'increments', '20261207T080000Z-000001');
    await mkdir(increment, { recursive: true });
    await writeFile(join(increment, 'orders.csv'), stringify([{ ...delivered!, region: otherRegion(delivered!.region) }], { header: true }));
    expect((await load(serving())).incremental?.changes.orders).toEqual({ inserted: 0, updated: 1, deleted: 0 });

    // Then the source is corrected: a June order and one of another month change region, June gains an
    // order, and the full file's own row of `delivered` (older than the delivery) changes its channel.
    await writeOrders([
      ...orders.map((order) =>
        order.id === corrected!.id || order.id === elsewhere.id ? { ...order, region: otherRegion(order.region) } : order.id === delivered!.id ? { ...order, channel: order.channel === 'WEB' ? 'STORE' : 'WEB' } : order,
      ),
      { id: 'O99999999', customer_id: orders[0]!.customer_id, ordered_at: '2025-06-15 10:00:00', status: 'PENDING', channel: 'WEB', region: 'EMEA' },
    ]);
    const before = { orders: await rowsOf(serving(), 'orders'), invoices: await rowsOf(serving(), 'invoices'), lines: await rowsOf(serving(), 'order_lines') };
    const eventsAfter = async (seq: number) => (await readWarehouseAt(serving(), (db) => readOutbox(db, seq), [])).map(({ change: { product, operation, keys, changedFields } }) => ({ product, operation, keys, changedFields }));
    const lastSeq = async () => (await readWarehouseAt(serving(), (db) => readOutbox(db), [])).at(-1)?.seq ?? 0;
    const seqBefore = await lastSeq();

    const backfill = await load(serving(), JUNE);
    expect(backfill.loadError).toBeUndefined();
    expect(backfill.built).toBe(true);
    expect(backfill.backfill).toEqual(JUNE);
    expect(backfill.quality?.outcome).toBe('passed');
    expect(backfill.incremental).toEqual({ increments: [], changes: { orders: { inserted: 1, updated: june.length, deleted: 0 } } });
    expect(backfill.watermark).toBe('20261207T080000Z-000001');

    // A full rebuild of the same files (full file and delivery), for comparison.
    const rebuilt = warehouses.url(dialect, 'rebuilt_finance');
    expect((await load(rebuilt)).built).toBe(true);
    const after = await rowsOf(serving(), 'orders');
    const full = await rowsOf(rebuilt, 'orders');
    expect(after.filter(inJune)).toEqual(full.filter(inJune));
    expect(after.filter((order) => !inJune(order))).toEqual(before.orders.filter((order) => !inJune(order)));
    // So: June's correction and new order are served, the other month's correction is not (yet), and
    // the delivery's row stays applied over the full file's older one (its region, and its channel, not the file's).
    const byId = (rows: readonly Record<string, unknown>[], id: string) => rows.find((row) => row.id === id)!;
    expect(byId(after, corrected!.id).region).toBe(otherRegion(corrected!.region));
    expect(byId(after, 'O99999999')).toMatchObject({ status: 'PENDING', region: 'EMEA' });
    expect(Number(byId(after, 'O99999999').total_amount)).toBe(0);
    expect(byId(after, elsewhere.id).region).toBe(elsewhere.region);
    expect(byId(full, elsewhere.id).region).toBe(otherRegion(elsewhere.region));
    expect(byId(after, delivered!.id)).toMatchObject({ region: otherRegion(delivered!.region), channel: delivered!.channel });
    // Derived from June's orders: their invoices' regions follow; every total still the sum of its lines; the lines untouched.
    const invoices = await rowsOf(serving(), 'invoices');
    expect(invoices.find((invoice) => invoice.order_id === corrected!.id)!.region).toBe(otherRegion(corrected!.region));
    expect(invoices.find((invoice) => invoice.order_id === elsewhere.id)!.region).toBe(elsewhere.region);
    expect(await rowsOf(serving(), 'order_lines')).toEqual(before.lines);
    const warehouse = openWarehouse(serving());
    try {
      const wrong = await sql<{ n: number }>`select count(*) as n from orders o where total_amount <> coalesce((select sum(net_amount) from order_lines l where l.order_id = o.id), 0)`.execute(warehouse.db as Kysely<unknown>);
      expect(Number(wrong.rows[0]!.n)).toBe(0);
    } finally {
      await warehouse.close();
    }
    // Its change events: the new order (every field), the June order that moved region (no field
    // shows the region) and its invoice (derived); not the other June orders it reloaded unchanged.
    const invoicesOf = (id: string) => invoices.filter((invoice) => invoice.order_id === id).map((invoice) => String(invoice.id)).sort();
    expect(await eventsAfter(seqBefore)).toEqual([
      { product: 'finance.orders', operation: 'upsert', keys: ['O99999999'], changedFields: ['id', 'customer', 'orderedAt', 'status', 'channel', 'total'] },
      { product: 'finance.orders', operation: 'upsert', keys: [corrected!.id], changedFields: [] },
      { product: 'finance.invoices', operation: 'upsert', keys: invoicesOf(corrected!.id), changedFields: [] },
    ]);

    // A full reload compares the new version with the serving one: only the other month's correction changed.
    const seqBeforeFull = await lastSeq();
    const reload = await ensureWarehouse({ domain: finance, url: serving(), rawDir: raw(), sourceFingerprint: fingerprint, sourceExtractedAt: extractedAt, force: true });
    expect(reload.built).toBe(true);
    expect(await eventsAfter(seqBeforeFull)).toEqual([
      { product: 'finance.orders', operation: 'upsert', keys: [elsewhere.id], changedFields: [] },
      { product: 'finance.invoices', operation: 'upsert', keys: invoicesOf(elsewhere.id), changedFields: [] },
    ]);
    // The entries before it are carried into the new version: the sequence goes on.
    expect((await readWarehouseAt(serving(), (db) => readOutbox(db), [])).map(({ seq }) => seq)).toEqual(Array.from({ length: seqBeforeFull + 2 }, (_, i) => i + 1));
  });

  it('deletes what the source no longer has in the range; a reload the quality gate refuses leaves the serving version', async () => {
    const orders = await readOrders();
    await writeOrders(orders.filter(({ id }) => id !== 'O99999999'));
    const removed = await load(serving(), JUNE);
    expect(removed.incremental?.changes.orders).toMatchObject({ inserted: 0, deleted: 1 });
    expect((await rowsOf(serving(), 'orders')).some(({ id }) => id === 'O99999999')).toBe(false);

    // A June order with an invoice dropped from the source (not the one the delivery holds, which keeps it): its invoice would point at nothing.
    const invoiced = new Set((parse(await readFile(join(raw(), 'invoices.csv'), 'utf8'), { columns: true }) as { order_id: string }[]).map((invoice) => invoice.order_id));
    const candidates = orders.filter((order) => inJune(order) && invoiced.has(order.id));
    const dropped = candidates.at(-1)!;
    expect(candidates.indexOf(dropped)).toBeGreaterThan(1);
    await writeOrders(orders.filter(({ id }) => id !== dropped.id && id !== 'O99999999'));
    const servedBefore = await rowsOf(serving(), 'orders');
    const refused = await load(serving(), JUNE);
    expect(refused.built).toBe(false);
    expect(refused.rejectedKeptAt).toBeTruthy();
    expect(refused.quality?.results.find((result) => result.check === 'order_exists')).toMatchObject({ outcome: 'fail', value: 1 });
    expect(await rowsOf(serving(), 'orders')).toEqual(servedBefore);
    await writeOrders(orders.filter(({ id }) => id !== 'O99999999'));
  });

  it('refuses a range it cannot reload as the serving version knows it, and changes nothing', async () => {
    const servedBefore = await rowsOf(serving(), 'orders');
    // A derived column is no source's: no range of it.
    expect((await load(serving(), { ...JUNE, column: 'total_amount' })).loadError).toMatch(/orders\.total_amount is not a column loaded from the sources/);
    expect((await load(serving(), { ...JUNE, table: 'shipments' })).loadError).toMatch(/no table "shipments"/);
    // A delivery the serving version applied, gone from the raw folder: reloading without it would undo it.
    await rm(join(raw(), 'increments', '20261207T080000Z-000001'), { recursive: true });
    expect((await load(serving(), JUNE)).loadError).toMatch(/applied 20261207T080000Z-000001, no longer in .*: a reload of the range without it would undo it/);
    expect(await rowsOf(serving(), 'orders')).toEqual(servedBefore);
  });
});

/** `npm run -s <args>` in the checkout. */
const root = resolve(import.meta.dirname, '..');
const npmRun = (args: readonly string[], env: NodeJS.ProcessEnv) => runProcess('npm', ['run', '-s', ...args], { cwd: root, env });

describe('npm run pipelines -- backfill, on a mesh started with npm start (the runner in the process)', () => {
  let work: string;
  let mesh: Started | undefined;
  let gateway: string;
  let financeUrl: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'backfill-mesh-'));
    const [port, ...ports] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    gateway = `http://127.0.0.1:${port}/graphql`;
    financeUrl = `http://127.0.0.1:${ports[2]}/graphql`;
    const domains = ['customers', 'products', 'finance'].map((name, i) => ({ name, module: join(root, `subgraphs/${name}/index.js`), url: `http://127.0.0.1:${ports[i]}/graphql` }));
    await writeFile(join(work, 'mesh.json'), JSON.stringify({ domains }));
    env = { MESH_MANIFEST: join(work, 'mesh.json'), DATA_DIR: join(work, 'data'), PORT: String(port), SUBGRAPHS: '', SCALE: '0.02', SEED: '', LOG_LEVEL: 'info' };
    mesh = await npmStart(env);
  });

  afterAll(async () => {
    await stop(mesh);
    await rm(work, { recursive: true, force: true });
  });

  it('reloads the days asked for, through the quality gate, and records the run, its dependent and their lineage', async () => {
    const file = join(work, 'data', 'raw', 'finance', 'orders.csv');
    const orders = parse(await readFile(file, 'utf8'), { columns: true }) as Order[];
    const june = orders.find(inJune)!;
    const other = orders.find((order) => !inJune(order))!;
    const flip = (channel: string) => (channel === 'WEB' ? 'STORE' : 'WEB');
    // The order system's export is corrected, in June and in another month.
    await writeFile(`${file}.part`, stringify(orders.map((order) => (order.id === june.id || order.id === other.id ? { ...order, channel: flip(order.channel) } : order)), { header: true }));
    await rename(`${file}.part`, file);
    const steward = { authorization: `Bearer ${tokenFor()}` };
    const channelOf = async (id: string) => (await postGraphQL<any>(gateway, `{ order(id: "${id}") { channel } }`, undefined, steward)).body.data?.order?.channel;
    expect(await channelOf(june.id)).toBe(june.channel);

    const asked = await npmRun(['pipelines', '--', 'backfill', 'finance.orders', '--from', '2025-06-01', '--to', '2025-06-30'], env);
    expect(asked.stderr).toBe('');
    const runId = /^finance\.orders: backfill of 2025-06-01 to 2025-06-30 run (\S+) queued\.$/m.exec(asked.stdout)?.[1];
    expect(runId, asked.stdout).toBeTruthy();
    await expect.poll(() => channelOf(june.id), { timeout: 60_000, interval: 500 }).toBe(flip(june.channel));
    // The other month's correction waits for a backfill of its own (or a full one).
    expect(await channelOf(other.id)).toBe(other.channel);
    expect(mesh!.output()).toMatch(/range reloaded into the serving warehouse \(backfill\)/);

    // The run, then the invoices' run that followed it (its parent), in the run history: never before it ended.
    const history = async () => (await readFile(join(work, 'data', 'pipelines', 'finance.jsonl'), 'utf8')).split('\n').filter(Boolean).map((line) => JSON.parse(line) as PipelineRunRecord);
    await expect.poll(async () => (await history()).some((run) => run.pipeline === 'finance.invoices' && run.parent?.runId === runId), { timeout: 30_000 }).toBe(true);
    const backfill = (await history()).find((run) => run.runId === runId)!;
    expect(backfill).toMatchObject({ pipeline: 'finance.orders', trigger: 'backfill', range: { from: '2025-06-01', to: '2025-06-30' }, outcome: 'succeeded', load: 'swapped', increment: { inserted: 0, deleted: 0, updated: orders.filter(inJune).length } });
    const dependent = (await history()).find((run) => run.parent?.runId === runId)!;
    expect(dependent).toMatchObject({ pipeline: 'finance.invoices', trigger: 'dependency', outcome: 'succeeded', parent: { pipeline: 'finance.orders', runId } });
    expect(Date.parse(dependent.startedAt)).toBeGreaterThanOrEqual(Date.parse(backfill.endedAt));
    const status = await npmRun(['pipelines', '--', 'status', '--domain', 'finance'], env);
    expect(status.stdout).toMatch(/^finance\.orders\s+every 1 d\s+next \S+\s+last succeeded \(backfill 2025-06-01 to 2025-06-30, load swapped\)/m);
    expect(status.stdout).toMatch(/^finance\.invoices\s+when asked\s+next -\s+last succeeded \(dependency, load current\)/m);

    // Their lineage: the pipeline runs as jobs, the invoices' run under the orders' run, and the load under the backfill run.
    const lineage = (await readFile(join(work, 'data', 'lineage', 'finance.jsonl'), 'utf8')).split('\n').filter(Boolean).map((line) => JSON.parse(line) as LineageEvent);
    const runLineage = pipelineRunLineageId('finance.orders', runId!);
    const jobs = (name: string) => lineage.filter((event) => (event.job as { name: string }).name === name);
    expect(jobs('finance.orders.pipeline').filter((event) => event.run.runId === runLineage).map((event) => event.eventType)).toEqual(['START', 'COMPLETE']);
    expect(jobs('finance.invoices.pipeline').find((event) => event.eventType === 'COMPLETE' && (event.run.facets?.parent as any)?.run.runId === runLineage)).toBeTruthy();
    expect(jobs('finance.orders.ingestion').filter((event) => (event.run.facets?.parent as any)?.run.runId === runLineage).map((event) => event.eventType)).toEqual(['START', 'COMPLETE']);

    // In the catalog (read from the domains every 30 s): the range beside the run, and the dependent's parent.
    const runs = async () => (await postGraphQL<any>(gateway, '{ a: dataProduct(id: "finance.orders") { pipeline { runs(first: 5) { runId trigger backfillFrom backfillTo rowsUpdated rowsRead qualityOutcome } } } b: dataProduct(id: "finance.invoices") { pipeline { everySeconds runs(first: 5) { trigger parentPipeline parentRunId } } } }', undefined, steward)).body.data;
    await expect.poll(async () => (await runs())?.a.pipeline.runs.find((run: any) => run.runId === runId), { timeout: 60_000, interval: 2_000 }).toMatchObject({ trigger: 'backfill', backfillFrom: '2025-06-01', backfillTo: '2025-06-30', rowsUpdated: orders.filter(inJune).length, rowsRead: orders.filter(inJune).length, qualityOutcome: 'passed' });
    const invoices = (await runs()).b.pipeline;
    expect(invoices.everySeconds).toBeNull();
    expect(invoices.runs).toContainEqual({ trigger: 'dependency', parentPipeline: 'finance.orders', parentRunId: runId });
  }, 180_000);

  it('refuses a range that is not two days in order, coded, and changes nothing', async () => {
    const served = async () => (await postGraphQL<any>(gateway, '{ orders(first: 1) { totalCount } }', undefined, { authorization: `Bearer ${tokenFor()}` })).body.data.orders.totalCount;
    const before = await served();
    for (const [args, message] of [
      [['--from', '2025-06-31', '--to', '2025-07-01'], /^PIPELINE_RANGE_INVALID: --from must be a day, YYYY-MM-DD; got "2025-06-31"\.$/],
      [['--from', '2025-07-01', '--to', '2025-06-01'], /^PIPELINE_RANGE_INVALID: --to \(2025-06-01\) is before --from \(2025-07-01\)\.$/],
      [['--from', '2025-06-01'], /^PIPELINE_RANGE_INVALID: --to must be a day, YYYY-MM-DD; got "undefined"\.$/],
      [['--from', "2025-06-01'; DROP TABLE orders; --", '--to', '2025-06-30'], /^PIPELINE_RANGE_INVALID: --from must be a day/],
    ] as const) {
      const refused = await npmRun(['pipelines', '--', 'backfill', 'finance.orders', ...args], env);
      expect({ code: refused.code, stderr: refused.stderr.trim() }, args.join(' ')).toEqual({ code: 2, stderr: expect.stringMatching(message) });
    }
    expect((await npmRun(['pipelines', '--', 'backfill', 'finance.parcels', '--from', '2025-06-01', '--to', '2025-06-30'], env)).stderr).toMatch(/^PIPELINE_UNKNOWN: No pipeline "finance\.parcels"/);
    // The subgraphs found as the gateway finds them: SUBGRAPHS (name=url) first, else the manifest; a wrong list is refused.
    const bySubgraphs = { ...env, MESH_MANIFEST: '', SUBGRAPHS: `finance=${financeUrl}` };
    expect((await npmRun(['pipelines', '--', 'status'], bySubgraphs)).stdout).toMatch(/^finance\.orders\s+every 1 d/m);
    expect(await npmRun(['pipelines', '--', 'run', 'shipping.parcels'], bySubgraphs)).toMatchObject({ code: 2, stderr: expect.stringMatching(/^PIPELINE_UNKNOWN: "shipping\.parcels" is not <domain>\.<product> of a domain of SUBGRAPHS \(finance\)\./) });
    expect(await npmRun(['pipelines', '--', 'status'], { ...env, SUBGRAPHS: 'finance' })).toMatchObject({ code: 2, stderr: expect.stringMatching(/SUBGRAPHS entry "finance" is not name=url/) });
    // Sent by hand, signed as the platform: a range that is no string is refused as well.
    const body = JSON.stringify({ action: 'backfill', pipeline: 'finance.orders', from: { $gt: '' }, to: ['2025-06-30'] });
    const direct = await fetch(new URL('pipelines', financeUrl), { method: 'POST', headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signSubgraphRequest({ key: DEV_SIGNING_KEY, body }) }, body });
    expect({ status: direct.status, body: await direct.json() }).toEqual({ status: 400, body: { error: { code: 'PIPELINE_RANGE_INVALID', message: expect.stringMatching(/^--from must be a day/) } } });
    expect(await served()).toBe(before);
    expect(mesh!.output()).not.toMatch(/DROP TABLE/);
  }, 60_000);
});
