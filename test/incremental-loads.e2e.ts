/**
 * Incremental loads (issue 26, part 2), on each warehouse dialect: the live synthetic sources
 * deliver increments (new orders with lines and invoices, orders moving on, withdrawn orders as
 * tombstones, changed customers and products); each domain's serving version merges them by key,
 * and its tables then hold, row for row, what a full rebuild of the same files holds. An increment
 * failing a quality rule is rejected, kept aside, and the serving version stays; a broken increment
 * fails the load and changes nothing; readers during a merge see the old version or the new one.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sql, type Kysely } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { customers } from '../subgraphs/customers/index.js';
import { finance } from '../subgraphs/finance/index.js';
import { products } from '../subgraphs/products/index.js';
import type { Domain } from '../subgraphs/kit/domain.js';
import { ensureWarehouse, qualityHistoryAt } from '../subgraphs/kit/warehouse/build.js';
import { DIALECTS } from '../subgraphs/kit/warehouse/dialects.js';
import { appliedIncrements } from '../subgraphs/kit/warehouse/increments.js';
import { openWarehouse, readWarehouseAt } from '../subgraphs/kit/warehouse/open.js';
import { readOutbox } from '../subgraphs/kit/events/outbox.js';
import { profilesAt } from '../subgraphs/kit/profiles.js';
import { generateSourceData } from '../subgraphs/synthetic-sources/generate.js';
import { deliverIncrement } from '../subgraphs/synthetic-sources/live.js';
import { warehousesOnEachDialect } from './harness/postgres.js';

const domains = [customers, products, finance] as readonly Domain<any, any>[];
let fingerprint: string;
let extractedAt: string;
const warehouses = warehousesOnEachDialect('incremental_test');

/** Every row of every declared table, in key order, as the adapter returns them. */
async function tablesOf(url: string, domain: Domain<any, any>): Promise<Record<string, unknown[]>> {
  const warehouse = openWarehouse(url);
  try {
    const tables: Record<string, unknown[]> = {};
    for (const table of domain.tables) {
      tables[table.name] = (await sql`select * from ${sql.table(table.name)} order by ${sql.join(table.primaryKey.map((column) => sql.ref(column)))}`.execute(warehouse.db as Kysely<unknown>)).rows;
    }
    return tables;
  } finally {
    await warehouse.close();
  }
}

