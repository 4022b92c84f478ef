/**
 * Where data quality results live: in the domain's own warehouse, with their history. Each build
 * carries the history of the version it replaces forward (a warehouse version is written once, then
 * served read-only) and adds its own run; a rejected build keeps its run too, in the warehouse kept
 * aside, and the next build that succeeds takes that run into the history as well.
 */
import type { Kysely } from 'kysely';
import type { QualityResult } from './quality.js';
import { readWarehouseAt } from './warehouse/open.js';

export const QUALITY_RUNS_TABLE = '_quality_runs';
export const QUALITY_RESULTS_TABLE = '_quality_results';

/** One run of every check of a domain's products, on one warehouse version. */
export interface QualityRun {
  readonly runId: string;
  /** ISO 8601. */
  readonly at: string;
  /** `load`: gating a build; `scheduled` or `manual`: on the serving version. */
  readonly trigger: 'load' | 'scheduled' | 'manual';
  /** `passed` (no error-severity check failed), or `rejected` (a load that was not swapped in). */
  readonly outcome: 'passed' | 'rejected';
  readonly results: readonly QualityResult[];
}

interface RunRow {
  run_id: string;
  at: string;
  trigger: string;
  outcome: string;
}

interface ResultRow {
  run_id: string;
  product: string;
  check_name: string;
  dimension: string;
  severity: string;
  outcome: string;
  value: number | null;
  threshold: string;
  unit: string;
  failed_rows: number | null;
  sample_keys: string;
  statement: string;
  error: string | null;
}

interface QualityTables {
  _quality_runs: RunRow;
  _quality_results: ResultRow;
}

async function createQualityTables(db: Kysely<QualityTables>): Promise<void> {
  await db.schema
    .createTable(QUALITY_RUNS_TABLE)
    .ifNotExists()
    .addColumn('run_id', 'varchar', (c) => c.notNull().primaryKey())
    .addColumn('at', 'timestamp', (c) => c.notNull())
    .addColumn('trigger', 'varchar', (c) => c.notNull())
    .addColumn('outcome', 'varchar', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable(QUALITY_RESULTS_TABLE)
    .ifNotExists()
    .addColumn('run_id', 'varchar', (c) => c.notNull())
    .addColumn('product', 'varchar', (c) => c.notNull())
    .addColumn('check_name', 'varchar', (c) => c.notNull())
    .addColumn('dimension', 'varchar', (c) => c.notNull())
    .addColumn('severity', 'varchar', (c) => c.notNull())
    .addColumn('outcome', 'varchar', (c) => c.notNull())
    .addColumn('value', 'double precision')
    .addColumn('threshold', 'varchar', (c) => c.notNull())
    .addColumn('unit', 'varchar', (c) => c.notNull())
    .addColumn('failed_rows', 'bigint')
    .addColumn('sample_keys', 'varchar', (c) => c.notNull())
    .addColumn('statement', 'varchar', (c) => c.notNull())
    .addColumn('error', 'varchar')
    .execute();
}

/** Writes runs (history and new) into a warehouse being built. */
export async function writeQualityRuns(db: Kysely<any>, runs: readonly QualityRun[]): Promise<void> {
  const quality = db as Kysely<QualityTables>;
  await createQualityTables(quality);
  for (const run of runs) {
    await quality.insertInto(QUALITY_RUNS_TABLE).values({ run_id: run.runId, at: run.at, trigger: run.trigger, outcome: run.outcome }).execute();
    if (run.results.length === 0) continue;
    await quality
      .insertInto(QUALITY_RESULTS_TABLE)
      .values(
        run.results.map((result) => ({
          run_id: run.runId,
          product: result.product,
          check_name: result.check,
          dimension: result.dimension,
          severity: result.severity,
          outcome: result.outcome,
          value: result.value,
          threshold: result.threshold,
          unit: result.unit,
          failed_rows: result.failedRows,
          sample_keys: JSON.stringify(result.sampleKeys),
          statement: result.sql,
          error: result.error ?? null,
        })),
      )
      .execute();
  }
}

/** Every run a warehouse holds, oldest first (none for a warehouse built before quality checks). */
export async function readQualityRuns(db: Kysely<any>): Promise<QualityRun[]> {
  const quality = db as Kysely<QualityTables>;
  let runs: RunRow[];
  let results: ResultRow[];
  try {
    runs = await quality.selectFrom(QUALITY_RUNS_TABLE).selectAll().orderBy('at').orderBy('run_id').execute();
    results = await quality.selectFrom(QUALITY_RESULTS_TABLE).selectAll().execute();
  } catch {
    return [];
  }
  return runs.map((run) => ({
    runId: run.run_id,
    at: run.at,
    trigger: run.trigger as QualityRun['trigger'],
    outcome: run.outcome as QualityRun['outcome'],
    results: results
      .filter((result) => result.run_id === run.run_id)
      .map((result) => ({
        product: result.product,
        check: result.check_name,
        dimension: result.dimension as QualityResult['dimension'],
        severity: result.severity as QualityResult['severity'],
        outcome: result.outcome as QualityResult['outcome'],
        value: result.value === null ? null : Number(result.value),
        threshold: result.threshold,
        unit: result.unit as QualityResult['unit'],
        failedRows: result.failed_rows === null ? null : Number(result.failed_rows),
        sampleKeys: JSON.parse(result.sample_keys) as string[],
        sql: result.statement,
        ...(result.error ? { error: result.error } : {}),
      })),
  }));
}

/** The runs of the warehouse at a URL, read-only (none when it is missing or holds none). */
export function readQualityRunsAt(url: string): Promise<QualityRun[]> {
  return readWarehouseAt(url, readQualityRuns, []);
}
