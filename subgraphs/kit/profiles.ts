/**
 * Column profiles, made at each load and stored with it (`_column_profiles` in the new warehouse
 * version): for every column of each data product's table, the null share, the distinct count,
 * min and max (numbers and dates) or the shortest and longest value (text), and what the personal
 * data detectors (pii-detectors.ts) recognise in a sample of its values. No value of a personal
 * column leaves the load: text gives lengths only, and min and max are withheld for fields tagged
 * pii or masked and for columns a detector recognises (see policy/discovery.ts for how the
 * registry and the subgraph's start-up judge them).
 */
import { sql, type Kysely, type RawBuilder, type SqlBool } from 'kysely';
import { DEFAULT_DISCOVERY_RULES, discoveryRulesOf, personalDataIn, type ColumnProfile, type ProductProfile } from '../../policy/discovery.js';
import type { PolicyIndex } from '../../policy/policy-index.js';
import type { GovernanceRules } from '../../policy/rules.js';
import type { Domain } from './domain.js';
import type { DetectOptions } from './pii-detectors.js';
import { readWarehouseAt } from './warehouse/open.js';
import type { ColumnSpec } from './warehouse/tables.js';

export const PROFILES_TABLE = '_column_profiles';

/** Values of a column the detectors look at. */
export const PROFILE_SAMPLE_SIZE = 1_000;

export interface ProfileOptions {
  /** The policy of the domain's schema: which fields are tagged pii or masked (their min and max are withheld). */
  readonly policy: PolicyIndex;
  readonly rules: GovernanceRules;
  /** The load's clock. */
  readonly now: Date;
}

const isText = (column: ColumnSpec) => column.type === 'varchar';
/** Columns whose min and max say something without being text: numbers and dates. */
const isOrdered = (column: ColumnSpec) => column.type !== 'varchar' && column.type !== 'boolean';
/** Columns whose mean says something: numbers. */
const isNumberType = (type: string) => type === 'integer' || type.startsWith('decimal');
const isNumber = (column: ColumnSpec) => isNumberType(column.type);
/** Columns the detectors look at: text, and dates (birth dates). */
const isDetected = (column: ColumnSpec) => column.type === 'varchar' || column.type === 'date';

const count = (value: unknown) => Number(value ?? 0);
const textOrNull = (value: unknown) => (value === null || value === undefined ? null : String(value));

/** One product's profile, from its table in the warehouse. */
type Detect = (values: readonly string[], options: DetectOptions) => ColumnProfile['detections'];

/** Which rows a profile reads: all of its table's (a full load), or those an increment changed, and whether it counts distinct values. */
interface ProfileScope {
  readonly rows?: RawBuilder<SqlBool>;
  readonly distinct: boolean;
  /** Rows to read instead of the table's (a before-image). */
  readonly from?: RawBuilder<unknown>;
}

