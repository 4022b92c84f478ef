/**
 * What a scaffold proposes from a source's profile: safe names for its columns and fields, their
 * warehouse and GraphQL types, a key, the columns that hold personal data (the same detectors the
 * loads' profiles run, and names that say so), their classification and masks under the governance
 * rules, a row policy on a `region` column, and default quality rules.
 *
 * The profile reads the first rows of the source (`SAMPLE_ROWS`); when the source has more, the
 * proposal says so (`exact: false`) and stays on the safe side: every column but the key may be
 * empty. The first load's quality gate then checks the whole source (the key not null and unique).
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { discoveryRulesOf, personalDataIn, type Detection } from '../../policy/discovery.js';
import type { GovernanceRules } from '../../policy/rules.js';
import { detectPersonalData } from '../kit/pii-detectors.js';
import type { ColumnType } from '../kit/warehouse/tables.js';
import { ScaffoldError } from './codes.js';
import { reading } from './source.js';

/** Rows of the source the profile reads. */
export const SAMPLE_ROWS = 100_000;
/** Values of a text column the detectors look at (as the loads' profiles do). */
const DETECTOR_SAMPLE = 1_000;
/** A text column with at most this many values, repeated, gets an accepted-values rule. */
const ACCEPTED_VALUES_MAX = 20;

export interface ProposedColumn {
  /** Its position in the source. */
  readonly position: number;
  /** As the source names it. */
  readonly source: string;
  /** The warehouse column (lower snake_case). */
  readonly column: string;
  /** The GraphQL field (lowerCamelCase). */
  readonly field: string;
  readonly renamed: boolean;
  readonly type: ColumnType;
  /** The GraphQL type, without `!`. */
  readonly graphqlType: 'ID' | 'String' | 'Int' | 'Float' | 'Boolean' | 'LocalDate' | 'DateTime';
  readonly nullable: boolean;
  /** How landing writes it, when not as it comes (SQL over `c<position>`). */
  readonly landAs: string | null;
  /** Personal data: why (a detector and its share, or its name). */
  readonly pii: { readonly reason: string; readonly detection: Detection | null } | null;
  /** A pii column with too few values for a HASH mask: REDACT instead. */
  readonly redact: boolean;
  /** Its values, when few and repeated (an accepted-values rule). */
  readonly acceptedValues: readonly string[] | null;
  readonly distinct: number;
}

export interface Proposal {
  readonly columns: readonly ProposedColumn[];
  readonly key: ProposedColumn;
  /** The rows profiled, and whether they are the whole source. */
  readonly rowsProfiled: number;
  readonly exact: boolean;
  /** The column a row policy filters on (`regions` claim), if any. */
  readonly rowPolicy: ProposedColumn | null;
}

/** Characters that end or comment a SQL statement or identifier: refused, never renamed away. */
const UNSAFE = /["'`;\\]|--|\/\*|\*\/|[\u0000-\u001f\u007f]/;

/** Lower snake_case: `First Name` → `first_name`, `orderID` → `order_id`, `2nd line` → `c_2nd_line`. */
export function columnNameOf(source: string, position: number): string {
  const snake = source
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/ß/g, 'ss')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 63);
  if (snake === '') return `column_${position + 1}`;
  return /^[0-9]/.test(snake) ? `c_${snake}`.slice(0, 63) : snake;
}

/** lowerCamelCase of a snake_case name: `first_name` → `firstName`. */
export function fieldNameOf(column: string): string {
  return column.replace(/_+([a-z0-9])/g, (_, next: string) => next.toUpperCase()).replace(/_/g, '');
}

/** The names, made safe; refuses unsafe characters and names that collide. */
export function namesOf(sources: readonly string[]): { column: string; field: string; renamed: boolean }[] {
  const unsafe = sources.filter((name) => UNSAFE.test(name));
  if (unsafe.length > 0) {
    throw new ScaffoldError('SCAFFOLD_UNSAFE_COLUMN_NAME', `Column names with characters that end or comment SQL: ${unsafe.slice(0, 5).map((name) => JSON.stringify(name.slice(0, 60))).join(', ')}${unsafe.length > 5 ? ` and ${unsafe.length - 5} more` : ''}. Rename them in the source.`);
  }
  const seen = new Map<string, number>();
  for (const [i, name] of sources.entries()) {
    const before = seen.get(name);
    if (before !== undefined) throw new ScaffoldError('SCAFFOLD_DUPLICATE_COLUMN', `The column name ${JSON.stringify(name.slice(0, 60))} appears twice (columns ${before + 1} and ${i + 1}).`);
    seen.set(name, i);
  }
  const names = sources.map((source, i) => {
    const column = columnNameOf(source, i);
    return { column, field: fieldNameOf(column), renamed: column !== source };
  });
  for (const what of ['column', 'field'] as const) {
    const taken = new Map<string, number>();
    for (const [i, name] of names.entries()) {
      const before = taken.get(name[what]);
      if (before !== undefined) {
        throw new ScaffoldError('SCAFFOLD_DUPLICATE_COLUMN', `The columns ${JSON.stringify(sources[before])} and ${JSON.stringify(sources[i])} would both be named ${name[what]}. Rename one in the source.`);
      }
      taken.set(name[what], i);
    }
  }
  return names;
}

