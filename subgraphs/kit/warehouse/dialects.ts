/**
 * What the kit knows of each warehouse dialect, in one object per dialect and one list
 * (`DIALECTS`) that the adapter contract tests loop over: how a warehouse is opened, whether one may
 * already be there, how a new one is built beside the serving one and swapped in, how a text column
 * is declared, the SQL fragments whose spelling is the dialect's (case-insensitive match, time
 * truncation), and which failures mean the warehouse cannot answer. Adding a dialect is adding an
 * object here (and its adapter, and its fixture in the contract tests).
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { sql, type ColumnDefinitionBuilder, type Kysely, type Expression, type RawBuilder, type SqlBool } from 'kysely';
import { openDuckDbWarehouse } from './duckdb.js';
import { changedTableOf, stagedTableOf } from './staging-names.js';
import { openPostgresWarehouse } from './postgres.js';
import type { Warehouse, WarehouseDialect, WarehouseLocation } from './warehouse.js';

type LocationOf<D extends WarehouseDialect> = Extract<WarehouseLocation, { dialect: D }>;
export type Failure = 'unavailable' | 'timeout';

/** A calendar unit a time is truncated to (weeks start on Monday, in UTC). */
export type TimeUnit = 'day' | 'week' | 'month' | 'quarter' | 'year';

/** The SQL fragments a dialect spells its own way; queries ask the warehouse's dialect for them. */
export interface DialectSql {
  /** `column` matches a LIKE pattern whatever the case; `\\` escapes `%`, `_` and itself in the pattern. */
  matchesIgnoringCase(column: string, pattern: string): RawBuilder<SqlBool>;
  /** The start of the `unit` holding a timestamp, as a timestamp. */
  truncateTime(unit: TimeUnit, timestamp: Expression<unknown>): RawBuilder<string>;
  /** The whole of `column`'s text matches a regular expression (a data quality rule's pattern). */
  matchesPattern(column: string, pattern: string): RawBuilder<SqlBool>;
  /**
   * `column` holds one of `values` (at least one), for a column of few distinct values that most
   * rows pass: a row policy's regions, the statuses that count as revenue. Keys and ids keep
   * `IN`, whose pushdown into the scan finds a few rows fast.
   */
  isOneOfCategories(column: string, values: readonly (string | number)[]): RawBuilder<SqlBool>;
}

/**
 * A build that ran to its end but must not replace the serving warehouse (a data quality gate
 * failed): the adapter keeps the built warehouse aside for inspection, at `keptAt`, instead of
 * dropping it.
 */
export class RejectedBuildError extends Error {
  override name = 'RejectedBuildError';
  /** Where the rejected build was kept (a file, or a schema). */
  keptAt: string | null = null;
}

export interface DialectAdapter<D extends WarehouseDialect = WarehouseDialect> {
  readonly dialect: D;
  /** Opens the warehouse at a location (read-only for serving). */
  open<DB>(location: LocationOf<D>, readOnly: boolean): Warehouse<DB>;
  /** Whether a warehouse may already be there (to be reused if it is current). */
  mayExist(location: LocationOf<D>): boolean;
  /**
   * Builds a new warehouse beside the serving one with `ingest` (which closes what it is given),
   * then swaps it in at once: readers never see half a warehouse. When `ingest` rejects its build
   * (`RejectedBuildError`), the build is kept aside (the last rejected one only) and the serving
   * warehouse stays.
   */
  buildAndSwap(location: LocationOf<D>, ingest: (staging: Warehouse<unknown>) => Promise<Record<string, number>>): Promise<Record<string, number>>;
  /**
   * Changes the serving warehouse with `merge` (an incremental load) and swaps the change in at
   * once: `merge` runs its changes in one transaction on a writable warehouse that readers do not
   * see until it is swapped in (DuckDB: a copy of the serving file, renamed into place; PostgreSQL:
   * the serving schema, whose readers see the transaction once it commits). When `merge` rejects
   * its change (`RejectedBuildError`), what it staged is kept aside at the rejected location, and
   * the serving warehouse stays; when it fails, or the process dies, it stays too.
   */
  mergeAndSwap<T>(location: LocationOf<D>, merge: (target: Warehouse<unknown>) => Promise<T>): Promise<T>;
  /** Where a rejected build is kept aside (the last one only). */
  rejectedLocation(location: LocationOf<D>): LocationOf<D>;
  /** DDL of a text column: text sorts by code point on every dialect (DuckDB's order), whatever the locale. */
  textColumn(column: ColumnDefinitionBuilder): ColumnDefinitionBuilder;
  /**
   * A loaded table with more rows than this gets no key constraint and no secondary index (its key
   * stays checked not null and unique by every load's quality gate): an index this dialect builds
   * in memory whatever its memory limit would make a load's memory grow with its file.
   */
  readonly indexedRowsMax: number;
  /**
   * Makes the serving version's tables readable from a new version being built (a full load
   * compares them for its change events): `table` names one; `detach` ends it.
   */
  attachServing(db: Kysely<any>, serving: LocationOf<D>): Promise<{ table(name: string): RawBuilder<unknown>; detach(): Promise<void> }>;
  /** Gathers the planner's statistics of tables a load just filled (their changed keys' joins are planned by them). */
  analyze(db: Kysely<any>, tables: readonly string[]): Promise<void>;
  readonly sql: DialectSql;
  /** Whether an error means the warehouse cannot answer (down, unreachable, too slow), not a faulty query. */
  failureOf(error: { code?: unknown; message: string }): Failure | null;
}

