/**
 * Data quality rules of a data product, declared with it (data-product.ts), in the vocabulary the
 * standards share: ODCS 3.1's library metrics (`nullValues`, `missingValues`, `invalidValues`,
 * `duplicateValues`, `rowCount`), dbt's `relationships` within a domain, and a SQL rule; each with
 * a dimension, a threshold with its operator, and a severity. Every product's key is checked not
 * null and unique without being declared.
 *
 * A rule measures one number (a count of rows, or a percentage of the table's rows with `unit:
 * 'percent'`), in SQL, on the warehouse: `runQualityChecks` returns, per rule, the measured value,
 * the threshold, the outcome (pass; warn or fail by severity; error when the rule could not run),
 * the failing rows and a few of their keys (never other values), and the SQL that ran.
 */
import { sql, type Kysely, type RawBuilder, type SqlBool } from 'kysely';
import type { DialectSql } from './warehouse/dialects.js';

/** ODCS 3.1 quality dimensions (ODCS calls validity "conformity"). */
export type QualityDimension = 'accuracy' | 'completeness' | 'conformity' | 'consistency' | 'coverage' | 'timeliness' | 'uniqueness';

/** The threshold, as ODCS operators state it. */
export type QualityThreshold =
  | { readonly mustBe: number }
  | { readonly mustBeLessThan: number }
  | { readonly mustBeLessOrEqualTo: number }
  | { readonly mustBeGreaterThan: number }
  | { readonly mustBeGreaterOrEqualTo: number }
  | { readonly mustBeBetween: readonly [number, number] };

export type QualityMeasure =
  /** Rows whose column is null. */
  | { readonly metric: 'nullValues'; readonly column: string }
  /** Rows whose column is null or one of the values that stand for "missing" (e.g. `''`, `'N/A'`). */
  | { readonly metric: 'missingValues'; readonly column: string; readonly missingValues: readonly (string | number)[] }
  /** Rows whose column (when not null) is outside the valid values, the pattern (full match) or the range. */
  | {
      readonly metric: 'invalidValues';
      readonly column: string;
      readonly validValues?: readonly (string | number)[];
      readonly pattern?: string;
      readonly range?: readonly [number, number];
    }
  /** Rows whose columns' values appear more than once. */
  | { readonly metric: 'duplicateValues'; readonly columns: readonly string[] }
  /** The table's rows. */
  | { readonly metric: 'rowCount' }
  /** Rows whose column (when not null) names no row of another table of the domain (dbt's `relationships`). */
  | { readonly metric: 'relationships'; readonly column: string; readonly to: { readonly table: string; readonly column: string } }
  /** A query of the domain's own, returning one number (`${table}` stands for the product's table). */
  | { readonly metric: 'sql'; readonly query: string }
  /**
   * Seconds from the column's newest value (a date or a timestamp, in UTC) to the time the source
   * was extracted (the raw manifest's `extractedAt`, kept with the load; the clock when the source
   * does not say): a stale extract, whose newest record is old, shows here.
   */
  | { readonly metric: 'latency'; readonly column: string };

export type QualityRule = QualityMeasure &
  QualityThreshold & {
    /** Unique within the product, snake_case, e.g. `email_format`. */
    readonly name: string;
    readonly dimension: QualityDimension;
    /** `error` gates the load (the serving version stays); `warning` is reported. */
    readonly severity: 'warning' | 'error';
    /** `rows` (default) or `percent` of the table's rows; a latency is in `seconds`. */
    readonly unit?: 'rows' | 'percent' | 'seconds';
    readonly description?: string;
  };

export type QualityOutcome = 'pass' | 'warn' | 'fail' | 'error';

export interface QualityResult {
  /** `<domain>.<product>`. */
  readonly product: string;
  readonly check: string;
  readonly dimension: QualityDimension;
  readonly severity: 'warning' | 'error';
  readonly outcome: QualityOutcome;
  /** What was measured (null when the rule could not run). */
  readonly value: number | null;
  /** The threshold in words, e.g. `mustBe 0`. */
  readonly threshold: string;
  /** `share`: from 0 to 1; `value`: the column's own unit (an anomaly's mean). */
  readonly unit: 'rows' | 'percent' | 'seconds' | 'share' | 'value';
  /** Rows that fail a row-level rule (null for rowCount, latency and SQL rules). */
  readonly failedRows: number | null;
  /** Up to five distinct keys of failing rows. */
  readonly sampleKeys: readonly string[];
  /** The SQL that measured it (values bound as parameters). */
  readonly sql: string;
  /** Why the rule could not run (outcome `error`). */
  readonly error?: string;
}

/** What a product's rules need of its declaration. */
export interface ProductQualityTarget {
  /** `<domain>.<product>`. */
  readonly id: string;
  readonly table: string;
  readonly key: string;
  readonly rules: readonly QualityRule[];
}

