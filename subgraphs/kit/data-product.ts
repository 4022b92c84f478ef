/**
 * One declaration per data product. A domain declares, for a product: its table and key, the node a
 * row becomes, its orderings (each sort column with the field it reveals), its filters (each with the
 * field it reads and its SQL condition) and its time window. From that declaration the kit serves,
 * for one request: lookups by key (batched), the Relay connection with its count, the offset list,
 * per-parent connections (batched across parents), and every row of a small product. The row policy
 * of the product's type is applied by the kit on every one of those paths, and every filter, window
 * and ordering passes the argument guard: a domain cannot forget either.
 *
 * What is truly a domain's own (aggregates, derived measures) still reads the warehouse directly,
 * with the product's `visible()` conditions.
 */
import { sql, type Expression, type Kysely, type SqlBool } from 'kysely';
import {
  listQuery,
  orderingOf,
  pageQuery,
  perParentPageQuery,
  readPageArgs,
  toConnection,
  type Connection,
  type ListArgs,
  type OrderInput,
  type PageArgs,
  type Selection,
  type SortColumn,
} from './connection.js';
import { countRows, guardArguments, listArguments, rowCondition, timeWindow, whereAll, type ArgumentField, type Bound, type Coordinate, type RequestAccess } from './filters.js';
import { manyByKey, oneByKey, type RequestLoaders } from './loaders.js';
import type { QualityRule } from './quality.js';
import type { ProductInput } from './events/input-declaration.js';
import type { PipelineDeclaration } from './pipelines/runner.js';
import type { DialectSql } from './warehouse/dialects.js';

/** One filter of a product's lists: the field it reads (for the argument guard) and its condition. */
export interface FilterSpec<V> {
  readonly field: Coordinate;
  /** A bound (`from`, `to-inclusive`): masks that show a field coarsely may admit it. */
  readonly edge?: Bound['edge'];
  /** The condition on the product's table, for a given value; `argument` names it in errors, `dialect` spells what differs. */
  readonly where: (value: NonNullable<V>, argument: string, dialect: DialectSql) => Expression<SqlBool>;
}

/** A data product's lifecycle, as ODPS names it. */
export const PRODUCT_STATUSES = ['draft', 'active', 'deprecated', 'retired'] as const;
export type ProductStatus = (typeof PRODUCT_STATUSES)[number];

/** One service-level promise, as ODCS `slaProperties` state it. */
export interface SlaProperty {
  /** `latency` (how old the newest data may be), `frequency` (of updates), `availability`, `retention`. */
  readonly property: 'latency' | 'frequency' | 'availability' | 'retention';
  readonly value: number | string;
  /** ISO units: `h`, `d`, `y`, `%`. */
  readonly unit?: string;
  /** The column it is measured on (for latency: the product's time column). */
  readonly element?: string;
  readonly description?: string;
}

/** What a data product is and promises: the source of its catalog entry and its ODPS and ODCS documents. */
export interface ProductMetadata {
  /** A human name, e.g. `Customer orders`. */
  readonly title: string;
  /** The version of the product's contract (semantic versioning). */
  readonly version: string;
  readonly status: ProductStatus;
  readonly description: { readonly purpose: string; readonly limitations?: string; readonly usage?: string };
  readonly tags: readonly string[];
  /** Who answers for it, and in which role (`owner`, `steward`, …). */
  readonly owners: readonly { readonly username: string; readonly name?: string; readonly role: string }[];
  /** The raw sources it is built from, each with the contract it is read under. */
  readonly inputPorts: readonly { readonly name: string; readonly version: string; readonly contractId: string; readonly description?: string }[];
  readonly sla: readonly SlaProperty[];
  /** Output ports beyond its GraphQL type, lists and CSV export (e.g. an aggregate). */
  readonly extraOutputPorts?: readonly { readonly name: string; readonly type: string; readonly description: string }[];
  /**
   * Fields of other domains' types that this product's data resolves (the domain extends their
   * entity), and how: lineage across domains, per product (`Product.revenue` from the order lines).
   */
  readonly feeds?: readonly { readonly fields: readonly string[]; readonly how: string }[];
}