/** A DuckDB build's memory: what a load holds besides its keys' indexes, whatever its file's size (test/scaffold.bench.ts). */
const BUILD_MEMORY_LIMIT = '256MB';

export const duckdbDialect: DialectAdapter<'duckdb'> = {
  dialect: 'duckdb',
  open: (location, readOnly) => openDuckDbWarehouse({ file: location.file, readOnly }),
  mayExist: (location) => existsSync(location.file),
  // Built beside the target file and renamed into place.
  async buildAndSwap(location, ingest) {
    const { file } = location;
    const staging = `${file}.building`;
    await mkdir(dirname(file), { recursive: true });
    await rm(staging, { force: true });
    await rm(`${staging}.wal`, { force: true });
    let rows: Record<string, number>;
    try {
      rows = await ingest(openDuckDbWarehouse({ file: staging, readOnly: false, memoryLimit: BUILD_MEMORY_LIMIT }));
    } catch (error) {
      if (error instanceof RejectedBuildError) {
        const kept = duckdbDialect.rejectedLocation(location).file;
        await rm(kept, { force: true });
        await rename(staging, kept);
        error.keptAt = kept;
      }
      throw error;
    }
    await rm(`${file}.wal`, { force: true });
    await rename(staging, file);
    return rows;
  },
  // A copy of the serving file, changed, checkpointed and renamed into place.
  async mergeAndSwap(location, merge) {
    const { file } = location;
    const copy = `${file}.merging`;
    await rm(copy, { force: true });
    await rm(`${copy}.wal`, { force: true });
    await copyFile(file, copy);
    const target = openDuckDbWarehouse({ file: copy, readOnly: false, memoryLimit: BUILD_MEMORY_LIMIT });
    let result: Awaited<ReturnType<typeof merge>>;
    try {
      result = await merge(target);
      await sql`CHECKPOINT`.execute(target.db);
    } catch (error) {
      await target.close();
      if (error instanceof RejectedBuildError) {
        const kept = duckdbDialect.rejectedLocation(location).file;
        await rm(kept, { force: true });
        await rename(copy, kept);
        error.keptAt = kept;
      } else {
        await rm(copy, { force: true });
      }
      await rm(`${copy}.wal`, { force: true });
      throw error;
    }
    await target.close();
    await rename(copy, file);
    return result;
  },
  rejectedLocation: (location) => ({ ...location, file: `${location.file}.rejected` }),
  textColumn: (column) => column,
  // DuckDB's indexes (ART) are built in memory, beyond its memory limit (3,000,000 keys: about 250
  // MB more); above this, lookups by key use the row groups' min/max instead (test/scaffold.bench.ts).
  indexedRowsMax: 500_000,
  // DuckDB keeps its tables' statistics as it writes them.
  analyze: async () => undefined,
  // Attached read-only, as any other reader of the serving file.
  async attachServing(db, serving) {
    await sql`ATTACH ${sql.lit(serving.file)} AS mesh_serving (READ_ONLY)`.execute(db);
    return {
      table: (name) => sql`${sql.id('mesh_serving', 'main', name)}`,
      detach: async () => void (await sql`DETACH mesh_serving`.execute(db)),
    };
  },
  sql: {
    matchesIgnoringCase: (column, pattern) => sql<SqlBool>`${sql.ref(column)} ilike ${pattern} escape '\\'`,
    // DuckDB truncates a timestamp to a DATE for day and coarser units: cast back to a timestamp.
    truncateTime: (unit, timestamp) => sql<string>`cast(date_trunc(${sql.lit(unit)}, ${timestamp}) as timestamp)`,
    matchesPattern: (column, pattern) => sql<SqlBool>`regexp_full_match(${sql.ref(column)}, ${pattern})`,
    // DuckDB turns an IN list into an OR chain of string comparisons evaluated in the scan: a row
    // policy granting every region made a top-100 read of orders 40% slower. List membership is
    // one vectorised function after the scan (same answers; NULL stays NULL, so never matches).
    isOneOfCategories: (column, values) => sql<SqlBool>`list_contains(list_value(${sql.join(values)}), ${sql.ref(column)})`,
  },
  // The database file cannot be opened or read.
  failureOf: ({ message }) => (/^IO Error:|Cannot open file|database file/i.test(message) ? 'unavailable' : null),
};