const SAMPLE_KEYS = 5;

/** The rules a product's key always has: not null, and unique. */
export function keyRules(key: string): QualityRule[] {
  return [
    { name: `${key}_not_null`, metric: 'nullValues', column: key, mustBe: 0, dimension: 'completeness', severity: 'error', description: `The key ${key} is never null.` },
    { name: `${key}_unique`, metric: 'duplicateValues', columns: [key], mustBe: 0, dimension: 'uniqueness', severity: 'error', description: `The key ${key} is unique.` },
  ];
}

export function thresholdText(rule: QualityThreshold): string {
  if ('mustBe' in rule) return `mustBe ${rule.mustBe}`;
  if ('mustBeLessThan' in rule) return `mustBeLessThan ${rule.mustBeLessThan}`;
  if ('mustBeLessOrEqualTo' in rule) return `mustBeLessOrEqualTo ${rule.mustBeLessOrEqualTo}`;
  if ('mustBeGreaterThan' in rule) return `mustBeGreaterThan ${rule.mustBeGreaterThan}`;
  if ('mustBeGreaterOrEqualTo' in rule) return `mustBeGreaterOrEqualTo ${rule.mustBeGreaterOrEqualTo}`;
  return `mustBeBetween ${rule.mustBeBetween[0]} and ${rule.mustBeBetween[1]}`;
}

export function meetsThreshold(value: number, rule: QualityThreshold): boolean {
  if ('mustBe' in rule) return value === rule.mustBe;
  if ('mustBeLessThan' in rule) return value < rule.mustBeLessThan;
  if ('mustBeLessOrEqualTo' in rule) return value <= rule.mustBeLessOrEqualTo;
  if ('mustBeGreaterThan' in rule) return value > rule.mustBeGreaterThan;
  if ('mustBeGreaterOrEqualTo' in rule) return value >= rule.mustBeGreaterOrEqualTo;
  return value >= rule.mustBeBetween[0] && value <= rule.mustBeBetween[1];
}

/**
 * The rows of an incremental load's checks: those whose key is in `changed` (a table of the keys the
 * increment inserted, updated or deleted, with the product's key column).
 */
export interface CheckScope {
  /** Null: the increment changed none of the table's rows. */
  readonly changed: string | null;
  /**
   * The keys changed in another table, for the relationships to it (a deleted parent orphans rows
   * the increment did not change): the table of its changed keys, null when none changed, or
   * undefined when `column` is not its key (every row is then judged).
   */
  readonly changedOf: (table: string, column: string) => string | null | undefined;
  /** A view of the table's changed rows, which SQL rules read in place of the table (null: none changed). */
  readonly changedRows: string | null;
}

/** A row of `table` is in the scope (always, without one). */
function inScope(table: string, key: string, scope: CheckScope | undefined): RawBuilder<SqlBool> {
  if (!scope) return sql<SqlBool>`true`;
  if (scope.changed === null) return sql<SqlBool>`false`;
  // IN, not a correlated EXISTS: DuckDB plans EXISTS under an OR (a relationship's scope) as a join per row, three times slower.
  return sql<SqlBool>`${sql.ref(`${table}.${key}`)} in (select changed.${sql.ref(key)} from ${sql.table(scope.changed)} as changed)`;
}

/** The condition a failing row meets, for the row-level rules (of the rows in scope: the caller adds it). */
function failingRow(rule: QualityMeasure, table: string, dialect: DialectSql, key: string, scope?: CheckScope): RawBuilder<SqlBool> | null {
  const ref = (column: string) => sql.ref(`${table}.${column}`);
  switch (rule.metric) {
    case 'nullValues':
      return sql<SqlBool>`${ref(rule.column)} is null`;
    case 'missingValues':
      return rule.missingValues.length > 0
        ? sql<SqlBool>`(${ref(rule.column)} is null or cast(${ref(rule.column)} as varchar) in (${sql.join(rule.missingValues.map(String))}))`
        : sql<SqlBool>`${ref(rule.column)} is null`;
    case 'invalidValues': {
      const valid: RawBuilder<SqlBool>[] = [];
      if (rule.validValues) valid.push(sql<SqlBool>`cast(${ref(rule.column)} as varchar) in (${sql.join(rule.validValues.map(String))})`);
      if (rule.pattern) valid.push(dialect.matchesPattern(`${table}.${rule.column}`, rule.pattern));
      if (rule.range) valid.push(sql<SqlBool>`${ref(rule.column)} between ${rule.range[0]} and ${rule.range[1]}`);
      if (valid.length === 0) return sql<SqlBool>`false`;
      return sql<SqlBool>`(${ref(rule.column)} is not null and not (${sql.join(valid, sql` and `)}))`;
    }
    case 'duplicateValues': {
      const columns = sql.join(rule.columns.map((column) => sql.ref(column)));
      // In scope: the values of the changed rows that some other row also has.
      const candidates = scope ? sql` where (${columns}) in (select ${columns} from ${sql.table(table)} where ${inScope(table, key, scope)})` : sql``;
      return sql<SqlBool>`(${sql.join(rule.columns.map((column) => ref(column)))}) in (select ${columns} from ${sql.table(table)}${candidates} group by ${columns} having count(*) > 1)`;
    }
    case 'relationships': {
      const orphan = sql<SqlBool>`(${ref(rule.column)} is not null and not exists (select 1 from ${sql.table(rule.to.table)} as parent where parent.${sql.ref(rule.to.column)} = ${ref(rule.column)}))`;
      if (!scope) return orphan;
      // In scope: the changed rows, and the rows whose parent changed (it may be gone).
      const parents = scope.changedOf(rule.to.table, rule.to.column);
      if (parents === undefined) return orphan;
      const parentChanged = parents ? sql<SqlBool>`${ref(rule.column)} in (select changed_parent.${sql.ref(rule.to.column)} from ${sql.table(parents)} as changed_parent)` : sql<SqlBool>`false`;
      return sql<SqlBool>`(${inScope(table, key, scope)} or ${parentChanged}) and ${orphan}`;
    }
    default:
      return null;
  }
}