export interface DataProductSpec<Row extends object, Node, Filter extends object, Sort extends string> {
  /** The product's id within its domain, e.g. `orders` (its address is `<domain>.<name>`). */
  readonly name: string;
  readonly metadata: ProductMetadata;
  /** Its data quality rules (its key is checked not null and unique without them); they gate every load. */
  readonly quality?: readonly QualityRule[];
  /** How its loads run (pipelines/plan.ts): by default on its SLA's `frequency`, three attempts, 30 minutes each. */
  readonly pipeline?: PipelineDeclaration;
  /**
   * Other domains' products it is fed by (events/inputs.ts): their change feeds are followed, their
   * changed entities read through the gateway into the table named, and merged by its pipeline.
   * Each is an input port in its catalog entry and lineage; its freshness follows them.
   */
  readonly inputs?: readonly ProductInput[];
  /** Its change events (events/outbox.ts): how long the change feed keeps them (default 7 days; from 1 hour to 365 days). */
  readonly events?: { readonly retention?: { readonly value: number; readonly unit: 'h' | 'd' | 'w' } };
  /** The GraphQL type it serves: its `@rowPolicy`, if any, applies to every query of the table. */
  readonly type: string;
  readonly table: string;
  /** The key column: unique, and the last sort column of every ordering. */
  readonly key: string;
  readonly toNode: (row: Row) => Node;
  /** The column behind each field of the type that a column holds (a reference field: its key column). */
  readonly columns: Readonly<Record<string, keyof Row & string>>;
  readonly orderings: Readonly<Record<Sort, readonly SortColumn[]>>;
  /** The order of a list that gives none. */
  readonly defaultOrder: OrderInput<Sort>;
  readonly filters: { readonly [K in keyof Filter & string]-?: FilterSpec<Filter[K]> };
  /** The `from` (inclusive) and `to` (exclusive) window of its lists, on its time column. */
  readonly window?: {
    readonly column: string;
    readonly cast: 'date' | 'timestamp';
    readonly field: Coordinate;
    /** The window's values as the warehouse compares them (DateTime arguments arrive as Dates). */
    readonly toParameter?: (value: unknown) => string;
  };
}

export type ProductSelection<Filter, Sort extends string> = Selection<Filter, Sort, unknown>;

/** One product's data, for one request. */
export interface ProductReader<Node, Filter, Sort extends string> {
  /** One node by key, or null (none, or outside the row policy); batched per request. */
  byKey(key: string): Promise<Node | null>;
  /** One node by another unique column (e.g. an invoice by its `order_id`); batched, row policy applied. */
  oneBy(column: string, value: string): Promise<Node | null>;
  /** The Relay connection of a list. */
  connection(args: PageArgs & ProductSelection<Filter, Sort>): Promise<Connection<Node>>;
  /** The offset list of the same selection, in the same order. */
  list(args: ListArgs & ProductSelection<Filter, Sort>): Promise<Node[]>;
  /**
   * A parent's connection (e.g. a category's products, by `category_id`), batched: the same
   * arguments on many parents are one statement, and so are their counts.
   */
  connectionOf(parentColumn: string, parent: string, args: PageArgs & ProductSelection<Filter, Sort>, defaultOrder?: OrderInput<Sort>): Promise<Connection<Node>>;
  /** Every visible row, in `order` (for small reference products). */
  all(order?: OrderInput<Sort>): Promise<Node[]>;
  /** The row policy's conditions on the product's table (under `alias`), for the domain's own queries. */
  visible(alias?: string): Expression<SqlBool>[];
}

export interface DataProduct<Node, Filter, Sort extends string> {
  readonly spec: DataProductSpec<any, Node, Filter & object, Sort>;
  /** The product's reader for one request: its loaders, and the request's access decisions. */
  reader(db: Kysely<any>, loaders: RequestLoaders, access: RequestAccess, dialect: DialectSql): ProductReader<Node, Filter, Sort>;
}

