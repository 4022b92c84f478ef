/**
 * Building a domain's warehouse (a DuckDB file or a PostgreSQL schema) from its raw files, once: a warehouse records which raw data set
 * and which version of the domain's ingestion built it, and is reused while both are current.
 */
import { sql } from 'kysely';
import type { Domain } from '../domain.js';
import { openWarehouse } from './open.js';
import { adapterOf } from './dialects.js';
import { parseWarehouseUrl, type Warehouse } from './warehouse.js';

export interface EnsureWarehouseOptions {
  // Any domain: its own table types do not matter here.
  readonly domain: Domain<any, any>;
  readonly url: string;
  /** The domain's raw folder. */
  readonly rawDir: string;
  /** The raw data set's fingerprint (from its manifest). */
  readonly sourceFingerprint: string;
}

export interface WarehouseBuild {
  /** False when an existing, current warehouse was kept. */
  readonly built: boolean;
  /** Rows loaded per table, when built. */
  readonly rows?: Record<string, number>;
}

const BUILD_TABLE = '_warehouse_build';

function buildKeyOf(options: EnsureWarehouseOptions): string {
  return `${options.domain.name}@${options.domain.warehouseVersion}:${options.sourceFingerprint}`;
}

async function currentBuildKey(url: string): Promise<string | null> {
  const warehouse = openWarehouse<Record<string, { build_key: string }>>(url, { readOnly: true });
  try {
    const row = await warehouse.db.selectFrom(BUILD_TABLE).select('build_key').executeTakeFirst();
    return row?.build_key ?? null;
  } catch {
    return null; // not a warehouse this platform built, or a damaged one: rebuild
  } finally {
    await warehouse.close();
  }
}

/** Runs the domain's ingestion into a staging warehouse, records what built it, and closes it. */
async function ingestInto(warehouse: Warehouse<unknown>, options: EnsureWarehouseOptions, buildKey: string): Promise<Record<string, number>> {
  try {
    const rows = await options.domain.ingest({ warehouse, rawDir: options.rawDir });
    await sql`CREATE TABLE ${sql.table(BUILD_TABLE)} (build_key VARCHAR NOT NULL, built_at TIMESTAMP NOT NULL)`.execute(warehouse.db);
    await sql`INSERT INTO ${sql.table(BUILD_TABLE)} VALUES (${buildKey}, now()::TIMESTAMP)`.execute(warehouse.db);
    return rows;
  } finally {
    await warehouse.close();
  }
}

/** Builds the domain's warehouse unless the existing one was built from the same data and version. */
export async function ensureWarehouse(options: EnsureWarehouseOptions): Promise<WarehouseBuild> {
  const { adapter, location } = adapterOf(parseWarehouseUrl(options.url));
  const buildKey = buildKeyOf(options);
  if (adapter.mayExist(location) && (await currentBuildKey(options.url)) === buildKey) return { built: false };
  // Built beside the serving warehouse and swapped in: readers never see half a warehouse.
  const rows = await adapter.buildAndSwap(location, (staging) => ingestInto(staging, options, buildKey));
  return { built: true, rows };
}
