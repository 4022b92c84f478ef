/**
 * Incremental loads (issue 26, part 2), on each warehouse dialect: the live synthetic sources
 * deliver increments (new orders with lines and invoices, orders moving on, withdrawn orders as
 * tombstones, changed customers and products); each domain's serving version merges them by key,
 * and its tables then hold, row for row, what a full rebuild of the same files holds. An increment
 * failing a quality rule is rejected, kept aside, and the serving version stays; a broken increment
 * fails the load and changes nothing; readers during a merge see the old version or the new one.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { customers } from '../subgraphs/customers/index.js';
import { finance } from '../subgraphs/finance/index.js';
import { products } from '../subgraphs/products/index.js';
import type { Domain } from '../subgraphs/kit/domain.js';
import { ensureWarehouse } from '../subgraphs/kit/warehouse/build.js';
import { DIALECTS } from '../subgraphs/kit/warehouse/dialects.js';
import { appliedIncrements } from '../subgraphs/kit/warehouse/increments.js';
import { openWarehouse } from '../subgraphs/kit/warehouse/open.js';
import { generateSourceData } from '../subgraphs/synthetic-sources/generate.js';
import { deliverIncrement } from '../subgraphs/synthetic-sources/live.js';
import { onPostgres, TEST_POSTGRES } from './harness/postgres.js';

const domains = [customers, products, finance] as readonly Domain<any, any>[];
let dir: string;
let fingerprint: string;
let extractedAt: string;
const database = `incremental_test_${process.pid}_${randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'incremental-'));
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
  const url = (name: string) => urls[dialect](`serving_${name}`);
  const rebuilt = (name: string) => urls[dialect](`rebuilt_${name}`);
  const raw = () => join(dir, `raw-${dialect}`);
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
    const before = await tablesOf(url('finance'), finance);
    // Three deliveries; the second and third merged together.
    await deliver(8);
    const first = await load(finance, url('finance'));
    expect(first.built).toBe(true);
    expect(first.incremental?.increments).toHaveLength(1);
    expect(first.incremental?.changes.orders).toEqual({ inserted: 40, updated: 0, deleted: 0 });
    expect(first.quality?.outcome).toBe('passed');
    for (const hour of [9, 10]) await deliver(hour);
    const later = await load(finance, url('finance'));
    expect(later.incremental?.increments).toHaveLength(2);
    const { inserted, updated, deleted } = later.incremental!.changes.orders!;
    expect(updated).toBeGreaterThan(0); // live orders moved on
    expect(inserted + updated).toBeGreaterThan(40);
    // Nothing more delivered: nothing to do.
    expect((await load(finance, url('finance'))).built).toBe(false);

    for (const domain of domains) {
      if (domain !== finance) expect((await load(domain, url(domain.name))).incremental?.increments).toHaveLength(3);
      expect((await load(domain, rebuilt(domain.name))).built).toBe(true);
      const merged = await tablesOf(url(domain.name), domain);
      const full = await tablesOf(rebuilt(domain.name), domain);
      for (const table of domain.tables) expect(merged[table.name], `${domain.name}.${table.name}`).toEqual(full[table.name]);
    }
    const after = await tablesOf(url('finance'), finance);
    expect(after.orders!.length).toBe(before.orders!.length + 40 + inserted - deleted);
    // The served totals are the lines' (derived on the changed rows only).
    const warehouse = openWarehouse(url('finance'));
    try {
      const wrong = await sql<{ n: number }>`select count(*) as n from orders o where total_amount <> coalesce((select sum(net_amount) from order_lines l where l.order_id = o.id), 0)`.execute(warehouse.db as Kysely<unknown>);
      expect(Number(wrong.rows[0]!.n)).toBe(0);
      expect((await appliedIncrements(warehouse.db as Kysely<any>)).map(({ name }) => name)).toHaveLength(3);
    } finally {
      await warehouse.close();
    }
  });
});
