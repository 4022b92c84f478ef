/**
 * Building a domain's warehouse (a DuckDB file or a PostgreSQL schema) from its raw files, once: a warehouse records which raw data set
 * and which version of the domain's ingestion built it, and is reused while both are current.
 *
 * Every build is gated by its products' data quality checks (quality.ts), run on the new version
 * before it is swapped in: when an error-severity check fails, the serving version stays, the
 * rejected build is kept aside for inspection (with its rows and its results), and the build
 * reports the failing checks. The results, with the history of earlier runs, are stored in the
 * warehouse (quality-store.ts).
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { sql, type Kysely, type RawBuilder, type SqlBool } from 'kysely';
import { beforeTableOf } from './staging-names.js';
import { captureBefore, carryOutbox, createOutbox, mergedTables, pruneOutbox, readOutbox, rowsBefore, touchRows, wholeTableBefore, writeOutbox } from '../events/outbox.js';
import type { Domain } from '../domain.js';
import { blocksLoad, runProductChecks, type QualityResult } from '../quality.js';
import { readQualityRuns, writeQualityRuns, type QualityRun } from '../quality-store.js';
import { openWarehouse, readWarehouseAt } from './open.js';
import { adapterOf, dialectAdapter, RejectedBuildError } from './dialects.js';
import { loadLineage, type LineageEvent, type LineageParent } from '../lineage.js';
import { finishTables, type TableSpec } from './tables.js';
import { PROFILES_TABLE, profileDomain, profileIncrement, readProfiles, writeProfiles } from '../profiles.js';
import { subgraphTypeDefs } from '../domain-schema.js';
import { governanceRules } from '../../../policy/governance.rules.js';
import { readPolicy } from '../../../policy/policy-index.js';
import type { GovernanceRules } from '../../../policy/rules.js';
import type { ProductProfile } from '../../../policy/discovery.js';
import { parseWarehouseUrl, type Warehouse } from './warehouse.js';
import {
  appliedIncrements,
  changedRowsOf,
  changedTableOf,
  dropStaging,
  IncrementError,
  incrementsIn,
  mergeRange,
  mergeStaged,
  rangeCondition,
  recordIncrements,
  stageIncrements,
  stagedTableOf,
  type Increment,
  type RowRange,
  type TableChanges,
} from './increments.js';

/** A backfill of a range: the rows of `table` whose `column` is from `from` to `to` (days, both included) reloaded from the sources. */
export interface Backfill extends RowRange {
  readonly table: string;
}

export interface EnsureWarehouseOptions {
  // Any domain: its own table types do not matter here.
  readonly domain: Domain<any, any>;
  readonly url: string;
  /** The domain's raw folder. */
  readonly rawDir: string;
  /** The raw data set's fingerprint (from its manifest). */
  readonly sourceFingerprint: string;
  /** When the raw data set was extracted from its source (its manifest's `extractedAt`): latency checks measure to it, and it is kept with the load. Default: the build's clock. */
  readonly sourceExtractedAt?: string;
  /** The clock runs are stamped with (tests move it). */
  readonly now?: () => Date;
  /** Build even when the serving warehouse is current (a reset). */
  readonly force?: boolean;
  /** Told each step of a build, for progress lines. */
  readonly onProgress?: (step: BuildStep) => void;
  /** Given the build's OpenLineage run events (a START per product, then a COMPLETE or FAIL). */
  readonly onLineage?: (events: readonly LineageEvent[]) => void;
  /** The pipeline run the load is made for: the parent of its lineage runs. */
  readonly lineageParent?: LineageParent;
  /** Judges the new version once profiled, before it is swapped in (a pipeline's anomaly detection): its results join the run's, and an error among them rejects the load. */
  readonly gate?: VersionGate;
  /** The governance rules the column profiles are made under (default `policy/governance.rules.ts`). */
  readonly rules?: GovernanceRules;
  /** Reload only a range of one table (a backfill), as the serving version's sources say it; a serving version that is not current is rebuilt whole instead. */
  readonly backfill?: Backfill;
  /**
   * The last outbox entry the change feed holds (publisher.ts): a merge drops the entries up to it
   * from the new version's outbox. Default 0: every entry is kept until a later merge knows.
   */
  readonly eventsPublishedThrough?: number;
}



