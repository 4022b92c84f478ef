/**
 * Relay-style connections over the warehouse, paged in SQL.
 *
 * Paging is keyset-based: a cursor holds the ordering's name and the sort values of the row it
 * points at, and the next page is `WHERE (sort…, id) > (cursor values) ORDER BY sort…, id LIMIT n+1`.
 * Walking a connection therefore yields every row exactly once, in order, and a page costs the same
 * wherever it is in the list. Cursors are validated before they reach SQL.
 */
import { sql, type Expression, type Kysely, type SelectQueryBuilder, type SqlBool } from 'kysely';
import { codedError } from '../../policy/errors.js';
import { guardArgument, type Coordinate, type RequestAccess } from './filters.js';
import type { WarehouseValue } from './warehouse/warehouse.js';

/** Page size when `first` is not given. */
export const DEFAULT_PAGE_SIZE = 20;
/** The largest `first` a connection accepts (documented in every connection field's description). */
export const MAX_PAGE_SIZE = 500;
const MAX_CURSOR_LENGTH = 1024;

export interface SortColumn {
  /** The column, unqualified: it is also the row's key for this value. */
  readonly column: string;
  /** How a cursor value is cast back to the column's type when bound as a parameter. */
  readonly cast?: 'date' | 'timestamp';
  /** The column holds numbers: a cursor's value for it must be a number (else it is text). */
  readonly numeric?: true;
  /**
   * The field whose values the column holds: ordering by it (and so its cursors) is refused to a
   * principal who sees that field masked or cannot read it.
   */
  readonly field: Coordinate;
}

export interface Ordering {
  /** A stable name written into cursors, e.g. `Customer.SIGNUP_DATE.DESC`. */
  readonly key: string;
  /** Sort columns; the last one must be unique (the primary key), so the order is total. */
  readonly columns: readonly SortColumn[];
  readonly direction: 'asc' | 'desc';
}

export interface PageArgs {
  readonly first?: number | null;
  readonly after?: string | null;
}

export interface PageRequest {
  readonly ordering: Ordering;
  readonly limit: number;
  /** The sort values of the row the page starts after, or null for the first page. */
  readonly after: readonly (string | number)[] | null;
}

type Row = Record<string, WarehouseValue>;

export interface Edge<R> {
  readonly cursor: string;
  readonly node: R;
}

export interface Connection<R> {
  readonly edges: readonly Edge<R>[];
  readonly nodes: readonly R[];
  readonly pageInfo: {
    readonly hasNextPage: boolean;
    readonly hasPreviousPage: boolean;
    readonly startCursor: string | null;
    readonly endCursor: string | null;
  };
  /** Resolved lazily by GraphQL's default resolver: the count query runs only when asked for. */
  readonly totalCount: () => Promise<number>;
}

export function encodeCursor(ordering: Ordering, row: object): string {
  const values = ordering.columns.map(({ column }) => (row as Row)[column]);
  return Buffer.from(JSON.stringify([ordering.key, ...values]), 'utf8').toString('base64url');
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/;

function invalidCursor(reason: string): never {
  throw codedError('INVALID_CURSOR', `Invalid cursor in "after": ${reason}.`, { argument: 'after' });
}

/** A real calendar date (`2024-02-30` is not one, though `Date.parse` rolls it over to March). */
function isCalendarDate(value: string): boolean {
  const parsed = new Date(`${value.slice(0, 10)}T00:00:00Z`);
  return !Number.isNaN(parsed.getTime()) && parsed.toISOString().slice(0, 10) === value.slice(0, 10);
}

function isValidSortValue(value: unknown, column: SortColumn): value is string | number {
  // A value of the wrong type would reach the warehouse as a failed conversion, not a refusal.
  if (column.numeric) return typeof value === 'number' && Number.isFinite(value);
  if (typeof value !== 'string') return false;
  if (column.cast === 'date') return DATE.test(value) && isCalendarDate(value);
  if (column.cast === 'timestamp') {
    const [hours, minutes, seconds] = value.slice(11, 19).split(':').map(Number);
    return TIMESTAMP.test(value) && isCalendarDate(value) && hours! < 24 && minutes! < 60 && seconds! < 60;
  }
  return true;
}

export function decodeCursor(cursor: string, ordering: Ordering): (string | number)[] {
  if (cursor.length === 0 || cursor.length > MAX_CURSOR_LENGTH || !/^[A-Za-z0-9_-]+$/.test(cursor)) {
    invalidCursor('not a cursor issued by this API');
  }
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    invalidCursor('not a cursor issued by this API');
  }
  if (!Array.isArray(decoded) || typeof decoded[0] !== 'string') invalidCursor('not a cursor issued by this API');
  const [key, ...values] = decoded as [string, ...unknown[]];
  if (key !== ordering.key) {
    invalidCursor(`it was issued for the ordering ${key}, but this list is ordered by ${ordering.key}`);
  }
  if (values.length !== ordering.columns.length) invalidCursor('its position does not fit this ordering');
  values.forEach((value, i) => {
    if (!isValidSortValue(value, ordering.columns[i]!)) invalidCursor('its position does not fit this ordering');
  });
  return values as (string | number)[];
}

