/**
 * Filter conditions shared by every domain's list arguments, as bound SQL expressions.
 */
import { sql, type Expression, type SelectQueryBuilder, type SqlBool } from 'kysely';
import type { Decision, RowFilter } from '../../policy/decide.js';
import type { MaskRule } from '../../policy/policy-index.js';
import { codedError } from '../../policy/errors.js';
import type { DialectSql } from './warehouse/dialects.js';

/** The most values one list filter may hold (a guard against very long IN lists). */
export const MAX_FILTER_VALUES = 100;
/** The longest text a substring search accepts. */
export const MAX_SEARCH_LENGTH = 100;

/** `column IN (values…)`; an empty list matches nothing. */
export function anyOf(column: string, values: readonly (string | number)[], argument: string): Expression<SqlBool> {
  checkListLength(values, argument);
  if (values.length === 0) return sql<SqlBool>`false`;
  return sql<SqlBool>`${sql.ref(column)} in (${sql.join(values)})`;
}

/** As `anyOf`, for a column of few distinct values (a status, a region): see `DialectSql.isOneOfCategories`. */
export function anyOfCategories(column: string, values: readonly (string | number)[], argument: string, dialect: DialectSql): Expression<SqlBool> {
  checkListLength(values, argument);
  if (values.length === 0) return sql<SqlBool>`false`;
  return dialect.isOneOfCategories(column, values);
}

function checkListLength(values: readonly unknown[], argument: string): void {
  if (values.length > MAX_FILTER_VALUES) {
    throw codedError('INVALID_ARGUMENT', `"${argument}" may list at most ${MAX_FILTER_VALUES} values, got ${values.length}.`, {
      argument,
    });
  }
}

/** Case-insensitive substring match, as the warehouse's dialect spells it; LIKE wildcards in the text are matched literally. */
export function containsText(column: string, text: string, argument: string, dialect: DialectSql): Expression<SqlBool> {
  if (text.length > MAX_SEARCH_LENGTH) {
    throw codedError('INVALID_ARGUMENT', `"${argument}" may be at most ${MAX_SEARCH_LENGTH} characters long.`, {
      argument,
    });
  }
  const pattern = `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  return dialect.matchesIgnoringCase(column, pattern);
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
export function rowCondition(filter: RowFilter, dialect: DialectSql, table?: string): Expression<SqlBool> | null {
  if (filter.kind === 'all') return null;
  if (filter.values.length === 0) return sql<SqlBool>`false`;
  return dialect.isOneOfCategories(table ? `${table}.${filter.column}` : filter.column, filter.values);
}

/** A field of the schema, `Type.field`. */
export type Coordinate = `${string}.${string}`;

/** What a repository asks of the request's policy: row filters, and field decisions for guards. */
export interface RequestAccess {
  rows(typeName: string): RowFilter;
  field(typeName: string, fieldName: string): Decision;
  /** Notes, for the audit, an argument that a rule in shadow would refuse once enforced. */
  wouldRefuse?(coordinate: Coordinate, argument: string, rule: string): void;
}

/** A bound an argument puts on a field's values, for masks that show the field coarsely. */
export interface Bound {
  readonly value: string | number;
  /** `from`: values at or after it; `to-inclusive`: at or before it; `to-exclusive`: before it. */
  readonly edge: 'from' | 'to-inclusive' | 'to-exclusive';
}

const YEAR_START = /^\d{4}-01-01(T00:00(:00(\.0+)?)?(Z|[+-]00:00)?)?$/;
const YEAR_END = /^\d{4}-12-31$/;

/**
 * Whether a bound reveals no more than the mask shows: a `DATE_YEAR` mask shows the year, so a bound
 * on a year's edge (`from: "2024-01-01"`, `to: "2025-01-01"`) tells nothing the answer does not.
 * Any other use of a masked field (its values in a list filter, a search, an order, a group) does.
 */
function maskAdmits(mask: MaskRule, bound: Bound | undefined): boolean {
  if (!bound || mask.strategy !== 'DATE_YEAR' || typeof bound.value !== 'string') return false;
  return bound.edge === 'to-inclusive' ? YEAR_END.test(bound.value) : YEAR_START.test(bound.value);
}

/**
 * Refuses an argument that filters, orders or groups by a field the principal sees masked or not at
 * all: which rows match, or their order, would reveal what masking or access control hides. A
 * cursor holds the sort values of its ordering, so refusing the ordering also keeps masked values
 * out of cursors. Where a rule is in shadow, the argument is allowed and the audit notes that the
 * rule, once enforced, would refuse it.
 */
export function guardArgument(access: RequestAccess, coordinate: Coordinate, argument: string, bound?: Bound): void {
  const [typeName, fieldName] = coordinate.split('.') as [string, string];
  const decision = access.field(typeName, fieldName);
  const hidden = !decision.allowed ? 'cannot read' : decision.mask && !maskAdmits(decision.mask, bound) ? `see masked (${decision.mask.strategy})` : null;
  if (hidden) {
    // A bound that fails only for not being on a year's edge: say which bounds would do.
    const coarse = bound && decision.allowed && decision.mask?.strategy === 'DATE_YEAR' ? ' (bounds on a year\'s first or last day are allowed)' : '';
    throw codedError('ARGUMENT_NOT_ALLOWED', `"${argument}" filters or orders by ${coordinate}, which you ${hidden}; leave it out${coarse}.`, {
      argument,
      coordinate,
    });
  }
  if (!decision.allowed) return;
  const { wouldDeny, wouldMask } = decision.shadow;
  if (wouldDeny) access.wouldRefuse?.(coordinate, argument, decision.policy.rule);
  else if (wouldMask && !maskAdmits(wouldMask, bound)) access.wouldRefuse?.(coordinate, argument, wouldMask.rule);
}

/** The field an argument reads, and the bound it puts on it when it is one. */
export interface ArgumentField {
  readonly field: Coordinate;
  readonly edge?: Bound['edge'];
}

/** A list's arguments as `guardArguments` names them: `filter.<key>`, `from`, `to`. */
export function listArguments(args: { readonly filter?: object | null; readonly from?: unknown; readonly to?: unknown }): Record<string, unknown> {
  const flat: Record<string, unknown> = { from: args.from, to: args.to };
  for (const [key, value] of Object.entries(args.filter ?? {})) flat[`filter.${key}`] = value;
  return flat;
}

/**
 * Guards every argument of a list that is given: each key of `fields` names an argument (`filter.
 * country`, `from`, …) and the field it reads. An argument given without an entry fails closed:
 * a filter added to the schema but not here is an error, never an unguarded read.
 */
export function guardArguments(access: RequestAccess, given: Readonly<Record<string, unknown>>, fields: Readonly<Record<string, ArgumentField>>): void {
  for (const [argument, value] of Object.entries(given)) {
    if (value == null) continue;
    const entry = fields[argument];
    if (!entry) throw new Error(`No field is declared for the argument "${argument}": the argument guard cannot check it.`);
    guardArgument(access, entry.field, argument, entry.edge && (typeof value === 'string' || typeof value === 'number') ? { value, edge: entry.edge } : undefined);
  }
}
