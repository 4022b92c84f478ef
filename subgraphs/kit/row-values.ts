/**
 * Row filters that keep every row, left out of the SQL.
 *
 * A row policy is `column IN (the principal's claim values)`. On a warehouse whose data cannot
 * change while it is served (`Warehouse.immutable`), the values each row-policy column holds are
 * read once at start; a principal granted every one of them, on a column without NULLs, passes
 * every row, and the condition is dropped instead of evaluated on each row of each query (an
 * analyst of every region: the answers are the same, the reads are not slowed by the filter). Any
 * other principal, and any warehouse that may change (PostgreSQL), keeps the condition.
 */
import { sql } from 'kysely';
import type { RowFilter } from '../../policy/decide.js';
import type { PolicyIndex } from '../../policy/policy-index.js';
import type { Warehouse } from './warehouse/warehouse.js';

/** A column with more distinct values than this keeps its condition (it is not a category). */
const MAX_VALUES = 1_000;

/** The values of each type's row-policy column, by type name: only columns whose every value is a text. */
export type RowPolicyValues = ReadonlyMap<string, ReadonlySet<string>>;

export async function rowPolicyValuesOf(
  warehouse: Warehouse<any>,
  products: readonly { readonly type: string; readonly table: string }[],
  policy: PolicyIndex,
): Promise<RowPolicyValues> {
  const found = new Map<string, ReadonlySet<string>>();
  if (!warehouse.immutable) return found;
  // A type read from two tables would need both: it keeps its condition.
  const types = products.map(({ type }) => type);
  for (const { type, table } of products) {
    const rowPolicy = policy.rowPolicy(type);
    if (!rowPolicy || types.indexOf(type) !== types.lastIndexOf(type)) continue;
    let rows: { v: unknown }[];
    try {
      ({ rows } = await sql<{ v: unknown }>`select distinct ${sql.ref(rowPolicy.column)} as v from ${sql.table(table)} limit ${MAX_VALUES + 1}`.execute(warehouse.db));
    } catch {
      continue; // unread, it keeps its condition (the serving reads will say what is wrong)
    }
    if (rows.length > MAX_VALUES || rows.some(({ v }) => typeof v !== 'string')) continue; // a NULL, or values that are not texts
    found.set(type, new Set(rows.map(({ v }) => v as string)));
  }
  return found;
}

/** The filter as it is, or every row when it grants every value the column holds. */
export function withoutFullGrant(filter: RowFilter, held: ReadonlySet<string> | undefined): RowFilter {
  if (filter.kind !== 'match' || !held) return filter;
  for (const value of held) if (!filter.values.includes(value)) return filter;
  return { kind: 'all' };
}