/** PostgreSQL SQLSTATEs of a server that is down, restarting, refusing or unreachable. */
const UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300', '55000', '3D000', '08000', '08001', '08003', '08004', '08006']);
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND']);

export const postgresDialect: DialectAdapter<'postgres'> = {
  dialect: 'postgres',
  // Serving reads only (read-only transactions); grant the subgraph's database role SELECT only.
  open: (location, readOnly) => openPostgresWarehouse({ connectionString: location.connectionString, schema: location.schema, readOnly }),
  mayExist: () => true,
  // Built in a staging schema and swapped in by one transaction.
  async buildAndSwap(location, ingest) {
    const { connectionString, schema } = location;
    const staging = `${schema}__building`;
    const admin = openPostgresWarehouse({ connectionString, schema: 'public', poolSize: 1, readOnly: false });
    try {
      await sql`DROP SCHEMA IF EXISTS ${sql.id(staging)} CASCADE`.execute(admin.db);
      await sql`CREATE SCHEMA ${sql.id(staging)}`.execute(admin.db);
      let rows: Record<string, number>;
      try {
        rows = await ingest(openPostgresWarehouse({ connectionString, schema: staging, statementTimeoutMs: 10 * 60_000, readOnly: false }));
      } catch (error) {
        if (error instanceof RejectedBuildError) {
          const kept = postgresDialect.rejectedLocation(location).schema;
          await sql`DROP SCHEMA IF EXISTS ${sql.id(kept)} CASCADE`.execute(admin.db);
          await sql`ALTER SCHEMA ${sql.id(staging)} RENAME TO ${sql.id(kept)}`.execute(admin.db);
          error.keptAt = kept;
        }
        throw error;
      }
      await admin.db.transaction().execute(async (trx) => {
        await sql`DROP SCHEMA IF EXISTS ${sql.id(schema)} CASCADE`.execute(trx);
        await sql`ALTER SCHEMA ${sql.id(staging)} RENAME TO ${sql.id(schema)}`.execute(trx);
      });
      return rows;
    } finally {
      await admin.close();
    }
  },
  // One transaction on the serving schema (the merge opens it); what it staged outside the
  // transaction moves to the rejected schema when it is rejected.
  async mergeAndSwap(location, merge) {
    const { connectionString, schema } = location;
    // A merge reads a few rows by key: index lookups, which PostgreSQL's default costs (for disks that
    // seek) price too high, and short queries that its JIT compiler, misled by estimates over unions
    // of changed keys, compiles for longer than they run (test/incremental.bench.ts).
    const target = openPostgresWarehouse({ connectionString, schema, statementTimeoutMs: 10 * 60_000, readOnly: false, settings: { random_page_cost: '1.1', jit: 'off' } });
    try {
      return await merge(target);
    } catch (error) {
      if (error instanceof RejectedBuildError) {
        const kept = postgresDialect.rejectedLocation(location).schema;
        await target.db.transaction().execute(async (trx) => {
          await sql`DROP SCHEMA IF EXISTS ${sql.id(kept)} CASCADE`.execute(trx);
          await sql`CREATE SCHEMA ${sql.id(kept)}`.execute(trx);
          const staged = await sql<{ name: string }>`select table_name as name from information_schema.tables where table_schema = ${schema} and (starts_with(table_name, ${stagedTableOf('')}) or starts_with(table_name, ${changedTableOf('')}))`.execute(trx);
          for (const { name } of staged.rows) await sql`ALTER TABLE ${sql.id(schema, name)} SET SCHEMA ${sql.id(kept)}`.execute(trx);
        });
        error.keptAt = kept;
      }
      throw error;
    } finally {
      await target.close();
    }
  },
  rejectedLocation: (location) => ({ ...location, schema: `${location.schema}__rejected` }),
  textColumn: (column) => column.modifyEnd(sql`collate "C"`),
  // PostgreSQL builds an index within maintenance_work_mem, spilling to disk beyond it.
  indexedRowsMax: Number.POSITIVE_INFINITY,
  // A table loaded in bulk has none until autovacuum comes by: without them, a join of an
  // increment's few thousand keys to a table of a million rows is planned as a scan of it.
  async analyze(db, tables) {
    for (const table of tables) await sql`ANALYZE ${sql.table(table)}`.execute(db);
  },
  // The serving schema is in the same database.
  attachServing: async (_db, serving) => ({ table: (name) => sql`${sql.id(serving.schema, name)}`, detach: async () => undefined }),
  sql: {
    matchesIgnoringCase: (column, pattern) => sql<SqlBool>`${sql.ref(column)} ilike ${pattern} escape '\\'`,
    // Timestamps are stored without a time zone (UTC by convention): one truncates to a timestamp, weeks from Monday.
    truncateTime: (unit, timestamp) => sql<string>`date_trunc(${sql.lit(unit)}, ${timestamp})`,
    matchesPattern: (column, pattern) => sql<SqlBool>`${sql.ref(column)} ~ ('^(?:' || ${pattern} || ')$')`,
    isOneOfCategories: (column, values) => sql<SqlBool>`${sql.ref(column)} in (${sql.join(values)})`,
  },
  failureOf({ code, message }) {
    if (code === '57014') return 'timeout'; // statement_timeout cancelled the query
    if (typeof code === 'string' && (UNAVAILABLE_STATES.has(code) || NETWORK_CODES.has(code))) return 'unavailable';
    if (/Connection terminated|timeout exceeded when trying to connect|connection (refused|closed)/i.test(message)) return 'unavailable';
    return null;
  },
};

/** Every dialect the kit serves from. */
export const DIALECTS = [duckdbDialect, postgresDialect] as const;

export function dialectAdapter<D extends WarehouseDialect>(dialect: D): DialectAdapter<D> {
  return DIALECTS.find((adapter) => adapter.dialect === dialect) as unknown as DialectAdapter<D>;
}

/** The adapter of a location, with the location typed for it. */
export function adapterOf(location: WarehouseLocation): { adapter: DialectAdapter<WarehouseDialect>; location: never } {
  return { adapter: dialectAdapter(location.dialect), location: location as never };
}

/**
 * Whether an error means a warehouse cannot answer (down, unreachable, restarting, too slow) rather
 * than a fault in the query: those get a coded error for clients, not an internal one.
 */
export function warehouseFailureOf(error: unknown): Failure | null {
  if (!error || typeof error !== 'object') return null;
  const { code, message } = error as { code?: unknown; message?: unknown };
  const facts = { code, message: typeof message === 'string' ? message : '' };
  for (const adapter of DIALECTS) {
    const failure = adapter.failureOf(facts);
    if (failure) return failure;
  }
  return null;
}
