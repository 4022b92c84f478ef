/**
 * A data product fed incrementally from a PostgreSQL table past a watermark (issue 26, part 2), on
 * each warehouse dialect: the first run extracts the table's rows as the full file; then inserts,
 * updates and soft deletes at the source arrive as an increment (deletes as tombstones) and are
 * merged by key; the served rows are, row for row, the source's rows not deleted, and a full rebuild
 * of the same files gives the same. The source is read in a read-only snapshot; a source that is not
 * configured, or names what is not an identifier, fails the run and changes nothing.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Domain } from '../subgraphs/kit/domain.js';
import type { PostgresSource } from '../subgraphs/kit/pipelines/runner.js';
import { ensureWarehouse } from '../subgraphs/kit/warehouse/build.js';
import { DIALECTS } from '../subgraphs/kit/warehouse/dialects.js';
import { extractSources } from '../subgraphs/kit/warehouse/extract.js';
import { openWarehouse } from '../subgraphs/kit/warehouse/open.js';
import { shipping } from './fixtures/outside-domain/index.js';
import { onPostgres, TEST_POSTGRES } from './harness/postgres.js';

const suffix = `${process.pid}_${randomUUID().slice(0, 8)}`;
const sourceDb = `source_test_${suffix}`;
const warehouseDb = `source_warehouse_${suffix}`;
const sourceUrl = `${TEST_POSTGRES}/${sourceDb}`;
let dir: string;
let source: pg.Client;

/** The shipping domain, its product fed from `wms.shipments` (whose key column is `shipment_id`). */
function fedFrom(declared: Partial<PostgresSource> = {}): Domain<any, any> {
  const [product] = shipping.dataProducts;
  const fed = Object.assign(Object.create(Object.getPrototypeOf(product)), product, {
    spec: { ...product!.spec, pipeline: { source: { urlEnv: 'SHIPPING_SOURCE_URL', table: 'wms.shipments', watermark: 'updated_at', deletedWhen: 'deleted_at', columns: { id: 'shipment_id' }, ...declared } } },
  });
  return { ...shipping, dataProducts: [fed] } as Domain<any, any>;
}
const env = { SHIPPING_SOURCE_URL: sourceUrl };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'postgres-source-'));
  await onPostgres(`CREATE DATABASE ${sourceDb}`);
  await onPostgres(`CREATE DATABASE ${warehouseDb}`);
  source = new pg.Client({ connectionString: sourceUrl });
  await source.connect();
  await source.query(`CREATE SCHEMA wms;
    CREATE TABLE wms.shipments (shipment_id text PRIMARY KEY, carrier text NOT NULL, recipient_email text NOT NULL, weight_kg numeric(8, 2) NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT clock_timestamp(), deleted_at timestamptz);
    INSERT INTO wms.shipments (shipment_id, carrier, recipient_email, weight_kg) SELECT 'S' || i, 'Parcelo', 'r' || i || '@example.com', i * 1.5 FROM generate_series(1, 5) i;`);
});

afterAll(async () => {
  await source.end();
  await onPostgres(`DROP DATABASE IF EXISTS ${sourceDb} WITH (FORCE)`);
  await onPostgres(`DROP DATABASE IF EXISTS ${warehouseDb} WITH (FORCE)`);
  await rm(dir, { recursive: true, force: true });
});

const urls = {
  duckdb: (name: string) => `duckdb:${join(dir, `${name}.duckdb`)}`,
  postgres: (name: string) => `${TEST_POSTGRES}/${warehouseDb}?schema=${name}`,
};

async function served(url: string): Promise<unknown[]> {
  const warehouse = openWarehouse(url);
  try {
    return (await sql`select id, carrier, recipient_email, weight_kg from shipments order by id`.execute(warehouse.db as Kysely<unknown>)).rows;
  } finally {
    await warehouse.close();
  }
}