async function profileTable(
  db: Kysely<any>,
  product: { id: string; table: string; typeName: string; fieldOf: ReadonlyMap<string, string> },
  columns: readonly ColumnSpec[],
  options: ProfileOptions,
  detectPersonalData: Detect | null,
  scope: ProfileScope = { distinct: true },
): Promise<ProductProfile> {
  const rules = discoveryRulesOf(options.rules);
  // One scan for every column's counts and bounds.
  const measures = columns.flatMap((column, i) => {
    const ref = sql.ref(column.name);
    return [
      sql`count(${ref})`.as(`c${i}_filled`),
      ...(scope.distinct ? [sql`count(distinct ${ref})`.as(`c${i}_distinct`)] : []),
      ...(isOrdered(column) ? [sql`cast(min(${ref}) as varchar)`.as(`c${i}_min`), sql`cast(max(${ref}) as varchar)`.as(`c${i}_max`)] : []),
      ...(isText(column) ? [sql`min(length(${ref}))`.as(`c${i}_min_length`), sql`max(length(${ref}))`.as(`c${i}_max_length`)] : []),
      ...(isNumber(column) ? [sql`avg(cast(${ref} as double precision))`.as(`c${i}_mean`), sql`sum(cast(${ref} as double precision))`.as(`c${i}_sum`)] : []),
    ];
  });
  // A before-image read under the table's name (the measures name its columns unqualified); typed as a table name for Kysely.
  const source = (scope.from ? scope.from.as(product.table) : product.table) as string;
  const totals = (await db
    .selectFrom(source)
    .select([sql`count(*)`.as('row_count'), ...measures])
    .where(scope.rows ?? sql<SqlBool>`true`)
    .executeTakeFirstOrThrow()) as Record<string, unknown>;
  const rows = count(totals.row_count);
  const profiled: ColumnProfile[] = [];
  // Changed rows: one read of a sample of them for every detected column (each column's own read would scan the table again).
  const detected = columns.filter(isDetected);
  const changedSample =
    scope.rows && detectPersonalData && detected.length > 0
      ? ((await db
          .selectFrom(product.table)
          .select(detected.map((column) => sql<string | null>`cast(${sql.ref(column.name)} as varchar)`.as(column.name)))
          .where(scope.rows)
          .limit(PROFILE_SAMPLE_SIZE)
          .execute()) as Record<string, string | null>[])
      : null;
  for (const [i, column] of columns.entries()) {
    let sample: string[] = [];
    if (changedSample && isDetected(column)) {
      sample = changedSample.flatMap((row) => (row[column.name] === null || row[column.name] === undefined ? [] : [String(row[column.name])]));
    } else if (isDetected(column) && detectPersonalData) {
      const found = await db
        .selectFrom(product.table)
        .select(sql<string>`cast(${sql.ref(column.name)} as varchar)`.as('value'))
        .where(column.name, 'is not', null)
        .where(scope.rows ?? sql<SqlBool>`true`)
        .limit(PROFILE_SAMPLE_SIZE)
        .execute();
      sample = found.map((row) => String(row.value));
    }
    const detections = detectPersonalData ? detectPersonalData(sample, { now: options.now }) : [];
    const field = product.fieldOf.get(column.name) ?? null;
    const fieldPolicy = field ? options.policy.fields.get(`${product.typeName}.${field}`) : undefined;
    const withheld = Boolean(fieldPolicy?.tags.includes('pii') || fieldPolicy?.mask || fieldPolicy?.shadow.mask || personalDataIn({ detections }, rules));
    profiled.push({
      column: column.name,
      field,
      type: column.type,
      nullShare: rows === 0 ? 0 : Math.round(((rows - count(totals[`c${i}_filled`])) / rows) * 10_000) / 10_000,
      distinctCount: count(totals[`c${i}_distinct`]),
      min: withheld ? null : textOrNull(totals[`c${i}_min`]),
      max: withheld ? null : textOrNull(totals[`c${i}_max`]),
      minLength: isText(column) ? (textOrNull(totals[`c${i}_min_length`]) === null ? null : count(totals[`c${i}_min_length`])) : null,
      maxLength: isText(column) ? (textOrNull(totals[`c${i}_max_length`]) === null ? null : count(totals[`c${i}_max_length`])) : null,
      mean: withheld || !isNumber(column) || totals[`c${i}_mean`] === null || totals[`c${i}_mean`] === undefined ? null : Number(Number(totals[`c${i}_mean`]).toPrecision(12)),
      withheld: withheld && isOrdered(column),
      sampled: sample.length,
      detections,
      filledCount: count(totals[`c${i}_filled`]),
      sum: isNumber(column) && totals[`c${i}_sum`] !== null && totals[`c${i}_sum`] !== undefined ? Number(totals[`c${i}_sum`]) : null,
    });
  }
  return { product: product.id, table: product.table, profiledAt: options.now.toISOString(), rows, columns: profiled };
}

/** Two values of a column as profiles keep them (text), compared by the column's type. */
function compareAs(type: string, a: string, b: string): number {
  if (isNumberType(type)) return Number(a) - Number(b);
  return a < b ? -1 : a > b ? 1 : 0; // dates and timestamps: their text sorts as they do
}