/** Offset lists (`limit`/`offset`), for BI tools that page by offset: the defaults and the caps. */
export const DEFAULT_LIST_LIMIT = 100;
export const MAX_LIST_LIMIT = 1_000;
export const MAX_LIST_OFFSET = 100_000;

export interface ListArgs {
  readonly limit?: number | null;
  readonly offset?: number | null;
}

/**
 * An offset list: the rows of a connection's ordering from `offset`, at most `limit` of them.
 * Deep offsets cost a scan of what they skip, so both are capped; past `MAX_LIST_OFFSET`, use the
 * connection's cursors (keyset paging costs nothing per page skipped).
 */
export function listQuery<QB extends AnySelect>(query: QB, ordering: Ordering, args: ListArgs): QB {
  const limit = args.limit ?? DEFAULT_LIST_LIMIT;
  const offset = args.offset ?? 0;
  if (limit < 0 || limit > MAX_LIST_LIMIT) {
    throw codedError('PAGE_SIZE_OUT_OF_RANGE', `"limit" must be between 0 and ${MAX_LIST_LIMIT}, got ${limit}.`, {
      argument: 'limit',
      min: 0,
      max: MAX_LIST_LIMIT,
    });
  }
  if (offset < 0 || offset > MAX_LIST_OFFSET) {
    throw codedError('INVALID_ARGUMENT', `"offset" must be between 0 and ${MAX_LIST_OFFSET}, got ${offset}; page deeper with the connection's cursors.`, {
      argument: 'offset',
    });
  }
  let ordered: AnySelect = query;
  for (const { column } of ordering.columns) ordered = ordered.orderBy(sql.ref(column), ordering.direction);
  return ordered.limit(limit).offset(offset) as QB;
}

/** Validates `first` and `after` (coded GraphQL errors) into a page request. */
export function readPageArgs(args: PageArgs, ordering: Ordering, maxPageSize = MAX_PAGE_SIZE): PageRequest {
  const first = args.first ?? DEFAULT_PAGE_SIZE;
  if (first < 0 || first > maxPageSize) {
    throw codedError(
      'PAGE_SIZE_OUT_OF_RANGE',
      `"first" must be between 0 and ${maxPageSize}, got ${first}.`,
      { argument: 'first', min: 0, max: maxPageSize },
    );
  }
  const after = args.after == null ? null : decodeCursor(args.after, ordering);
  return { ordering, limit: first, after };
}

function boundValue(value: string | number, column: SortColumn) {
  return column.cast ? sql`cast(${value} as ${sql.raw(column.cast)})` : sql`${value}`;
}

/** `(sort…, id) > (values…)` (or `<` when descending): the rows after the cursor. */
export function keysetCondition(page: PageRequest): Expression<SqlBool> | null {
  if (page.after === null) return null;
  const { columns, direction } = page.ordering;
  const refs = sql.join(columns.map(({ column }) => sql.ref(column)));
  const values = sql.join(page.after.map((value, i) => boundValue(value, columns[i]!)));
  return direction === 'asc' ? sql<SqlBool>`(${refs}) > (${values})` : sql<SqlBool>`(${refs}) < (${values})`;
}