/** The source's rows not deleted, as the warehouse serves them. */
async function atSource(): Promise<unknown[]> {
  const { rows } = await source.query(`SELECT shipment_id AS id, carrier, recipient_email, weight_kg::float8 AS weight_kg FROM wms.shipments WHERE deleted_at IS NULL ORDER BY shipment_id COLLATE "C"`);
  return rows;
}

describe.each(DIALECTS.map((adapter) => adapter.dialect))('into a %s warehouse', (dialect) => {
  const raw = () => join(dir, `raw-${dialect}`);
  const load = (url: string, force = false) => ensureWarehouse({ domain: fedFrom(), url, rawDir: raw(), sourceFingerprint: 'source', force });

  it('extracts the table, then what changed past the watermark, and serves the source\'s rows', async () => {
    const url = urls[dialect]('shipping');
    expect(await extractSources(fedFrom(), raw(), env)).toEqual([{ table: 'shipments', kind: 'full', rows: expect.any(Number), watermark: expect.any(String) }]);
    expect((await load(url)).built).toBe(true);
    expect(await served(url)).toEqual(await atSource());

    // Two new, one changed, one deleted (softly), and one both changed and deleted.
    await source.query(`INSERT INTO wms.shipments (shipment_id, carrier, recipient_email, weight_kg) VALUES ('S${dialect}-new1', 'Swiftly', 'n1@example.com', 2), ('S${dialect}-new2', 'Boxr', 'n2@example.com', 3)`);
    const [changed, deleted] = ((await source.query(`SELECT shipment_id FROM wms.shipments WHERE deleted_at IS NULL ORDER BY shipment_id LIMIT 2`)).rows as { shipment_id: string }[]).map((row) => row.shipment_id);
    await source.query(`UPDATE wms.shipments SET carrier = 'Rapido', updated_at = clock_timestamp() WHERE shipment_id = $1`, [changed]);
    await source.query(`UPDATE wms.shipments SET deleted_at = clock_timestamp(), updated_at = clock_timestamp() WHERE shipment_id = $1`, [deleted]);
    const [increment] = await extractSources(fedFrom(), raw(), env);
    expect(increment).toMatchObject({ table: 'shipments', kind: 'increment', rows: 4 });
    const merged = await load(url);
    expect(merged.incremental?.changes.shipments).toEqual({ inserted: 2, updated: 1, deleted: 1 });
    expect(await served(url)).toEqual(await atSource());
    // Nothing new: nothing extracted, nothing loaded.
    expect((await extractSources(fedFrom(), raw(), env))[0]).toMatchObject({ kind: 'nothing', rows: 0 });
    expect((await load(url)).built).toBe(false);
    // A full rebuild of the same files serves the same rows.
    const rebuilt = urls[dialect]('rebuilt');
    expect((await load(rebuilt, true)).built).toBe(true);
    expect(await served(rebuilt)).toEqual(await served(url));
    expect((await readdir(join(raw(), 'increments'))).filter((name) => !name.startsWith('.'))).toHaveLength(1);
  });

  it('fails a run whose source is not configured or names what is not an identifier, changing nothing', async () => {
    const url = urls[dialect]('shipping');
    const before = await served(url);
    await expect(extractSources(fedFrom(), raw(), {})).rejects.toThrow('shipping.shipments reads its source from SHIPPING_SOURCE_URL, which is not set.');
    await expect(extractSources(fedFrom({ table: 'wms.shipments; DROP TABLE wms.shipments' }), raw(), env)).rejects.toThrow(/is not a plain identifier/);
    await expect(extractSources(fedFrom({ watermark: 'updated_at) OR (true' }), raw(), env)).rejects.toThrow(/is not a plain identifier/);
    await expect(extractSources(fedFrom({ urlEnv: 'NOWHERE' }), raw(), { NOWHERE: 'postgres://postgres@127.0.0.1:1/none' })).rejects.toThrow(/could not be reached/);
    expect((await source.query('SELECT count(*)::int AS n FROM wms.shipments')).rows[0].n).toBeGreaterThan(5);
    expect(await served(url)).toEqual(before);
  });
});