/**
 * A table's whole-table measures after an increment, from the last profile's exact counts: minus
 * the changed rows as they were (their before-image), plus them as they are. A bound a changed row
 * held as it was still holds if some row has it now (a common value is found at once; the table
 * is read through only for a value few rows have). Null when it cannot be told so: a last profile
 * without exact counts, or a bound no row has any more (the new one may be anywhere in the table).
 */
async function updatedWhole(db: Kysely<any>, table: string, last: ProductProfile, removed: ProductProfile, added: ProductProfile): Promise<ProductProfile | null> {
  const stillThere = async (condition: RawBuilder<SqlBool>) => (await sql`select 1 as found from ${sql.table(table)} where ${condition} limit 1`.execute(db)).rows.length > 0;
  const rows = last.rows - removed.rows + added.rows;
  const columns: ColumnProfile[] = [];
  for (const [i, column] of last.columns.entries()) {
    const gone = removed.columns[i];
    const come = added.columns[i];
    if (!gone || !come || gone.column !== column.column || column.filledCount === undefined || column.sum === undefined) return null;
    const ref = sql.ref(column.column);
    for (const [held, value] of [
      [gone.min !== null && gone.min === column.min, column.min],
      [gone.max !== null && gone.max === column.max, column.max],
    ] as const) {
      if (held && !(await stillThere(sql<SqlBool>`cast(${ref} as varchar) = ${value}`))) return null;
    }
    for (const [held, value] of [
      [gone.minLength !== null && gone.minLength === column.minLength, column.minLength],
      [gone.maxLength !== null && gone.maxLength === column.maxLength, column.maxLength],
    ] as const) {
      if (held && !(await stillThere(sql<SqlBool>`length(${ref}) = ${value}`))) return null;
    }
    const filled = column.filledCount - (gone.filledCount ?? 0) + (come.filledCount ?? 0);
    const sum = column.sum === null ? null : column.sum - (gone.sum ?? 0) + (come.sum ?? 0);
    const bound = (a: string | null, b: string | null, pick: 1 | -1) => (a === null ? b : b === null ? a : compareAs(column.type, a, b) * pick >= 0 ? a : b);
    const length = (a: number | null, b: number | null, pick: (x: number, y: number) => number) => (a === null ? b : b === null ? a : pick(a, b));
    columns.push({
      ...column,
      nullShare: rows === 0 ? 0 : Math.round(((rows - filled) / rows) * 10_000) / 10_000,
      // Bounds from the last profile's and the added rows' (the last's are null where withheld: kept so).
      min: column.min === null && column.filledCount > 0 ? null : bound(column.min, come.min, -1),
      max: column.max === null && column.filledCount > 0 ? null : bound(column.max, come.max, 1),
      minLength: length(column.minLength, come.minLength, Math.min),
      maxLength: length(column.maxLength, come.maxLength, Math.max),
      mean: sum === null || filled === 0 ? null : Number((sum / filled).toPrecision(12)),
      filledCount: filled,
      sum,
    });
  }
  return { ...last, rows, columns };
}

/**
 * The profiles of a version an incremental load made: a product whose table it did not change keeps
 * its profile; the others are measured on the changed rows (`changedRows`) for the personal-data
 * detectors, whose findings on the new values replace the earlier ones, and for the whole table's
 * rows, null shares, bounds and means: from the last profile's exact counts, minus the changed rows'
 * before-image (`beforeImage`), plus them now, or else by one scan of the table (no distinct count).
 * Distinct counts are counted at full loads: between them a column's is the last full load's, or
 * the changed rows' when more.
 */