describe.each(DIALECTS.map((adapter) => adapter.dialect))('on %s', (dialect) => {
  const url = (name: string) => warehouses.url(dialect, `serving_${name}`);
  const rebuilt = (name: string) => warehouses.url(dialect, `rebuilt_${name}`);
  const raw = () => join(warehouses.dir(), `raw-${dialect}`);
  /** Loads a domain; a load that fails says why. */
  const load = async (domain: Domain<any, any>, at: string) => {
    const build = await ensureWarehouse({ domain, url: at, rawDir: join(raw(), domain.name), sourceFingerprint: fingerprint, sourceExtractedAt: extractedAt });
    expect(build.loadError).toBeUndefined();
    return build;
  };
  const deliver = (hour: number, orders = 40) => deliverIncrement({ rawDir: raw(), now: new Date(`2026-12-07T${String(hour).padStart(2, '0')}:00:00Z`), orders });

  beforeAll(async () => {
    ({ fingerprint, extractedAt } = await generateSourceData({ rawDir: raw(), scale: 0.02 }));
  });

  it('merges deliveries by key into the serving version, with the answers of a full rebuild', async () => {
    for (const domain of domains) expect((await load(domain, url(domain.name))).built).toBe(true);
    if (dialect === 'postgres') {
      // The full load left the planner its tables' statistics: without them it plans an increment's joins of a few keys as scans of whole tables.
      const warehouse = openWarehouse(url('finance'));
      try {
        const analyzed = await sql<{ name: string }>`select relname as name from pg_stat_user_tables where schemaname = current_schema() and last_analyze is not null order by 1`.execute(warehouse.db as Kysely<unknown>);
        expect(analyzed.rows.map(({ name }) => name)).toEqual(expect.arrayContaining(finance.tables.map(({ name }) => name)));
      } finally {
        await warehouse.close();
      }
    }
    const before = await tablesOf(url('finance'), finance);
    // Three deliveries; the second and third merged together.
    await deliver(8);
    const first = await load(finance, url('finance'));
    expect(first.built).toBe(true);
    expect(first.incremental?.increments).toHaveLength(1);
    expect(first.incremental?.changes.orders).toEqual({ inserted: 40, updated: 0, deleted: 0 });
    expect(first.quality?.outcome).toBe('passed');
    // New orders: one change event with every field of each (their invoices likewise).
    const firstEvents = (await readWarehouseAt(url('finance'), (db) => readOutbox(db), [])).filter(({ change }) => change.product === 'finance.orders');
    expect(firstEvents.map(({ seq, change: { operation, keys, changedFields } }) => ({ seq, operation, keys: keys.length, changedFields }))).toEqual([
      { seq: 1, operation: 'upsert', keys: 40, changedFields: ['id', 'customer', 'orderedAt', 'status', 'channel', 'total'] },
    ]);
    for (const hour of [9, 10]) await deliver(hour);
    const later = await load(finance, url('finance'));
    expect(later.incremental?.increments).toHaveLength(2);
    const { inserted, updated, deleted } = later.incremental!.changes.orders!;
    expect(updated).toBeGreaterThan(0); // live orders moved on
    expect(inserted + updated).toBeGreaterThan(40);
    // Nothing more delivered: nothing to do.
    expect((await load(finance, url('finance'))).built).toBe(false);

    // A correction by hand: a line of an old order changed and another deleted (its total follows),
    // another order moved to another region (its invoice's region follows).
    type Line = { order_id: string; line_number: number; sku: string; category_id: string; quantity: number; unit_price: number; discount: number };
    const lines = before.order_lines as Line[];
    const corrected = lines.find((line, i) => line.line_number === 1 && lines[i + 1]?.order_id === line.order_id)!;
    const invoiced = (before.invoices as { order_id: string }[]).find(({ order_id }) => order_id !== corrected.order_id)!.order_id;
    const moved = (before.orders as { id: string; customer_id: string; ordered_at: string; status: string; channel: string; region: string }[]).find(({ id }) => id === invoiced)!;
    const correction = join(raw(), 'finance', 'increments', '20261207T110000Z-000004');
    await mkdir(correction, { recursive: true });
    await writeFile(
      join(correction, 'order_lines.csv'),
      `order_id,line_number,sku,category_id,quantity,unit_price,discount,_deleted\n${corrected.order_id},1,${corrected.sku},${corrected.category_id},${corrected.quantity + 1},${corrected.unit_price},${corrected.discount},false\n${corrected.order_id},2,,,,,,true\n`,
    );
    const region = moved.region === 'EMEA' ? 'APAC' : 'EMEA';
    await writeFile(join(correction, 'orders.csv'), `id,customer_id,ordered_at,status,channel,region\n${moved.id},${moved.customer_id},${moved.ordered_at.replace('T', ' ').replace(/\.000Z$/, '')},${moved.status},${moved.channel},${region}\n`);
    const outboxBefore = await readWarehouseAt(url('finance'), (db) => readOutbox(db), []);
    const corrections = await load(finance, url('finance'));
    expect(corrections.incremental?.changes).toEqual({ orders: { inserted: 0, updated: 1, deleted: 0 }, order_lines: { inserted: 0, updated: 1, deleted: 1 } });
    // Its change events, in the new version's outbox: the order whose line changed (its total), the
    // order that moved region (no field of it shows the region: a change with no field), and that
    // order's invoices (their region, derived). Keys and field names only.
    const made = (await readWarehouseAt(url('finance'), (db) => readOutbox(db, outboxBefore.at(-1)?.seq ?? 0), [])).map(({ change: { product, operation, keys, changedFields } }) => ({ product, operation, keys, changedFields }));
    const movedInvoices = (before.invoices as { id: string; order_id: string }[]).filter(({ order_id }) => order_id === moved.id).map(({ id }) => id);
    expect(movedInvoices.length).toBeGreaterThan(0);
    expect(made).toEqual([
      { product: 'finance.orders', operation: 'upsert', keys: [corrected.order_id], changedFields: ['total'] },
      { product: 'finance.orders', operation: 'upsert', keys: [moved.id], changedFields: [] },
      { product: 'finance.invoices', operation: 'upsert', keys: movedInvoices.sort(), changedFields: [] },
    ]);

    for (const domain of domains) {
      if (domain !== finance) expect((await load(domain, url(domain.name))).incremental?.increments).toHaveLength(3);
      expect((await load(domain, rebuilt(domain.name))).built).toBe(true);
      const merged = await tablesOf(url(domain.name), domain);
      const full = await tablesOf(rebuilt(domain.name), domain);
      for (const table of domain.tables) expect(merged[table.name], `${domain.name}.${table.name}`).toEqual(full[table.name]);
      // The profiles the merges kept up to date (from their counts and the changed rows' before-images) are the full load's:
      // rows, null shares, bounds, lengths and means (distinct counts are counted at full loads only).
      const measured = (profiles: Awaited<ReturnType<typeof profilesAt>>) =>
        profiles.map(({ product, rows, columns }) => ({ product, rows, columns: columns.map(({ column, nullShare, min, max, minLength, maxLength, mean, filledCount }) => ({ column, nullShare, min, max, minLength, maxLength, mean: mean === null ? null : Number(mean.toPrecision(9)), filledCount })) }));
      expect(measured(await profilesAt(url(domain.name))), domain.name).toEqual(measured(await profilesAt(rebuilt(domain.name))));
    }
    // The sales kept per product and region are the lines' own sums, the removed line's product included.
    const kept = (await tablesOf(url('finance'), finance)).product_sales;
    const summed = await readWarehouseAt(
      url('finance'),
      async (db) =>
        (await sql`select l.sku, o.region, cast(sum(l.quantity) as integer) as units, sum(l.net_amount) as revenue from order_lines as l join orders as o on o.id = l.order_id
          where o.status in ('PAID', 'SHIPPED', 'DELIVERED') group by l.sku, o.region order by l.sku, o.region`.execute(db)).rows,
      [] as unknown[],
    );
    expect(kept).toEqual(summed);
    expect((kept as { sku: string }[]).some(({ sku }) => sku === corrected.sku)).toBe(true);
    const after = await tablesOf(url('finance'), finance);
    expect(after.orders!.length).toBe(before.orders!.length + 40 + inserted - deleted);
    // The served totals are the lines' (derived on the changed rows only).
    const warehouse = openWarehouse(url('finance'));
    try {
      const wrong = await sql<{ n: number }>`select count(*) as n from orders o where total_amount <> coalesce((select sum(net_amount) from order_lines l where l.order_id = o.id), 0)`.execute(warehouse.db as Kysely<unknown>);
      expect(Number(wrong.rows[0]!.n)).toBe(0);
      expect((await appliedIncrements(warehouse.db as Kysely<any>)).map(({ name }) => name)).toHaveLength(4);
    } finally {
      await warehouse.close();
    }
  });

  it('rejects an increment that fails a quality rule, keeps it aside, and serves the version before', async () => {
    const before = await tablesOf(url('finance'), finance);
    const order = (before.orders as { id: string; customer_id: string; ordered_at: string; channel: string; region: string }[])[0]!;
    const bad = join(raw(), 'finance', 'increments', '20261207T120000Z-000005');
    await mkdir(bad, { recursive: true });
    await writeFile(join(bad, 'orders.csv'), `id,customer_id,ordered_at,status,channel,region\n${order.id},${order.customer_id},2026-12-07 11:00:00,LOST,${order.channel},${order.region}\n`);
    const rejected = await load(finance, url('finance'));
    expect(rejected.built).toBe(false);
    expect(rejected.quality?.results.find((result) => result.check === 'status_known')).toMatchObject({ outcome: 'fail', value: 1, sampleKeys: [order.id] });
    // In the product's quality history, as a rejected load's run is.
    expect((await qualityHistoryAt(url('finance'))).find((run) => run.runId === rejected.quality!.runId)).toMatchObject({ outcome: 'rejected' });
    expect(await tablesOf(url('finance'), finance)).toEqual(before);
    // Kept aside with the increment's rows.
    const kept = openWarehouse(dialect === 'duckdb' ? `duckdb:${rejected.rejectedKeptAt}` : warehouses.url('postgres', rejected.rejectedKeptAt!));
    try {
      expect((await sql<{ id: string; status: string }>`select id, status from _increment_orders`.execute(kept.db)).rows).toEqual([{ id: order.id, status: 'LOST' }]);
    } finally {
      await kept.close();
    }
    // Until it is taken away, it stays rejected.
    expect((await load(finance, url('finance'))).rejectedKeptAt).toBeDefined();
    // An order deleted while its invoice stays: the invoice, which the increment did not change, is orphaned.
    const invoiced = (before.invoices as { id: string; order_id: string }[]).at(-1)!;
    await writeFile(join(bad, 'orders.csv'), `id,customer_id,ordered_at,status,channel,region,_deleted\n${invoiced.order_id},,,,,,true\n`);
    const orphaning = await load(finance, url('finance'));
    expect(orphaning.rejectedKeptAt).toBeDefined();
    expect(orphaning.quality?.results.find((result) => result.check === 'order_exists')).toMatchObject({ outcome: 'fail', value: 1, sampleKeys: [invoiced.id] });
    expect(await tablesOf(url('finance'), finance)).toEqual(before);
    await rm(bad, { recursive: true });
    await deliver(13);
    expect((await load(finance, url('finance'))).incremental?.increments).toEqual([expect.stringMatching(/^20261207T130000Z-/)]);
  });

  it('fails a load on an increment it cannot read, changing nothing', async () => {
    const before = await tablesOf(url('finance'), finance);
    const broken = join(raw(), 'finance', 'increments', '20261207T140000Z-000007');
    await mkdir(broken, { recursive: true });
    await writeFile(join(broken, 'orders.csv'), 'id,customer_id,status\nO99999999,C0000001,PAID\n');
    let build = await ensureWarehouse({ domain: finance, url: url('finance'), rawDir: join(raw(), 'finance'), sourceFingerprint: fingerprint, sourceExtractedAt: extractedAt });
    expect(build.loadError).toMatch(/orders\.csv must have the columns .*missing ordered_at, channel, region/);
    await writeFile(join(broken, 'orders.csv'), 'id,customer_id,ordered_at,status,channel,region,"; drop table orders; --"\n');
    build = await ensureWarehouse({ domain: finance, url: url('finance'), rawDir: join(raw(), 'finance'), sourceFingerprint: fingerprint, sourceExtractedAt: extractedAt });
    expect(build.loadError).toMatch(/unknown ; drop table orders; --/);
    await rm(join(broken, 'orders.csv'));
    await writeFile(join(broken, 'notes.txt'), 'hello');
    build = await ensureWarehouse({ domain: finance, url: url('finance'), rawDir: join(raw(), 'finance'), sourceFingerprint: fingerprint, sourceExtractedAt: extractedAt });
    expect(build.loadError).toMatch(/holds "notes\.txt", which is no table's file/);
    await rm(broken, { recursive: true });
    // A delivery named before the watermark (a producer's clock behind): refused, not passed over.
    const late = join(raw(), 'finance', 'increments', '20261207T070000Z-000001');
    await mkdir(late, { recursive: true });
    await writeFile(join(late, 'orders.csv'), 'id,customer_id,ordered_at,status,channel,region\n');
    build = await ensureWarehouse({ domain: finance, url: url('finance'), rawDir: join(raw(), 'finance'), sourceFingerprint: fingerprint, sourceExtractedAt: extractedAt });
    expect(build.loadError).toMatch(/^Increment 20261207T070000Z-000001 arrived after 20261207T130000Z-\d+, the serving version's watermark, was merged: it would be passed over\. Deliver it again under a name after /);
    await rm(late, { recursive: true });
    expect(await tablesOf(url('finance'), finance)).toEqual(before);
  });

  it('shows readers during a merge the version before or the version after, never a mix', async () => {
    const totals = async () => {
      const warehouse = openWarehouse(url('finance'));
      try {
        const row = (await sql<{ orders: number; lines: number; total: number }>`select (select count(*) from orders) as orders, (select count(*) from order_lines) as lines, (select sum(total_amount) from orders) as total`.execute(warehouse.db as Kysely<unknown>)).rows[0]!;
        return `${row.orders}/${row.lines}/${row.total}`;
      } finally {
        await warehouse.close();
      }
    };
    const before = await totals();
    await deliver(15, 200);
    let merging = true;
    const seen = new Set<string>();
    const reading = (async () => {
      while (merging) seen.add(await totals());
    })();
    const merged = await load(finance, url('finance'));
    merging = false;
    await reading;
    const after = await totals();
    expect(merged.built).toBe(true);
    expect(after).not.toBe(before);
    expect([...seen].filter((value) => value !== before && value !== after)).toEqual([]);
    expect(seen.size).toBeGreaterThan(0);
  });
});