/** Names that say a column holds personal data, whatever its values look like. */
const PERSONAL_NAME = /(^|_)(e_?mail|phone|mobile|ssn|social_security|passport|birth_?date|date_of_birth|dob|first_name|last_name|full_name|surname|given_name|street|address|postcode|postal_code|zip|iban|card_number|tax_id|national_id)(_|$)/;

const INT32 = 2 ** 31 - 1;

async function all(connection: DuckDBConnection, query: string): Promise<Record<string, unknown>[]> {
  return (await connection.runAndReadAll(query)).getRowObjectsJson() as Record<string, unknown>[];
}

/** The warehouse and GraphQL types of a DuckDB type (and how landing converts it). */
function typesOf(duckType: string, stats: { min: number | null; max: number | null; scale: number }, position: number): Pick<ProposedColumn, 'type' | 'graphqlType' | 'landAs'> {
  const base = duckType.toUpperCase();
  const ref = `c${position}`;
  if (base === 'BOOLEAN') return { type: 'boolean', graphqlType: 'Boolean', landAs: null };
  if (['TINYINT', 'SMALLINT', 'INTEGER', 'UTINYINT', 'USMALLINT', 'UINTEGER', 'BIGINT', 'UBIGINT', 'HUGEINT', 'UHUGEINT'].includes(base)) {
    const fits = stats.min === null || (stats.min >= -INT32 && (stats.max ?? 0) <= INT32);
    return fits ? { type: 'integer', graphqlType: 'Int', landAs: null } : { type: 'decimal(38, 0)', graphqlType: 'Float', landAs: null };
  }
  const decimal = /^DECIMAL\((\d+),\s*(\d+)\)$/.exec(base);
  if (decimal) return { type: `decimal(${Number(decimal[1])}, ${Number(decimal[2])})`, graphqlType: 'Float', landAs: null };
  if (['DOUBLE', 'FLOAT', 'REAL'].includes(base)) {
    const scale = Math.min(Math.max(stats.scale, 2), 6);
    return { type: `decimal(18, ${scale})`, graphqlType: 'Float', landAs: null };
  }
  if (base === 'DATE') return { type: 'date', graphqlType: 'LocalDate', landAs: null };
  if (base === 'TIMESTAMP WITH TIME ZONE' || base === 'TIMESTAMPTZ') return { type: 'timestamp', graphqlType: 'DateTime', landAs: `strftime(timezone('UTC', ${ref}), '%Y-%m-%d %H:%M:%S.%f')` };
  if (base.startsWith('TIMESTAMP')) return { type: 'timestamp', graphqlType: 'DateTime', landAs: null };
  if (base === 'VARCHAR') return { type: 'varchar', graphqlType: 'String', landAs: null };
  // Times, intervals, UUIDs, lists, structs, JSON: served as their text.
  return { type: 'varchar', graphqlType: 'String', landAs: `cast(${ref} AS VARCHAR)` };
}

/** The names of the preferred key columns, best first. */
function keyPreference(column: string, product: string): number {
  const singular = product.replace(/s$/, '');
  if (column === 'id') return 0;
  if (column === `${singular}_id` || column === `${product}_id`) return 1;
  if (/(^|_)(id|key|code|number|no)$/.test(column)) return 2;
  return 3;
}

export interface ProposeOptions {
  readonly sources: readonly string[];
  readonly rowsProfiled: number;
  readonly exact: boolean;
  /** The table's name (for preferring `<table>_id`). */
  readonly product: string;
  readonly key?: string;
  readonly rowPolicy?: string;
  readonly rules: GovernanceRules;
  readonly now: Date;
}