/** What a gate sees of a new version: its tables, its profiles, its load time, and what an incremental load or a backfill changed. */
export interface VersionUnderGate {
  readonly db: Kysely<any>;
  readonly profiles: readonly ProductProfile[];
  readonly builtAt: Date;
  readonly changes?: Readonly<Record<string, TableChanges>>;
}

export type VersionGate = (version: VersionUnderGate) => Promise<readonly QualityResult[]>;

/** A run with a gate's results: rejected when one of them blocks the load. */
async function gated(run: QualityRun, gate: VersionGate | undefined, version: VersionUnderGate): Promise<QualityRun> {
  const found = gate ? await gate(version) : [];
  if (found.length === 0) return run;
  const results = [...run.results, ...found];
  return { ...run, results, outcome: blocksLoad(results) ? 'rejected' : run.outcome };
}

/** The steps of a build, as they happen. */
export type BuildStep =
  | { readonly step: 'loading'; readonly domain: string }
  | { readonly step: 'loaded'; readonly domain: string; readonly rows: Record<string, number> }
  | { readonly step: 'checked'; readonly domain: string; readonly run: QualityRun }
  | { readonly step: 'profiled'; readonly domain: string; readonly profiles: readonly ProductProfile[] }
  | { readonly step: 'swapping'; readonly domain: string };

export interface WarehouseBuild {
  /** False when an existing, current warehouse was kept, or a new build was rejected. */
  readonly built: boolean;
  /** Rows loaded per table, when built (or built and rejected). */
  readonly rows?: Record<string, number>;
  /** The quality run that gated the build, when one was made. */
  readonly quality?: QualityRun;
  /** The column profiles of the build (built, or built and rejected). */
  readonly profiles?: readonly ProductProfile[];
  /** Set when the build was rejected by its quality checks: where it is kept; the serving version stays. */
  readonly rejectedKeptAt?: string;
  /** Set when the load itself failed (an unreadable raw file): why; the serving version stays. */
  readonly loadError?: string;
  /** Set when the load merged increments into the serving version (instead of loading every file): which, and what they changed per table. */
  readonly incremental?: { readonly increments: readonly string[]; readonly changes: Readonly<Record<string, TableChanges>> };
  /** The new version's watermark: the last increment it applied. */
  readonly watermark?: string;
  /** Set when the load reloaded a range of one table only (a backfill): which. */
  readonly backfill?: Backfill;
}

/** A build whose error-severity quality checks failed: not swapped in. */
export class QualityGateError extends RejectedBuildError {
  override name = 'QualityGateError';
  constructor(
    readonly domain: string,
    readonly run: QualityRun,
    readonly rows: Record<string, number>,
  ) {
    const failing = run.results.filter((result) => result.severity === 'error' && (result.outcome === 'fail' || result.outcome === 'error'));
    super(`The ${domain} load failed its quality checks: ${failing.map((result) => `${result.product} ${result.check} = ${result.value ?? result.error} (${result.threshold})`).join('; ')}.`);
  }

