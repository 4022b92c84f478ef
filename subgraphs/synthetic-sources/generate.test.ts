import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDuckDbWarehouse } from '../kit/warehouse/duckdb.js';
import type { Warehouse } from '../kit/warehouse/warehouse.js';
import { generateSourceData, lineNetCents } from './generate.js';
import type { RawManifest } from './manifest.js';
import { ensureSourceData } from './source-data.js';

let dir: string;
let manifest: RawManifest;
let duck: Warehouse<unknown>;

async function digest(rawDir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const domain of ['customers', 'products', 'finance']) {
    for (const file of (await readdir(join(rawDir, domain))).sort()) {
      out[`${domain}/${file}`] = createHash('sha256').update(await readFile(join(rawDir, domain, file))).digest('hex');
    }
  }
  return out;
}

/** Runs SQL over the generated CSV files (`{customers}` stands for read_csv of that file). */
async function query<R = Record<string, any>>(text: string): Promise<R[]> {
  const expanded = text.replace(/\{(\w+)\/(\w+)\}/g, (_m, domain, table) => `read_csv('${join(dir, 'a', domain, `${table}.csv`)}', header = true)`);
  return (await sql.raw(expanded).execute(duck.db)).rows as R[];
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'generator-'));
  manifest = await generateSourceData({ rawDir: join(dir, 'a'), scale: 0.05, seed: 7 });
  duck = openDuckDbWarehouse({ file: ':memory:', readOnly: false });
});