// Kysely's builders are typed per table; these helpers only add clauses, so the table types stay
// whatever the caller built.
type AnySelect = SelectQueryBuilder<any, any, any>;

/** Adds the keyset condition, the ordering and `LIMIT first + 1` (the extra row tells hasNextPage). */
export function pageQuery<QB extends AnySelect>(query: QB, page: PageRequest): QB {
  const condition = keysetCondition(page);
  let paged = condition ? query.where(condition) : query;
  for (const { column } of page.ordering.columns) paged = paged.orderBy(sql.ref(column), page.ordering.direction);
  return paged.limit(page.limit + 1) as QB;
}

/**
 * Many parents' pages in one statement: each parent's first `limit + 1` rows after the cursor,
 * ranked by a window function. The query must select `parentColumn` and the sort columns.
 */
export function perParentPageQuery(
  db: Kysely<any>,
  query: AnySelect,
  parentColumn: string,
  page: PageRequest,
) {
  const condition = keysetCondition(page);
  const filtered = condition ? query.where(condition) : query;
  const order = sql.join(
    page.ordering.columns.map(({ column }) => sql`${sql.ref(column)} ${sql.raw(page.ordering.direction)}`),
  );
  const ranked = filtered
    .select(sql<number>`row_number() over (partition by ${sql.ref(parentColumn)} order by ${order})`.as('_rank'))
    .as('ranked');
  return (db as Kysely<Record<string, Row>>)
    .selectFrom(ranked)
    .selectAll()
    .where('_rank', '<=', page.limit + 1)
    .orderBy(sql.ref(parentColumn))
    .orderBy('_rank');
}

/**
 * Shapes `limit + 1` fetched warehouse rows into a connection of nodes; cursors are read from the
 * rows (sort columns), nodes are made by `toNode`.
 */
export function toConnection<R extends object, N>(
  rows: readonly R[],
  page: PageRequest,
  toNode: (row: R) => N,
  totalCount: () => Promise<number>,
): Connection<N> {
  const pageRows = rows.slice(0, page.limit);
  const edges = pageRows.map((row) => ({ cursor: encodeCursor(page.ordering, row), node: toNode(row) }));
  const nodes = edges.map((edge) => edge.node);
  return {
    edges,
    nodes,
    pageInfo: {
      hasNextPage: rows.length > page.limit,
      // Forward paging only: a page that starts after a cursor has at least that row before it.
      hasPreviousPage: page.after !== null,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
    totalCount,
  };
}

export interface OrderInput<F extends string> {
  readonly field: F;
  readonly direction: 'ASC' | 'DESC';
}

/**
 * What selects the rows of a data product's lists (its connection and its offset list alike): a
 * filter, an ordering, and a time window on its time column (`from` inclusive, `to` exclusive).
 */
export interface Selection<Filter, SortField extends string, Time = string> {
  readonly filter?: Filter | null;
  readonly orderBy?: OrderInput<SortField> | null;
  readonly from?: Time | null;
  readonly to?: Time | null;
}

/**
 * The ordering a list's `orderBy` argument asks for. Each field's columns must end with the primary
 * key so the order is total; the key written into cursors names the list, field and direction.
 * An ordering by a field the principal sees masked or cannot read is refused (`ARGUMENT_NOT_ALLOWED`):
 * the order of the rows, and the sort values in their cursors, would reveal it.
 */
export function orderingOf<F extends string>(options: {
  readonly list: string;
  readonly columnsByField: Readonly<Record<F, readonly SortColumn[]>>;
  readonly order: OrderInput<F> | null | undefined;
  readonly fallback: OrderInput<F>;
  readonly access: RequestAccess;
}): Ordering {
  const { field, direction } = options.order ?? options.fallback;
  const columns = options.columnsByField[field];
  for (const column of columns) guardArgument(options.access, column.field, 'orderBy');
  return {
    key: `${options.list}.${field}.${direction}`,
    columns,
    direction: direction === 'DESC' ? 'desc' : 'asc',
  };
}