  /** The checks that blocked the load. */
  get failing(): QualityResult[] {
    return this.run.results.filter((result) => result.severity === 'error' && (result.outcome === 'fail' || result.outcome === 'error'));
  }
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

/** When the source of a built warehouse was extracted, as its build recorded it (null: it does not say). */
async function storedSourceTime(warehouse: Warehouse<unknown>): Promise<Date | null> {
  try {
    const row = (await sql<{ at: string | null }>`select source_extracted_at as at from ${sql.table(BUILD_TABLE)}`.execute(warehouse.db)).rows[0];
    return row?.at ? new Date(row.at) : null;
  } catch {
    return null; // built before the extraction time was kept
  }
}

/**
 * Every check of every product of the domain, on a warehouse. Latencies are measured to `sourceTime`
 * (a load gives its source's); on a built version, to the extraction time its build kept, else the clock.
 * `changed` (an incremental load: the tables it changed) scopes the row-level rules to the changed rows.
 */
export async function runDomainChecks(
  domain: Domain<any, any>,
  warehouse: Pick<Warehouse<unknown>, 'db' | 'dialect'>,
  trigger: QualityRun['trigger'],
  now: () => Date = () => new Date(),
  sourceTime?: Date,
  changed?: ReadonlySet<string>,
): Promise<QualityRun> {
  const dialect = dialectAdapter(warehouse.dialect).sql;
  const context = { sourceTime: sourceTime ?? (await storedSourceTime(warehouse as Warehouse<unknown>)) ?? now() };
  const results: QualityResult[] = [];
  for (const product of domain.dataProducts) {
    const { spec } = product;
    const changedOf = (table: string, column?: string) => {
      if (column !== undefined && domain.tables.find(({ name }) => name === table)?.primaryKey.join() !== column) return undefined;
      return changed?.has(table) ? changedTableOf(table) : null;
    };
    const scope = changed ? { changed: changed.has(spec.table) ? changedTableOf(spec.table) : null, changedOf, changedRows: changed.has(spec.table) ? changedRowsOf(spec.table) : null } : undefined;
    results.push(...(await runProductChecks(warehouse.db, { id: `${domain.name}.${spec.name}`, table: spec.table, key: spec.key, rules: spec.quality ?? [] }, dialect, context, scope)));
  }
  return { runId: randomUUID(), at: now().toISOString(), trigger, outcome: blocksLoad(results) ? 'rejected' : 'passed', results };
}

/** A constraint the data breaks although no check named it, as a result of the run. */
function constraintFailure(domain: string, error: unknown): QualityResult {
  return {
    product: domain,
    check: 'table_constraints',
    dimension: 'conformity',
    severity: 'error',
    outcome: 'error',
    value: null,
    threshold: 'the declared keys are unique and the NOT NULL columns are filled',
    unit: 'rows',
    failedRows: null,
    sampleKeys: [],
    sql: 'alter table … (keys, NOT NULL columns)',
    error: error instanceof Error ? error.message : String(error),
  };
}

/** The quality runs stored at a warehouse URL: the serving version's history, and those of the last rejected build. */
export async function qualityHistoryAt(url: string): Promise<QualityRun[]> {
  const { adapter, location } = adapterOf(parseWarehouseUrl(url));
  const runs = new Map<string, QualityRun>();
  for (const at of [location, adapter.rejectedLocation(location as never)]) {
    if (!adapter.mayExist(at as never)) continue;
    let warehouse: Warehouse<unknown> | undefined;
    try {
      warehouse = adapter.open(at as never, true);
      for (const run of await readQualityRuns(warehouse.db)) runs.set(run.runId, run);
    } catch {
      // no warehouse there (yet), or one built before quality checks: no history
    } finally {
      await warehouse?.close();
    }
  }
  return [...runs.values()].sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
}

/**
 * A full load's change events: the serving version's outbox entries the feed may not hold yet,
 * then each product's rows compared with the serving version's. A serving version the comparison
 * cannot read as this one (a schema change) counts every row as changed in every field.
 */
async function fullLoadOutbox(warehouse: Warehouse<unknown>, options: EnsureWarehouseOptions, servingExists: boolean, loadedAt: Date): Promise<void> {
  const db = warehouse.db as Kysely<any>;
  if (!servingExists) return createOutbox(db); // a first load: nobody followed anything yet
  await carryOutbox(db, await readWarehouseAt(options.url, (serving) => readOutbox(serving), []), options.eventsPublishedThrough ?? 0);
  const { adapter, location } = adapterOf(parseWarehouseUrl(options.url));
  const tables = [...new Map(options.domain.dataProducts.map(({ spec }) => [spec.table, spec.key])).entries()];
  const serving = await adapter.attachServing(db, location);
  try {
    await writeOutbox(db, options.domain, tables.map(([table, key]) => wholeTableBefore(table, key, serving.table(table))), { version: loadedAt.toISOString(), now: loadedAt });
  } catch {
    await writeOutbox(db, options.domain, tables.map(([table, key]) => wholeTableBefore(table, key, sql`(select * from ${sql.table(table)} where false)`)), { version: loadedAt.toISOString(), now: loadedAt });
  } finally {
    await serving.detach();
  }
}

/**
 * Runs the domain's ingestion into a staging warehouse, then its quality checks and its column
 * profiles; stores the history and this run, the profiles, and what built it; closes it. A failing
 * gate rejects the build.
 */
async function ingestInto(warehouse: Warehouse<unknown>, options: EnsureWarehouseOptions, buildKey: string, onRun: (run: QualityRun) => void, onProfiles: (profiles: readonly ProductProfile[]) => void, servingExists: boolean): Promise<Record<string, number>> {
  try {
    options.onProgress?.({ step: 'loading', domain: options.domain.name });
    const rows = await options.domain.ingest({ warehouse, rawDir: options.rawDir });
    // Then every increment delivered since the full files, merged as an incremental load merges them.
    const increments = await incrementsIn(options.rawDir, options.domain.tables, null);
    if (increments.length > 0) {
      const staged = await stageIncrements(warehouse, options.domain.tables, increments);
      // What the deliveries replace of the full files, for the derivations (a line removed: the product it was for).
      for (const table of staged) await captureBefore(warehouse.db as Kysely<any>, options.domain, table.name, stagedKeys(table));
      await applyIncrements(options.domain, warehouse.db as Kysely<any>, staged, increments.length);
      await dropStaging(warehouse.db as Kysely<any>, options.domain.tables); // and what a derivation touched
      for (const table of staged) rows[table.name] = await countRows(warehouse.db as Kysely<any>, table.name);
    }
    await recordIncrements(warehouse.db as Kysely<any>, increments, options.now?.() ?? new Date());
    await dialectAdapter(warehouse.dialect).analyze(warehouse.db as Kysely<any>, options.domain.tables.map(({ name }) => name));
    options.onProgress?.({ step: 'loaded', domain: options.domain.name, rows });
    const sourceTime = sourceTimeOf(options, increments);
    let run = await runDomainChecks(options.domain, warehouse, 'load', options.now, sourceTime);
    if (run.outcome === 'passed') {
      // Keys, NOT NULL columns and indexes, once the data passed: a break the checks did not name still rejects the load.
      try {
        await finishTables(warehouse.db as Kysely<unknown>, options.domain.tables, dialectAdapter(warehouse.dialect).indexedRowsMax);
      } catch (error) {
        run = { ...run, outcome: 'rejected', results: [...run.results, constraintFailure(options.domain.name, error)] };
      }
    }
    onRun(run);
    options.onProgress?.({ step: 'checked', domain: options.domain.name, run });
    // Column profiles (sensitive-data discovery), stored with the load, kept or rejected.
    const rules = options.rules ?? governanceRules;
    const profiles = await profileDomain(options.domain, warehouse.db, { policy: readPolicy(subgraphTypeDefs(options.domain), rules), rules, now: options.now?.() ?? new Date() });
    await writeProfiles(warehouse.db, profiles);
    onProfiles(profiles);
    options.onProgress?.({ step: 'profiled', domain: options.domain.name, profiles });
    // The load time, one instant for the gate's measures and the version's record of its load.
    const loadedAt = options.now?.() ?? new Date();
    if (run.outcome === 'passed') {
      run = await gated(run, options.gate, { db: warehouse.db as Kysely<any>, profiles, builtAt: loadedAt });
      onRun(run);
    }
    if (run.outcome === 'passed') await fullLoadOutbox(warehouse, options, servingExists, loadedAt);
    await writeQualityRuns(warehouse.db, [...(await qualityHistoryAt(options.url)), run]);
    await sql`CREATE TABLE ${sql.table(BUILD_TABLE)} (build_key VARCHAR NOT NULL, built_at TIMESTAMP NOT NULL, source_extracted_at VARCHAR)`.execute(warehouse.db);
    // The load time in UTC, from the build's clock (whatever the database session's time zone).
    const builtAt = loadedAt.toISOString().replace('T', ' ').replace('Z', '');
    await sql`INSERT INTO ${sql.table(BUILD_TABLE)} VALUES (${buildKey}, cast(${builtAt} as timestamp), ${sourceTime.toISOString()})`.execute(warehouse.db);
    if (run.outcome === 'rejected') throw new QualityGateError(options.domain.name, run, rows);
    options.onProgress?.({ step: 'swapping', domain: options.domain.name });
    return rows;
  } finally {
    await warehouse.close();
  }
}

const countRows = async (db: Kysely<any>, table: string): Promise<number> => Number((await sql<{ n: number | string }>`select count(*) as n from ${sql.table(table)}`.execute(db)).rows[0]?.n ?? 0);

/** When a load's source was extracted: its last increment's delivery, else its full files' extraction, else the clock. */
function sourceTimeOf(options: EnsureWarehouseOptions, increments: readonly Increment[]): Date {
  const last = increments.at(-1);
  const base = options.sourceExtractedAt ? new Date(options.sourceExtractedAt) : null;
  if (last && (!base || Date.parse(last.deliveredAt) > base.getTime())) return new Date(last.deliveredAt);
  return base ?? options.now?.() ?? new Date();
}

/** What a domain's derivation is given: the new version, the changed tables' keys, and a way to say which other rows it changes. */
function deriveOptions(domain: Domain<any, any>, db: Kysely<any>, tables: readonly string[], touched: Set<string>) {
  return {
    db,
    changed: Object.fromEntries(tables.map((table) => [table, changedTableOf(table)])),
    // Every merge takes the before-images of the tables it merges (and a derivation of those it touches); of another table, none.
    before: (table: string) => (tables.includes(table) || touched.has(table) ? rowsBefore(table) : sql`(select * from ${sql.table(table)} where false)`),
    async touch(table: string, keys: RawBuilder<unknown>) {
      await touchRows(db, domain, table, keys);
      touched.add(table);
    },
  };
}

/** Merges staged increments by key, then fills the derived columns of what they changed (the domain's `deriveIncrement`). */
async function applyIncrements(domain: Domain<any, any>, db: Kysely<any>, staged: readonly TableSpec[], deliveries: number, touched = new Set<string>()): Promise<Record<string, TableChanges>> {
  // Columns computed from their own row are written with it; the others need the domain's derivation.
  const derived = domain.tables.filter((table) => table.columns.some((column) => column.derived && column.fromRow === undefined));
  if (derived.length > 0 && !domain.deriveIncrement) {
    throw new IncrementError(`The ${domain.name} domain derives columns (${derived.map((table) => table.name).join(', ')}) and declares no deriveIncrement: its increments cannot be merged.`);
  }
  const changes = await mergeStaged(db, staged, deliveries);
  await domain.deriveIncrement?.(deriveOptions(domain, db, staged.map((table) => table.name), touched));
  return changes;
}

/** How a merge into the serving version changes it: what it stages (outside its transaction), then how it merges that (inside). */
interface MergePlan {
  readonly stage: (target: Warehouse<unknown>) => Promise<TableSpec[]>;
  /** The keys of a staged table whose rows the merge may change (their before-image is taken first, for the change events). */
  readonly candidates: (table: TableSpec) => RawBuilder<unknown>;
  /** Merges what it staged; a table its derivation touched besides is added to `touched`. */
  readonly merge: (db: Kysely<any>, staged: readonly TableSpec[], touched: Set<string>) => Promise<Record<string, TableChanges>>;
  /** The deliveries it applies (recorded with the version; the last is its watermark). */
  readonly applies: readonly Increment[];
}

/**
 * A load merged into the serving version: into a new version (DuckDB: a copy of the serving file;
 * PostgreSQL: one transaction on the serving schema), checked on the rows it changed, profiled, and
 * swapped in. Rejected by its checks, the merge is kept aside with its staged rows and the serving
 * version stays. An incremental load merges the increments past the watermark; a backfill reloads a range.
 */
async function mergeIntoServing(options: EnsureWarehouseOptions, plan: MergePlan, onRun: (run: QualityRun) => void, onProfiles: (profiles: readonly ProductProfile[]) => void): Promise<{ rows: Record<string, number>; changes: Record<string, TableChanges> }> {
  const { adapter, location } = adapterOf(parseWarehouseUrl(options.url));
  const { domain } = options;
  const now = options.now?.() ?? new Date();
  return adapter.mergeAndSwap(location, async (target) => {
    options.onProgress?.({ step: 'loading', domain: domain.name });
    const staged = await plan.stage(target);
    // A backfill applies no delivery: its checks measure latency to the source time the serving version kept.
    const sourceTime = plan.applies.length > 0 ? sourceTimeOf(options, plan.applies) : ((await storedSourceTime(target)) ?? sourceTimeOf(options, []));
    // A rejected merge's run joins the history outside its transaction (DuckDB: in the copy kept aside; PostgreSQL: in the serving schema's).
    const keepRejectedRun = async (error: unknown): Promise<never> => {
      if (error instanceof QualityGateError) await writeQualityRuns(target.db, [error.run]);
      throw error;
    };
    return target.db.transaction().execute(async (trx) => {
      const db = trx as Kysely<any>;
      const rows: Record<string, number> = {};
      let changes: Record<string, TableChanges> = {};
      let constraint: QualityResult | null = null;
      const touched = new Set<string>();
      // The rows the merge may change, as they are: the change events compare the new rows with them.
      for (const table of staged) await captureBefore(db, domain, table.name, plan.candidates(table));
      try {
        changes = await plan.merge(db, staged, touched);
      } catch (error) {
        if (error instanceof IncrementError) throw error;
        constraint = constraintFailure(domain.name, error); // a key or NOT NULL column the merged rows break
      }
      // Rows read from the increments, per table (tombstones included).
      for (const [table, { inserted, updated, deleted }] of Object.entries(changes)) rows[table] = inserted + updated + deleted;
      options.onProgress?.({ step: 'loaded', domain: domain.name, rows });
      let run: QualityRun;
      // The tables changed: those merged, and those the derivation touched besides (an invoice whose order moved region).
      const changedTables = new Set([...staged.map((table) => table.name), ...touched]);
      if (constraint) run = { runId: randomUUID(), at: now.toISOString(), trigger: 'load', outcome: 'rejected', results: [constraint] };
      else run = await runDomainChecks(domain, { db, dialect: target.dialect }, 'load', options.now, sourceTime, changedTables);
      onRun(run);
      options.onProgress?.({ step: 'checked', domain: domain.name, run });
      if (run.outcome === 'rejected') throw new QualityGateError(domain.name, run, rows);
      const rules = options.rules ?? governanceRules;
      const changedRows = (table: string, key: string) => {
        if (!changedTables.has(table)) return null;
        if (!domain.tables.find(({ name }) => name === table)?.primaryKey.includes(key)) return sql<SqlBool>`true`;
        return sql<SqlBool>`exists (select 1 from ${sql.table(changedTableOf(table))} as changed where changed.${sql.ref(key)} = ${sql.ref(`${table}.${key}`)})`;
      };
      // The whole tables' measures from the last profile's counts and the changed rows' before-images (events/outbox.ts).
      const beforeImage = (table: string) => (changedTables.has(table) ? sql`${sql.table(beforeTableOf(table))}` : null);
      const profiles = await profileIncrement(domain, db, await readProfiles(db), changedRows, { policy: readPolicy(subgraphTypeDefs(domain), rules), rules, now }, beforeImage);
      onProfiles(profiles);
      options.onProgress?.({ step: 'profiled', domain: domain.name, profiles });
      run = await gated(run, options.gate, { db, profiles, builtAt: now, changes });
      onRun(run);
      if (run.outcome === 'rejected') throw new QualityGateError(domain.name, run, rows);
      await sql`DROP TABLE IF EXISTS ${sql.table(PROFILES_TABLE)}`.execute(db);
      await writeProfiles(db, profiles);
      await writeQualityRuns(db, [run]);
      await recordIncrements(db, plan.applies, now);
      // What changed in each product, for the change feed: in this transaction, published once it is served.
      await writeOutbox(db, domain, mergedTables([...changedTables], domain), { version: now.toISOString(), now });
      await pruneOutbox(db, options.eventsPublishedThrough ?? 0);
      const builtAt = now.toISOString().replace('T', ' ').replace('Z', '');
      await sql`UPDATE ${sql.table(BUILD_TABLE)} SET built_at = cast(${builtAt} as timestamp), source_extracted_at = ${sourceTime.toISOString()}`.execute(db);
      await dropStaging(db, domain.tables); // and what the derivation touched
      options.onProgress?.({ step: 'swapping', domain: domain.name });
      return { rows, changes };
    }).catch(keepRejectedRun);
  });
}

/** The keys a staged table's increments name. */
const stagedKeys = (table: TableSpec) => sql`select ${sql.join(table.primaryKey.map((column) => sql.ref(column)))} from ${sql.table(stagedTableOf(table.name))}`;

/** The increments past the serving version's watermark, merged by key. */
const incrementalPlan = (domain: Domain<any, any>, pending: readonly Increment[]): MergePlan => ({
  stage: (target) => stageIncrements(target, domain.tables, pending),
  candidates: stagedKeys,
  merge: (db, staged, touched) => applyIncrements(domain, db, staged, pending.length, touched),
  applies: pending,
});

/**
 * A range of one table reloaded from its sources as the serving version knows them (its full file
 * and the deliveries it applied), then the derived columns of what that changed.
 */
function rangePlan(options: EnsureWarehouseOptions, backfill: Backfill, applied: readonly Increment[]): MergePlan {
  const { domain } = options;
  const table = domain.tables.find(({ name }) => name === backfill.table);
  if (!table) throw new IncrementError(`The ${domain.name} domain has no table "${backfill.table}" to backfill.`);
  const column = table.columns.find(({ name }) => name === backfill.column);
  if (!column || column.derived) throw new IncrementError(`${backfill.table}.${backfill.column} is not a column loaded from the sources: a range of it cannot be reloaded.`);
  return {
    stage: (target) => stageIncrements(target, [table], applied, new Map([[table.name, join(options.rawDir, table.file ?? `${table.name}.csv`)]])),
    // The range's rows, and those whose key the sources give (a row moved into the range).
    candidates: (staged) => {
      const keys = sql.join(staged.primaryKey.map((key) => sql.ref(key)));
      return sql`select ${keys} from ${sql.table(stagedTableOf(staged.name))} union select ${keys} from ${sql.table(staged.name)} as t where ${rangeCondition('t', backfill)}`;
    },
    async merge(db, _staged, touched) {
      const changes = { [table.name]: await mergeRange(db, table, backfill) };
      await domain.deriveIncrement?.(deriveOptions(domain, db, [table.name], touched));
      return changes;
    },
    applies: [],
  };
}

/**
 * Builds the domain's warehouse unless the existing one was built from the same data and version.
 * A build its quality checks reject leaves the serving version in place (`rejectedKeptAt` says
 * where the rejected one is), and so does a load that fails (`loadError`); with no serving version
 * to keep, either is thrown.
 */
export async function ensureWarehouse(options: EnsureWarehouseOptions): Promise<WarehouseBuild> {
  const { adapter, location } = adapterOf(parseWarehouseUrl(options.url));
  const buildKey = buildKeyOf(options);
  const serving = adapter.mayExist(location) ? await currentBuildKey(options.url) : null;
  let quality: QualityRun | undefined;
  let profiles: readonly ProductProfile[] | undefined;
  const lineage = options.onLineage ? loadLineage(options.domain, { rawDir: options.rawDir, warehouse: options.url, ...(options.now ? { now: options.now } : {}), ...(options.lineageParent ? { parent: options.lineageParent } : {}) }) : null;
  if (serving === buildKey && !options.force) {
    // Current: merge what was delivered since, if anything.
    const applied = await readWarehouseAt(options.url, appliedIncrements, []);
    let plan: MergePlan;
    try {
      if (options.backfill) {
        // The range as the serving version's sources say it: its full files and the deliveries it applied (all still there).
        const names = new Set(applied.map(({ name }) => name));
        const delivered = (await incrementsIn(options.rawDir, options.domain.tables, null)).filter(({ name }) => names.has(name));
        const gone = applied.filter(({ name }) => !delivered.some((increment) => increment.name === name));
        if (gone.length > 0) throw new IncrementError(`The serving version applied ${gone.map(({ name }) => name).join(', ')}, no longer in ${options.rawDir}: a reload of the range without it would undo it. Run a full backfill (no range).`);
        plan = rangePlan(options, options.backfill, delivered.map((increment) => ({ ...increment, files: new Map([...increment.files].filter(([table]) => table === options.backfill!.table)) })));
      } else {
        const pending = await incrementsIn(options.rawDir, options.domain.tables, applied.at(-1)?.name ?? null, new Set(applied.map(({ name }) => name)));
        if (pending.length === 0) return { built: false };
        plan = incrementalPlan(options.domain, pending);
      }
    } catch (error) {
      return { built: false, loadError: (error as Error).message };
    }
    if (lineage) options.onLineage!(lineage.start());
    try {
      const merged = await mergeIntoServing(options, plan, (run) => (quality = run), (made) => (profiles = made));
      if (lineage) options.onLineage!(lineage.end({ swapped: true, ...(quality ? { quality } : {}) }));
      const watermark = plan.applies.at(-1)?.name ?? applied.at(-1)?.name;
      return {
        built: true,
        rows: merged.rows,
        ...(quality ? { quality } : {}),
        ...(profiles ? { profiles } : {}),
        incremental: { increments: plan.applies.map((increment) => increment.name), changes: merged.changes },
        ...(watermark ? { watermark } : {}),
        ...(options.backfill ? { backfill: options.backfill } : {}),
      };
    } catch (error) {
      if (lineage) options.onLineage!(lineage.end({ swapped: false, ...(quality ? { quality } : {}), error: error instanceof Error ? error.message : String(error) }));
      if (error instanceof QualityGateError) return { built: false, rows: error.rows, quality: error.run, rejectedKeptAt: error.keptAt ?? '' };
      return { built: false, loadError: error instanceof Error ? error.message : String(error) };
    }
  }
  // Built beside the serving warehouse and swapped in: readers never see half a warehouse.
  if (lineage) options.onLineage!(lineage.start());
  try {
    const rows = await adapter.buildAndSwap(location, (staging) =>
      ingestInto(staging, options, buildKey, (run) => (quality = run), (made) => (profiles = made), serving !== null),
    );
    if (lineage) options.onLineage!(lineage.end({ swapped: true, ...(quality ? { quality } : {}) }));
    return { built: true, rows, ...(quality ? { quality } : {}), ...(profiles ? { profiles } : {}) };
  } catch (error) {
    if (lineage) options.onLineage!(lineage.end({ swapped: false, ...(quality ? { quality } : {}), error: error instanceof Error ? error.message : String(error) }));
    if (serving === null) throw error; // nothing to keep serving
    if (error instanceof QualityGateError) return { built: false, rows: error.rows, quality: error.run, ...(profiles ? { profiles } : {}), rejectedKeptAt: error.keptAt ?? '' };
    return { built: false, loadError: error instanceof Error ? error.message : String(error) };
  }
}
