/**
 * Filter conditions shared by every domain's list arguments, as bound SQL expressions.
 */
import { sql, type Expression, type SelectQueryBuilder, type SqlBool } from 'kysely';
import type { Decision, RowFilter } from '../../policy/decide.js';
import { codedError } from '../../policy/errors.js';

/** The most values one list filter may hold (a guard against very long IN lists). */
export const MAX_FILTER_VALUES = 100;
/** The longest text a substring search accepts. */
export const MAX_SEARCH_LENGTH = 100;

/** `column IN (values…)`; an empty list matches nothing. */
export function anyOf(column: string, values: readonly (string | number)[], argument: string): Expression<SqlBool> {
  if (values.length > MAX_FILTER_VALUES) {
    throw codedError('INVALID_ARGUMENT', `"${argument}" may list at most ${MAX_FILTER_VALUES} values, got ${values.length}.`, {
      argument,
    });
  }
  if (values.length === 0) return sql<SqlBool>`false`;
  return sql<SqlBool>`${sql.ref(column)} in (${sql.join(values)})`;
}

/** Case-insensitive substring match; LIKE wildcards in the text are matched literally. */
export function containsText(column: string, text: string, argument: string): Expression<SqlBool> {
  if (text.length > MAX_SEARCH_LENGTH) {
    throw codedError('INVALID_ARGUMENT', `"${argument}" may be at most ${MAX_SEARCH_LENGTH} characters long.`, {
      argument,
    });
  }
  const pattern = `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  return sql<SqlBool>`${sql.ref(column)} ilike ${pattern} escape '\\'`;
}

/** `column >= value` (inclusive lower bound), with the value cast to the column's type. */
export function atLeast(column: string, value: string | number, cast?: 'date' | 'timestamp'): Expression<SqlBool> {
  const bound = cast ? sql`cast(${value} as ${sql.raw(cast)})` : sql`${value}`;
  return sql<SqlBool>`${sql.ref(column)} >= ${bound}`;
}

/** `column <= value` (inclusive upper bound), with the value cast to the column's type. */
export function atMost(column: string, value: string | number, cast?: 'date' | 'timestamp'): Expression<SqlBool> {
  const bound = cast ? sql`cast(${value} as ${sql.raw(cast)})` : sql`${value}`;
  return sql<SqlBool>`${sql.ref(column)} <= ${bound}`;
}

/**
 * The `from` (inclusive) and `to` (exclusive) time arguments of a data product's lists, on its time
 * column: the half-open window BI tools expect, so that consecutive windows never count a row twice.
 */
export function timeWindow(column: string, window: { from?: string | null; to?: string | null }, cast: 'date' | 'timestamp'): Expression<SqlBool>[] {
  const conditions: Expression<SqlBool>[] = [];
  if (window.from != null) conditions.push(atLeast(column, window.from, cast));
  if (window.to != null) conditions.push(sql<SqlBool>`${sql.ref(column)} < cast(${window.to} as ${sql.raw(cast)})`);
  return conditions;
}

// Builders are typed per table; adding WHERE clauses keeps whatever type the caller built.
type AnySelect = SelectQueryBuilder<any, any, any>;

/** Adds every condition as a WHERE clause (AND). */
export function whereAll<QB extends AnySelect>(query: QB, conditions: readonly Expression<SqlBool>[]): QB {
  return conditions.reduce((q, condition) => q.where(condition) as QB, query);
}

/** `SELECT count(*)` of a query's rows. */
export async function countRows(query: AnySelect): Promise<number> {
  const row = await query.select((eb) => eb.fn.countAll<number>().as('count')).executeTakeFirstOrThrow();
  return Number(row.count);
}

/**
 * The row policy of a type as a WHERE condition for its table (null: every row), so that lists,
 * counts, aggregates and lookups never see a row outside it. No claim values match nothing.
 */
export function rowCondition(filter: RowFilter, table?: string): Expression<SqlBool> | null {
  if (filter.kind === 'all') return null;
  if (filter.values.length === 0) return sql<SqlBool>`false`;
  const column = table ? sql.ref(`${table}.${filter.column}`) : sql.ref(filter.column);
  return sql<SqlBool>`${column} in (${sql.join(filter.values)})`;
}

/** What a repository asks of the request's policy: row filters, and field decisions for guards. */
export interface RequestAccess {
  rows(typeName: string): RowFilter;
  field(typeName: string, fieldName: string): Decision;
}

/**
 * Refuses an argument that filters or orders by a field the principal sees masked or not at all:
 * which rows match, or their order, would reveal what masking or access control hides.
 */
export function guardArgument(access: RequestAccess, coordinate: `${string}.${string}`, argument: string): void {
  const [typeName, fieldName] = coordinate.split('.') as [string, string];
  const decision = access.field(typeName, fieldName);
  const hidden = !decision.allowed ? 'cannot read' : decision.mask ? `see masked (${decision.mask.strategy})` : null;
  if (hidden) {
    throw codedError('ARGUMENT_NOT_ALLOWED', `"${argument}" filters or orders by ${coordinate}, which you ${hidden}; leave it out.`, {
      argument,
      coordinate,
    });
  }
}
