/**
 * Building a domain's warehouse (a DuckDB file or a PostgreSQL schema) from its raw files, once: a warehouse records which raw data set
 * and which version of the domain's ingestion built it, and is reused while both are current.
 */
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { sql } from 'kysely';
import type { Domain } from '../domain.js';
import { openWarehouse } from './open.js';
import { openPostgresWarehouse } from './postgres.js';
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
  const location = parseWarehouseUrl(options.url);
  const buildKey = buildKeyOf(options);
  const existing = location.dialect === 'postgres' || existsSync(location.file);
  if (existing && (await currentBuildKey(options.url)) === buildKey) return { built: false };
  return location.dialect === 'duckdb'
    ? buildDuckDb(options, location.file, buildKey)
    : buildPostgres(options, location.connectionString, location.schema, buildKey);
}

/** Built beside the target file and renamed into place: readers never see half a warehouse. */
async function buildDuckDb(options: EnsureWarehouseOptions, file: string, buildKey: string): Promise<WarehouseBuild> {
  const staging = `${file}.building`;
  await mkdir(dirname(file), { recursive: true });
  await rm(staging, { force: true });
  await rm(`${staging}.wal`, { force: true });
  const rows = await ingestInto(openWarehouse(`duckdb:${staging}`, { readOnly: false }), options, buildKey);
  await rm(`${file}.wal`, { force: true });
  await rename(staging, file);
  return { built: true, rows };
}

/** Built in a staging schema and swapped in by one transaction: readers never see half a warehouse. */
async function buildPostgres(
  options: EnsureWarehouseOptions,
  connectionString: string,
  schema: string,
  buildKey: string,
): Promise<WarehouseBuild> {
  const staging = `${schema}__building`;
  const admin = openPostgresWarehouse({ connectionString, schema: 'public', poolSize: 1, readOnly: false });
  try {
    await sql`DROP SCHEMA IF EXISTS ${sql.id(staging)} CASCADE`.execute(admin.db);
    await sql`CREATE SCHEMA ${sql.id(staging)}`.execute(admin.db);
    const staged = openPostgresWarehouse({ connectionString, schema: staging, statementTimeoutMs: 10 * 60_000, readOnly: false });
    const rows = await ingestInto(staged, options, buildKey);
    await admin.db.transaction().execute(async (trx) => {
      await sql`DROP SCHEMA IF EXISTS ${sql.id(schema)} CASCADE`.execute(trx);
      await sql`ALTER SCHEMA ${sql.id(staging)} RENAME TO ${sql.id(schema)}`.execute(trx);
    });
    return { built: true, rows };
  } finally {
    await admin.close();
  }
}