/** Profiles the `sample` table (columns `c0`, `c1`, …) and proposes the product. */
export async function propose(connection: DuckDBConnection, options: ProposeOptions): Promise<Proposal> {
  const names = namesOf(options.sources);
  if (options.rowsProfiled === 0) throw new ScaffoldError('SCAFFOLD_SOURCE_EMPTY', 'The source has no rows: nothing to profile and no key to find.');
  const described = await reading('The source', () => all(connection, 'DESCRIBE sample'));
  const typeOf = new Map(described.map((row) => [String(row.column_name), String(row.column_type)]));
  // One scan for every column's counts and bounds.
  const measures = options.sources.flatMap((_, i) => {
    const ref = `c${i}`;
    const type = typeOf.get(ref) ?? 'VARCHAR';
    const numeric = /INT|DECIMAL|DOUBLE|FLOAT|REAL/.test(type);
    return [
      `count(${ref}) AS ${ref}_filled`,
      `count(DISTINCT ${ref}) AS ${ref}_distinct`,
      ...(numeric ? [`cast(min(${ref}) AS DOUBLE) AS ${ref}_min`, `cast(max(${ref}) AS DOUBLE) AS ${ref}_max`] : []),
      ...(/DOUBLE|FLOAT|REAL/.test(type) ? [`max(length(regexp_extract(cast(${ref} AS VARCHAR), '\\.(\\d+)$', 1))) AS ${ref}_scale`] : []),
    ];
  });
  const [totals = {}] = await reading('The source', () => all(connection, `SELECT ${measures.join(', ')} FROM sample`));
  const number = (value: unknown) => (value === null || value === undefined ? null : Number(value));
  const discovery = discoveryRulesOf(options.rules);
  const columns: ProposedColumn[] = [];
  for (const [i, source] of options.sources.entries()) {
    const ref = `c${i}`;
    const duckType = typeOf.get(ref) ?? 'VARCHAR';
    const filled = number(totals[`${ref}_filled`]) ?? 0;
    const distinct = number(totals[`${ref}_distinct`]) ?? 0;
    const types = typesOf(duckType, { min: number(totals[`${ref}_min`]), max: number(totals[`${ref}_max`]), scale: number(totals[`${ref}_scale`]) ?? 0 }, i);
    const { column, field, renamed } = names[i]!;
    let pii: ProposedColumn['pii'] = null;
    let acceptedValues: string[] | null = null;
    if (types.type === 'varchar' || types.type === 'date') {
      const values = (await all(connection, `SELECT cast(${ref} AS VARCHAR) AS v FROM sample WHERE ${ref} IS NOT NULL LIMIT ${DETECTOR_SAMPLE}`)).map((row) => String(row.v));
      const detection = personalDataIn({ detections: detectPersonalData(values, { now: options.now }) }, discovery);
      if (detection) pii = { reason: `${Math.round(detection.share * 100)}% of its values look like ${detection.detector}`, detection };
      else if (PERSONAL_NAME.test(column)) pii = { reason: `its name (${column}) says so`, detection: null };
      if (!pii && types.type === 'varchar' && distinct > 0 && distinct <= ACCEPTED_VALUES_MAX && distinct * 2 <= filled) {
        const found = (await all(connection, `SELECT DISTINCT ${ref} AS v FROM sample WHERE ${ref} IS NOT NULL ORDER BY 1`)).map((row) => String(row.v));
        if (found.every((value) => value.length <= 64)) acceptedValues = found;
      }
    }
    columns.push({
      position: i,
      source,
      column,
      field,
      renamed,
      ...types,
      nullable: filled < options.rowsProfiled || !options.exact,
      pii,
      redact: pii !== null && distinct < discovery.hashMinimumDistinct,
      acceptedValues,
      distinct,
    });
  }
  const key = chooseKey(columns, options);
  const keyed = columns.map((column) => (column === key ? { ...column, type: 'varchar' as const, graphqlType: 'ID' as const, nullable: false, acceptedValues: null, landAs: column.landAs ?? (column.type === 'varchar' ? null : `cast(c${column.position} AS VARCHAR)`) } : column));
  const rowPolicyName = options.rowPolicy ?? (keyed.some((column) => column.column === 'region') ? 'region' : undefined);
  const rowPolicy = rowPolicyName === undefined ? null : (keyed.find((column) => column.column === rowPolicyName || column.source === rowPolicyName) ?? null);
  if (rowPolicyName !== undefined && (!rowPolicy || rowPolicy.type !== 'varchar')) {
    throw new ScaffoldError('SCAFFOLD_USAGE', `--row-policy names "${rowPolicyName.slice(0, 60)}", which is not a text column of the source.`);
  }
  return { columns: keyed, key: keyed[columns.indexOf(key)]!, rowsProfiled: options.rowsProfiled, exact: options.exact, rowPolicy };
}

function chooseKey(columns: readonly ProposedColumn[], options: ProposeOptions): ProposedColumn {
  // A count of distinct values leaves out nulls: as many as the rows means filled and unique.
  const unique = (column: ProposedColumn) => column.distinct === options.rowsProfiled;
  const keyType = (column: ProposedColumn) => column.type === 'varchar' || column.type === 'integer' || column.type === 'decimal(38, 0)';
  if (options.key !== undefined) {
    const named = columns.find((column) => column.source === options.key || column.column === options.key);
    if (!named) throw new ScaffoldError('SCAFFOLD_KEY_NOT_UNIQUE', `--key names "${options.key.slice(0, 60)}", which is not a column of the source (columns: ${columns.map((c) => c.source).slice(0, 20).join(', ')}).`);
    if (!unique(named)) {
      throw new ScaffoldError('SCAFFOLD_KEY_NOT_UNIQUE', `--key ${named.source}: ${options.rowsProfiled - named.distinct} of the ${options.rowsProfiled} rows read repeat or leave it empty.`);
    }
    return named;
  }
  const candidates = columns.filter((column) => unique(column) && keyType(column) && column.pii === null);
  if (candidates.length === 0) {
    throw new ScaffoldError('SCAFFOLD_NO_KEY', `No column of the source is filled and unique in the ${options.rowsProfiled} rows read (and not personal data). Name one with --key <column>, or add an id column to the source.`);
  }
  return [...candidates].sort((a, b) => keyPreference(a.column, options.product) - keyPreference(b.column, options.product) || a.position - b.position)[0]!;
}

