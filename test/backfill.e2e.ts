/**
 * Backfills of a date range (issue 26), on each warehouse dialect: the orders' source is corrected
 * for June 2025 and for other months; a backfill of June reloads June only, as the sources say it
 * (its full file, then the deliveries the serving version applied): June's rows are then those of a
 * full rebuild of the same files, every other month's are those served before, and the amounts
 * derived from June's orders follow them. A reload the quality gate refuses leaves the serving
 * version; a range that cannot be reloaded as the serving version knows it is refused.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { finance } from '../subgraphs/finance/index.js';
import { ensureWarehouse, type Backfill } from '../subgraphs/kit/warehouse/build.js';
import { DIALECTS } from '../subgraphs/kit/warehouse/dialects.js';
import { openWarehouse } from '../subgraphs/kit/warehouse/open.js';
import { generateSourceData } from '../subgraphs/synthetic-sources/generate.js';
import { onPostgres, TEST_POSTGRES } from './harness/postgres.js';

let dir: string;
const database = `backfill_test_${process.pid}_${randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'backfill-'));
  await onPostgres(`CREATE DATABASE ${database}`);
});

afterAll(async () => {
  await onPostgres(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  await rm(dir, { recursive: true, force: true });
});

const urls = {
  duckdb: (name: string) => `duckdb:${join(dir, `${name}.duckdb`)}`,
  postgres: (name: string) => `${TEST_POSTGRES}/${database}?schema=${name}`,
};

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
  const serving = () => urls[dialect]('serving_finance');
  const raw = () => join(dir, `raw-${dialect}`, 'finance');
  let fingerprint: string;
  let extractedAt: string;
  const load = (url: string, backfill?: Backfill) => ensureWarehouse({ domain: finance, url, rawDir: raw(), sourceFingerprint: fingerprint, sourceExtractedAt: extractedAt, ...(backfill ? { backfill } : {}) });
  const readOrders = async () => parse(await readFile(join(raw(), 'orders.csv'), 'utf8'), { columns: true }) as Order[];
  const writeOrders = (orders: readonly Order[]) => writeFile(join(raw(), 'orders.csv'), stringify(orders as Order[], { header: true, columns: ['id', 'customer_id', 'ordered_at', 'status', 'channel', 'region'] }));

  beforeAll(async () => {
    ({ fingerprint, extractedAt } = await generateSourceData({ rawDir: join(dir, `raw-${dialect}`), scale: 0.02 }));
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

    const backfill = await load(serving(), JUNE);
    expect(backfill.loadError).toBeUndefined();
    expect(backfill.built).toBe(true);
    expect(backfill.backfill).toEqual(JUNE);
    expect(backfill.quality?.outcome).toBe('passed');
    expect(backfill.incremental).toEqual({ increments: [], changes: { orders: { inserted: 1, updated: june.length, deleted: 0 } } });
    expect(backfill.watermark).toBe('20261207T080000Z-000001');

    // A full rebuild of the same files (full file and delivery), for comparison.
    const rebuilt = urls[dialect]('rebuilt_finance');
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