export function defineDataProduct<Row extends object, Node, Filter extends object, Sort extends string>(
  spec: DataProductSpec<Row, Node, Filter, Sort>,
): DataProduct<Node, Filter, Sort> {
  // The field each argument reads, for the guard: `filter.<key>`, and the window's `from`/`to`.
  const argumentFields: Record<string, ArgumentField> = {};
  for (const [key, filter] of Object.entries(spec.filters) as [string, FilterSpec<unknown>][]) {
    argumentFields[`filter.${key}`] = { field: filter.field, ...(filter.edge ? { edge: filter.edge } : {}) };
  }
  if (spec.window) {
    argumentFields.from = { field: spec.window.field, edge: 'from' };
    argumentFields.to = { field: spec.window.field, edge: 'to-exclusive' };
  }
  const toNode = spec.toNode as (row: object) => Node;

  return {
    spec: spec as DataProductSpec<any, Node, Filter, Sort>,
    reader(db, loaders, access, dialect) {
      // Every read of the product goes through its row policy: there, the request notes which products it read.
      const visible = (alias?: string): Expression<SqlBool>[] => {
        loaders.productsRead.add(spec.name);
        const condition = rowCondition(access.rows(spec.type), dialect, alias);
        return condition ? [condition] : [];
      };
      /** The selection's conditions (filters, window, row policy), each argument guarded first. */
      const conditions = (args: ProductSelection<Filter, Sort>): Expression<SqlBool>[] => {
        guardArguments(access, listArguments(args), argumentFields);
        const found: Expression<SqlBool>[] = [];
        for (const [key, value] of Object.entries(args.filter ?? {})) {
          if (value == null) continue;
          found.push((spec.filters as Record<string, FilterSpec<unknown>>)[key]!.where(value, `filter.${key}`, dialect));
        }
        if (spec.window) {
          const toParameter = spec.window.toParameter ?? ((value: unknown) => String(value));
          const window = { from: args.from == null ? null : toParameter(args.from), to: args.to == null ? null : toParameter(args.to) };
          found.push(...timeWindow(spec.window.column, window, spec.window.cast));
        }
        return [...found, ...visible()];
      };
      const ordering = (order: OrderInput<Sort> | null | undefined, fallback = spec.defaultOrder) =>
        orderingOf({ list: spec.name, columnsByField: spec.orderings, order, fallback, access });
      const table = () => db.selectFrom(spec.table);

      const by = (column: string) =>
        loaders.get<string, Node | null>(`${spec.type}.by.${column}`, null, async (values) => {
          const rows = await whereAll(table().selectAll().where(column, 'in', values), visible()).execute();
          return oneByKey(values, rows as Record<string, unknown>[], (row) => row[column] as string).map((row) => (row ? toNode(row) : null));
        });

      return {
        byKey: (key) => by(spec.key).load(key),
        oneBy: (column, value) => by(column).load(value),
        async connection(args) {
          const where = conditions(args);
          const page = readPageArgs(args, ordering(args.orderBy));
          const rows = await pageQuery(whereAll(table().selectAll(), where), page).execute();
          return toConnection(rows as object[], page, toNode, () => countRows(whereAll(table(), where)));
        },
        async list(args) {
          const where = conditions(args);
          const rows = await listQuery(whereAll(table().selectAll(), where), ordering(args.orderBy), args).execute();
          return (rows as object[]).map(toNode);
        },
        connectionOf(parentColumn, parent, args, defaultOrder) {
          const where = conditions(args);
          const page = readPageArgs(args, ordering(args.orderBy, defaultOrder ?? spec.defaultOrder));
          const countOf = () =>
            loaders.get<string, number>(`${spec.type}.countBy.${parentColumn}`, args, async (parents) => {
              const rows = (await whereAll(
                table()
                  .select((eb) => [sql.ref(parentColumn).as('parent'), eb.fn.countAll<number>().as('count')])
                  .where(parentColumn, 'in', parents),
                where,
              )
                .groupBy(parentColumn)
                .execute()) as { parent: string; count: number | string }[];
              return oneByKey(parents, rows, (row) => row.parent).map((row) => Number(row?.count ?? 0));
            });
          return loaders
            .get<string, Connection<Node>>(`${spec.type}.pagesBy.${parentColumn}`, args, async (parents) => {
              const query = whereAll(table().selectAll().where(parentColumn, 'in', parents), where);
              const rows = (await perParentPageQuery(db, query, parentColumn, page).execute()) as Record<string, unknown>[];
              return manyByKey(parents, rows, (row) => row[parentColumn] as string).map((group, i) =>
                toConnection(group, page, toNode, () => countOf().load(parents[i]!)),
              );
            })
            .load(parent);
        },
        async all(order) {
          const { columns, direction } = ordering(order);
          let query = whereAll(table().selectAll(), visible());
          for (const { column } of columns) query = query.orderBy(sql.ref(column), direction);
          return ((await query.execute()) as object[]).map(toNode);
        },
        visible,
      };
    },
  };
}