/** A warehouse's date or timestamp text (`2025-12-31`, `2025-12-31 23:56:14`), read as UTC. */
function instantOf(text: string): number {
  const iso = /^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00Z` : /[zZ]|[+-]\d{2}(:?\d{2})?$/.test(text) ? text.replace(' ', 'T') : `${text.replace(' ', 'T')}Z`;
  const time = Date.parse(iso);
  if (Number.isNaN(time)) throw new Error(`"${text}" is not a date or a timestamp`);
  return time;
}

/** What the checks of one run measure against. */
export interface CheckContext {
  /** When the source was extracted: latencies are measured to it. */
  readonly sourceTime: Date;
}

/**
 * Runs a product's rules (its key's first) on a warehouse. A rule that cannot run is an `error`
 * outcome, never a thrown error. With a scope (an incremental load), the row-level rules judge the
 * changed rows only (a percentage is of them), uniqueness the changed rows' values, relationships
 * the changed rows and those whose parent changed, SQL rules a view of the changed rows in place of
 * the table; row counts and latency judge the whole table.
 */
export async function runProductChecks(db: Kysely<any>, target: ProductQualityTarget, dialect: DialectSql, context: CheckContext = { sourceTime: new Date() }, scope?: CheckScope): Promise<QualityResult[]> {
  const results: QualityResult[] = [];
  const { table, key } = target;
  const scoped = inScope(table, key, scope);
  const total = async () => Number(((await sql<{ n: number | string }>`select count(*) as n from ${sql.table(table)}`.execute(db)).rows[0]?.n ?? 0));
  const totalInScope = async () => Number(((await sql<{ n: number | string }>`select count(*) as n from ${sql.table(table)} where ${scoped}`.execute(db)).rows[0]?.n ?? 0));
  let rows: number | null = null;
  for (const rule of [...keyRules(key), ...target.rules]) {
    const unit = rule.metric === 'latency' ? 'seconds' : (rule.unit ?? 'rows');
    const base = { product: target.id, check: rule.name, dimension: rule.dimension, severity: rule.severity, threshold: thresholdText(rule), unit } as const;
    let statement = '';
    try {
      const rowCondition = failingRow(rule, table, dialect, key, scope);
      // A relationship's scope is its own (its condition holds it).
      const condition = rowCondition && scope && rule.metric !== 'relationships' ? sql<SqlBool>`${rowCondition} and ${scoped}` : rowCondition;
      let measured: number;
      let failedRows: number | null = null;
      let sampleKeys: string[] = [];
      if (condition) {
        const query = sql<{ n: number | string }>`select count(*) as n from ${sql.table(table)} where ${condition}`;
        statement = query.compile(db).sql;
        failedRows = Number((await query.execute(db)).rows[0]?.n ?? 0);
        if (failedRows > 0) {
          const sample = await sql<{ k: string }>`select distinct cast(${sql.ref(`${table}.${key}`)} as varchar) as k from ${sql.table(table)} where ${condition} order by 1 limit ${SAMPLE_KEYS}`.execute(db);
          sampleKeys = sample.rows.map((row) => String(row.k));
        }
        rows ??= unit === 'percent' ? await totalInScope() : null;
        measured = unit === 'percent' ? (rows ? Math.round((failedRows / rows) * 10_000) / 100 : 0) : failedRows;
      } else if (rule.metric === 'rowCount') {
        statement = sql`select count(*) as n from ${sql.table(table)}`.compile(db).sql;
        measured = await total();
      } else if (rule.metric === 'latency') {
        const query = sql<{ newest: string | null }>`select cast(max(${sql.ref(rule.column)}) as varchar) as newest from ${sql.table(table)}`;
        statement = query.compile(db).sql;
        const newest = (await query.execute(db)).rows[0]?.newest;
        if (newest === null || newest === undefined) throw new Error(`${table}.${rule.column} has no value to measure`);
        measured = Math.round((context.sourceTime.getTime() - instantOf(String(newest))) / 1000);
      } else if (rule.metric === 'sql') {
        if (scope && scope.changedRows === null) continue; // no changed row to judge
        statement = rule.query.replaceAll('${table}', scope?.changedRows ?? table);
        const answer = await sql.raw<Record<string, unknown>>(statement).execute(db);
        const first = answer.rows[0];
        const value = first ? Object.values(first)[0] : null;
        measured = Number(value);
        if (value === null || value === undefined || !Number.isFinite(measured)) throw new Error(`the query returned ${JSON.stringify(value ?? null)}, not a number`);
      } else {
        throw new Error(`unknown metric ${(rule as { metric: string }).metric}`);
      }
      const pass = meetsThreshold(measured, rule);
      results.push({ ...base, outcome: pass ? 'pass' : rule.severity === 'error' ? 'fail' : 'warn', value: measured, failedRows, sampleKeys, sql: statement });
    } catch (error) {
      results.push({ ...base, outcome: 'error', value: null, failedRows: null, sampleKeys: [], sql: statement, error: error instanceof Error ? error.message : String(error) });
    }
  }
  return results;
}

/** Whether a run's results block a load: an error-severity check failed, or could not run. */
export const blocksLoad = (results: readonly QualityResult[]): boolean => results.some((result) => result.severity === 'error' && (result.outcome === 'fail' || result.outcome === 'error'));

/** A run in a few words: `23 passed, 1 warned, 2 failed`. */
export function summarizeRun(run: { readonly results: readonly QualityResult[] }): string {
  const count = (outcome: QualityOutcome) => run.results.filter((result) => result.outcome === outcome).length;
  const parts = [`${count('pass')} passed`, ...(count('warn') ? [`${count('warn')} warned`] : []), ...(count('fail') ? [`${count('fail')} failed`] : []), ...(count('error') ? [`${count('error')} could not run`] : [])];
  return parts.join(', ');
}

/**
 * A rule as ODCS 3.1 writes it on the product's schema object: the library metrics as they are
 * (their column and arguments in `arguments`), relationships and SQL rules as `sql` quality.
 */
export function odcsQualityOf(rule: QualityRule, table: string): Record<string, unknown> {
  const { name, dimension, severity, unit, description } = rule;
  const threshold = Object.fromEntries(
    (['mustBe', 'mustBeLessThan', 'mustBeLessOrEqualTo', 'mustBeGreaterThan', 'mustBeGreaterOrEqualTo', 'mustBeBetween'] as const).flatMap((key) => (key in rule ? [[key, (rule as Record<string, unknown>)[key]]] : [])),
  );
  const common = { name, dimension, severity, unit: unit ?? 'rows', ...(description ? { description } : {}), ...threshold };
  switch (rule.metric) {
    case 'nullValues':
      return { type: 'library', metric: 'nullValues', arguments: { column: rule.column }, ...common };
    case 'missingValues':
      return { type: 'library', metric: 'missingValues', arguments: { column: rule.column, missingValues: [...rule.missingValues] }, ...common };
    case 'invalidValues':
      return {
        type: 'library',
        metric: 'invalidValues',
        arguments: { column: rule.column, ...(rule.validValues ? { validValues: [...rule.validValues] } : {}), ...(rule.pattern ? { pattern: rule.pattern } : {}), ...(rule.range ? { range: [...rule.range] } : {}) },
        ...common,
      };
    case 'duplicateValues':
      return { type: 'library', metric: 'duplicateValues', arguments: { properties: [...rule.columns] }, ...common };
    case 'rowCount':
      return { type: 'library', metric: 'rowCount', ...common };
    case 'relationships':
      return {
        type: 'sql',
        query: `select count(*) from ${table} where ${rule.column} is not null and ${rule.column} not in (select ${rule.to.column} from ${rule.to.table})`,
        customProperties: [{ property: 'relationships', value: `${table}.${rule.column} -> ${rule.to.table}.${rule.to.column}` }],
        ...common,
      };
    case 'sql':
      return { type: 'sql', query: rule.query.replaceAll('${table}', table), ...common };
    case 'latency':
      return {
        type: 'sql',
        query: `select max(${rule.column}) from ${table}`,
        customProperties: [{ property: 'latency', value: `seconds from the newest ${table}.${rule.column} to the source's extraction time` }],
        ...common,
        unit: 'seconds',
      };
  }
}