afterAll(async () => {
  await duck?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('the synthetic data generator', () => {
  it('is deterministic: the same seed and scale give identical files, another seed other files', async () => {
    await generateSourceData({ rawDir: join(dir, 'b'), scale: 0.05, seed: 7 });
    await generateSourceData({ rawDir: join(dir, 'c'), scale: 0.05, seed: 8 });
    const a = await digest(join(dir, 'a'));
    expect(await digest(join(dir, 'b'))).toEqual(a);
    const c = await digest(join(dir, 'c'));
    expect(c['customers/customers.csv']).not.toBe(a['customers/customers.csv']);
    expect(c['finance/orders.csv']).not.toBe(a['finance/orders.csv']);
  });

  it('scales: 1 is 10k customers, 1k products and 100k orders, so 0.05 is a twentieth', () => {
    expect(manifest.rows).toMatchObject({
      'customers/customers': 500,
      'products/products': 50,
      'products/categories': 20,
      'finance/orders': 5000,
    });
    // about 2.5 lines per order: scale 5 passes a million order lines
    expect(manifest.rows['finance/order_lines']! / 5000).toBeGreaterThan(2.2);
  });

  it('reuses a data set with the same fingerprint and regenerates on a change', async () => {
    const reused = await ensureSourceData({ rawDir: join(dir, 'a'), scale: 0.05, seed: 7 });
    expect(reused.generated).toBe(false);
    const changed = await ensureSourceData({ rawDir: join(dir, 'b'), scale: 0.06, seed: 7 });
    expect(changed.generated).toBe(true);
    expect(changed.manifest.rows['customers/customers']).toBe(600);
  });

  it('writes realistic customers: unique emails, international phones, adult birth dates, known countries', async () => {
    const [stats] = await query(`select count(*) as n, count(distinct email) as emails,
        count(*) filter (where regexp_matches(email, '^[^@\\s]+@[a-z0-9.-]+\\.[a-z]{2,}$')) as valid_emails,
        count(*) filter (where regexp_matches(phone, '^\\+[0-9]{8,15}$')) as valid_phones,
        min(birth_date) as oldest, max(birth_date) as youngest, count(distinct country) as countries,
        count(distinct region) as regions, min(signup_date) as first_signup
      from {customers/customers}`);
    expect(stats).toMatchObject({ n: 500, emails: 500, valid_emails: 500, valid_phones: 500, regions: 3 });
    expect(stats!.countries).toBeGreaterThan(10);
    expect(stats!.youngest < '2007-12-31').toBe(true);
    expect(stats!.oldest > '1920-01-01').toBe(true);
    const [addresses] = await query(`select count(*) filter (where kind = 'BILLING') as billing, count(distinct customer_id) as customers
      from {customers/addresses}`);
    expect(addresses).toEqual({ billing: 500, customers: 500 });
  });

  it('writes orders over several years with skewed customers and products', async () => {
    const [span] = await query(`select min(ordered_at) as first, max(ordered_at) as last from {finance/orders}`);
    expect(String(span!.first) < '2021-03-01').toBe(true);
    expect(String(span!.last) > '2025-10-01').toBe(true);
    // Heavy tails: the top tenth of buyers place far more than a tenth of the orders.
    const [buyers] = await query(`with per as (select customer_id, count(*) as n from {finance/orders} group by 1),
        ranked as (select n, row_number() over (order by n desc) as r, count(*) over () as total from per)
      select sum(n) filter (where r <= total / 10) * 1.0 / sum(n) as top_share from ranked`);
    expect(buyers!.top_share).toBeGreaterThan(0.3);
    const [products] = await query(`with per as (select sku, sum(quantity) as n from {finance/order_lines} group by 1),
        ranked as (select n, row_number() over (order by n desc) as r, count(*) over () as total from per)
      select sum(n) filter (where r <= total / 10) * 1.0 / sum(n) as top_share from ranked`);
    expect(products!.top_share).toBeGreaterThan(0.3);
    // Busier Novembers and Decembers than Januaries and Februaries.
    const [season] = await query(`select count(*) filter (where month(ordered_at) in (11, 12)) as holidays,
        count(*) filter (where month(ordered_at) in (1, 2)) as winter from {finance/orders}`);
    expect(season!.holidays).toBeGreaterThan(season!.winter * 1.3);
  });

  // Money columns are read as the warehouse types them (exact decimals), not as read_csv guesses (doubles).
  it('keeps the books consistent: orders after sign-up, products launched before sale, invoices equal to their lines', async () => {
    const [violations] = await query(`select
        (select count(*) from {finance/orders} o join {customers/customers} c on c.id = o.customer_id
          where o.ordered_at::date < c.signup_date) as before_signup,
        (select count(*) from {finance/orders} o where o.customer_id not in (select id from {customers/customers})) as orphan_orders,
        (select count(*) from {finance/order_lines} l where l.sku not in (select sku from {products/products})) as unknown_skus,
        (select count(*) from {finance/order_lines} l join {finance/orders} o on o.id = l.order_id
          join {products/products} p on p.sku = l.sku where p.launch_date > o.ordered_at::date) as before_launch,
        (select count(*) from {finance/orders} o where not exists (select 1 from {finance/order_lines} l where l.order_id = o.id)) as empty_orders,
        (select count(*) from (select i.id, i.amount::decimal(14, 2) as amount,
            sum(round(l.quantity * l.unit_price::decimal(10, 2) * (1 - l.discount::decimal(4, 3)), 2)) as lines
          from {finance/invoices} i join {finance/order_lines} l on l.order_id = i.order_id group by i.id, i.amount)
          where amount <> lines) as invoice_mismatches,
        (select count(*) from (select i.id, i.amount::decimal(14, 2) as amount, sum(p.amount::decimal(14, 2)) as paid from {finance/invoices} i
          join {finance/payments} p on p.invoice_id = i.id group by i.id, i.amount) where paid <> amount) as payment_mismatches`);
    expect(violations).toEqual({
      before_signup: 0,
      orphan_orders: 0,
      unknown_skus: 0,
      before_launch: 0,
      empty_orders: 0,
      invoice_mismatches: 0,
      payment_mismatches: 0,
    });
  });

  it('rounds line amounts half up to the cent, as the warehouse does', () => {
    expect(lineNetCents(3, 1999, 150)).toBe(5097); // 3 × 19.99 × 0.85 = 50.9745
    expect(lineNetCents(1, 1001, 500)).toBe(501); // 5.005 rounds up
    expect(lineNetCents(2, 1000, 0)).toBe(2000);
  });
});