export async function profileIncrement(
  domain: Domain<any, any>,
  db: Kysely<any>,
  previous: readonly ProductProfile[],
  changedRows: (table: string, key: string) => RawBuilder<SqlBool> | null,
  options: ProfileOptions,
  beforeImage: (table: string) => RawBuilder<unknown> | null = () => null,
): Promise<ProductProfile[]> {
  const { detectPersonalData } = await import('./pii-detectors.js');
  const profiles: ProductProfile[] = [];
  for (const { spec } of domain.dataProducts) {
    const table = domain.tables.find((candidate) => candidate.name === spec.table);
    if (!table) throw new Error(`${domain.name}.${spec.name}: the domain has no table "${spec.table}"`);
    const id = `${domain.name}.${spec.name}`;
    const before = previous.find((profile) => profile.product === id);
    const rows = changedRows(spec.table, spec.key);
    if (before && rows === null) {
      profiles.push(before);
      continue;
    }
    const product = { id, table: spec.table, typeName: spec.type, fieldOf: new Map(Object.entries(spec.columns as Record<string, string>).map(([field, column]) => [column, field])) };
    const changed = await profileTable(db, product, table.columns, options, detectPersonalData, { rows: rows ?? sql<SqlBool>`true`, distinct: true });
    const image = beforeImage(spec.table);
    let whole: ProductProfile | null = null;
    if (before && image && rows) {
      const removed = await profileTable(db, product, table.columns, options, null, { from: sql`(select * from ${image} as b where b."__present")`, distinct: false });
      whole = await updatedWhole(db, spec.table, before, removed, changed);
    }
    whole ??= await profileTable(db, product, table.columns, options, null, { distinct: false });
    profiles.push({
      ...whole,
      profiledAt: options.now.toISOString(),
      columns: whole.columns.map((column, i) => {
        const found = changed.columns[i]!;
        const last = before?.columns.find((candidate) => candidate.column === column.column);
        const detected = found.sampled > 0 || !last ? found : last;
        const withheld = found.withheld || Boolean(last?.withheld);
        return {
          ...column,
          distinctCount: Math.min(whole.rows, Math.max(last?.distinctCount ?? 0, found.distinctCount)),
          ...(withheld ? { min: null, max: null, mean: null } : {}),
          withheld,
          sampled: detected.sampled,
          detections: detected.detections,
        };
      }),
    });
  }
  return profiles;
}

/** Every data product's profile, on a warehouse version (the one being loaded). */
export async function profileDomain(domain: Domain<any, any>, db: Kysely<any>, options: ProfileOptions): Promise<ProductProfile[]> {
  // Loaded with the first load only: a start that loads nothing never reads the name lists.
  const { detectPersonalData } = await import('./pii-detectors.js');
  const profiles: ProductProfile[] = [];
  for (const { spec } of domain.dataProducts) {
    const table = domain.tables.find((candidate) => candidate.name === spec.table);
    if (!table) throw new Error(`${domain.name}.${spec.name}: the domain has no table "${spec.table}"`);
    const fieldOf = new Map(Object.entries(spec.columns as Record<string, string>).map(([field, column]) => [column, field]));
    profiles.push(await profileTable(db, { id: `${domain.name}.${spec.name}`, table: spec.table, typeName: spec.type, fieldOf }, table.columns, options, detectPersonalData));
  }
  return profiles;
}

interface ProfileRow {
  product: string;
  table_name: string;
  profiled_at: string;
  row_count: number;
  position: number;
  column_name: string;
  field: string | null;
  column_type: string;
  null_share: number;
  distinct_count: number;
  min_value: string | null;
  max_value: string | null;
  min_length: number | null;
  max_length: number | null;
  /** Absent in a version profiled before means were kept. */
  mean_value?: number | null;
  /** Absent in a version profiled before exact counts were kept. */
  filled_count?: number | string | null;
  sum_value?: number | null;
  withheld: boolean;
  sampled: number;
  detections: string;
}

/** Stores a load's profiles in the warehouse version being built. */
export async function writeProfiles(db: Kysely<any>, profiles: readonly ProductProfile[]): Promise<void> {
  const store = db as Kysely<{ _column_profiles: ProfileRow }>;
  await store.schema
    .createTable(PROFILES_TABLE)
    .addColumn('product', 'varchar', (c) => c.notNull())
    .addColumn('table_name', 'varchar', (c) => c.notNull())
    .addColumn('profiled_at', 'varchar', (c) => c.notNull())
    .addColumn('row_count', 'bigint', (c) => c.notNull())
    .addColumn('position', 'integer', (c) => c.notNull())
    .addColumn('column_name', 'varchar', (c) => c.notNull())
    .addColumn('field', 'varchar')
    .addColumn('column_type', 'varchar', (c) => c.notNull())
    .addColumn('null_share', 'double precision', (c) => c.notNull())
    .addColumn('distinct_count', 'bigint', (c) => c.notNull())
    .addColumn('min_value', 'varchar')
    .addColumn('max_value', 'varchar')
    .addColumn('min_length', 'integer')
    .addColumn('max_length', 'integer')
    .addColumn('mean_value', 'double precision')
    .addColumn('filled_count', 'bigint')
    .addColumn('sum_value', 'double precision')
    .addColumn('withheld', 'boolean', (c) => c.notNull())
    .addColumn('sampled', 'integer', (c) => c.notNull())
    .addColumn('detections', 'varchar', (c) => c.notNull())
    .execute();
  const rows = profiles.flatMap((profile) =>
    profile.columns.map((column, position) => ({
      product: profile.product,
      table_name: profile.table,
      profiled_at: profile.profiledAt,
      row_count: profile.rows,
      position,
      column_name: column.column,
      field: column.field,
      column_type: column.type,
      null_share: column.nullShare,
      distinct_count: column.distinctCount,
      min_value: column.min,
      max_value: column.max,
      min_length: column.minLength,
      max_length: column.maxLength,
      mean_value: column.mean,
      filled_count: column.filledCount ?? null,
      sum_value: column.sum ?? null,
      withheld: column.withheld,
      sampled: column.sampled,
      detections: JSON.stringify(column.detections),
    })),
  );
  if (rows.length > 0) await store.insertInto(PROFILES_TABLE).values(rows).execute();
}

/** The profiles a warehouse version holds (none for one loaded before profiling). */
export async function readProfiles(db: Kysely<any>): Promise<ProductProfile[]> {
  let rows: ProfileRow[];
  try {
    rows = await (db as Kysely<{ _column_profiles: ProfileRow }>).selectFrom(PROFILES_TABLE).selectAll().orderBy('product').orderBy('position').execute();
  } catch {
    return [];
  }
  const profiles = new Map<string, ProductProfile & { columns: ColumnProfile[] }>();
  for (const row of rows) {
    let profile = profiles.get(row.product);
    if (!profile) {
      profile = { product: row.product, table: row.table_name, profiledAt: row.profiled_at, rows: count(row.row_count), columns: [] };
      profiles.set(row.product, profile);
    }
    profile.columns.push({
      column: row.column_name,
      field: row.field,
      type: row.column_type,
      nullShare: Number(row.null_share),
      distinctCount: count(row.distinct_count),
      min: row.min_value,
      max: row.max_value,
      minLength: row.min_length === null ? null : count(row.min_length),
      maxLength: row.max_length === null ? null : count(row.max_length),
      mean: row.mean_value === null || row.mean_value === undefined ? null : Number(row.mean_value),
      ...(row.filled_count === null || row.filled_count === undefined ? {} : { filledCount: count(row.filled_count), sum: row.sum_value === null || row.sum_value === undefined ? null : Number(row.sum_value) }),
      withheld: Boolean(row.withheld),
      sampled: count(row.sampled),
      detections: JSON.parse(row.detections),
    });
  }
  return [...profiles.values()];
}

/** The profiles of the warehouse at a URL, read-only (none when it is missing or holds none). */
export function profilesAt(url: string): Promise<ProductProfile[]> {
  return readWarehouseAt(url, readProfiles, []);
}

/** A load's personal-data findings in one line: `customers.customers: email (email 100%), …`, or `none`. */
export function summarizeProfiles(profiles: readonly ProductProfile[], rules = DEFAULT_DISCOVERY_RULES): string {
  const found = profiles.flatMap((profile) => {
    const columns = profile.columns.flatMap((column) => {
      const detection = personalDataIn(column, rules);
      return detection ? [`${column.column} (${detection.detector} ${Math.round(detection.share * 100)}%)`] : [];
    });
    return columns.length > 0 ? [`${profile.product}: ${columns.join(', ')}`] : [];
  });
  return found.length > 0 ? found.join('; ') : 'none';
}
