/**
 * The finance data products, read from the finance warehouse only: other domains' entities are
 * known here by key (customer id, SKU) and joined by the gateway.
 */
import { sql, type Expression, type Kysely, type RawBuilder, type SqlBool } from 'kysely';
import { codedError } from '../../policy/errors.js';
import {
  listQuery,
  orderingOf,
  pageQuery,
  perParentPageQuery,
  readPageArgs,
  toConnection,
  type Connection,
  type ListArgs,
  type Selection,
  type PageArgs,
  type SortColumn,
} from '../kit/connection.js';
import { anyOf, atLeast, atMost, countRows, guardArgument, guardArguments, listArguments, rowCondition, timeWindow, whereAll, type ArgumentField, type RequestAccess } from '../kit/filters.js';
import { manyByKey, oneByKey, type RequestLoaders } from '../kit/loaders.js';
import { toTimestampParameter } from '../kit/scalars.js';
import {
  REVENUE_STATUSES,
  type FinanceWarehouse,
  type InvoiceRow,
  type OrderLineRow,
  type OrderRow,
  type PaymentRow,
} from './tables.js';

export interface Order {
  readonly id: string;
  readonly customerId: string;
  readonly orderedAt: string;
  readonly status: string;
  readonly channel: string;
  readonly total: number;
}

export interface OrderLine {
  readonly lineNumber: number;
  readonly sku: string;
  readonly quantity: number;
  readonly unitPrice: number;
  readonly discount: number;
  readonly netAmount: number;
}

export interface Invoice {
  readonly id: string;
  readonly orderId: string;
  readonly issuedOn: string;
  readonly dueOn: string;
  readonly amount: number;
  readonly status: string;
}

export interface Payment {
  readonly id: string;
  readonly paidAt: string;
  readonly amount: number;
  readonly method: string;
}

export interface ProductSales {
  readonly unitsSold: number;
  readonly revenue: number;
}

export interface OrderFilter {
  readonly customerId?: readonly string[] | null;
  readonly status?: readonly string[] | null;
  readonly channel?: readonly string[] | null;
  readonly orderedFrom?: Date | null;
  readonly orderedTo?: Date | null;
  readonly minTotal?: number | null;
  readonly maxTotal?: number | null;
}

export interface InvoiceFilter {
  readonly status?: readonly string[] | null;
  readonly issuedFrom?: string | null;
  readonly issuedTo?: string | null;
}

export type OrderSortField = 'ID' | 'ORDERED_AT' | 'TOTAL';
export type InvoiceSortField = 'ID' | 'ISSUED_ON' | 'AMOUNT';

/** What selects orders; the window is on the order time. */
export type OrderSelection = Selection<OrderFilter, OrderSortField, Date>;

export interface OrdersArgs extends PageArgs, OrderSelection {}

export interface OrderListArgs extends ListArgs, OrderSelection {}

/** What selects invoices; the window is on the issue date. */
export type InvoiceSelection = Selection<InvoiceFilter, InvoiceSortField>;

export interface InvoicesArgs extends PageArgs, InvoiceSelection {}

export interface InvoiceListArgs extends ListArgs, InvoiceSelection {}

const orderWindow = (args: OrderSelection, column = 'ordered_at') =>
  timeWindow(column, { from: args.from ? toTimestampParameter(args.from) : null, to: args.to ? toTimestampParameter(args.to) : null }, 'timestamp');

const ORDER_ID: SortColumn = { column: 'id', field: 'Order.id' };
const ORDER_COLUMNS: Record<OrderSortField, readonly SortColumn[]> = {
  ID: [ORDER_ID],
  ORDERED_AT: [{ column: 'ordered_at', cast: 'timestamp', field: 'Order.orderedAt' }, ORDER_ID],
  TOTAL: [{ column: 'total_amount', numeric: true, field: 'Order.total' }, ORDER_ID],
};

const INVOICE_ID: SortColumn = { column: 'id', field: 'Invoice.id' };
const INVOICE_COLUMNS: Record<InvoiceSortField, readonly SortColumn[]> = {
  ID: [INVOICE_ID],
  ISSUED_ON: [{ column: 'issued_on', cast: 'date', field: 'Invoice.issuedOn' }, INVOICE_ID],
  AMOUNT: [{ column: 'amount', numeric: true, field: 'Invoice.amount' }, INVOICE_ID],
};

/** The field each argument of an order list reads: none may reveal what the principal cannot see. */
const ORDER_ARGUMENTS: Record<`filter.${keyof OrderFilter}` | 'from' | 'to', ArgumentField> = {
  'filter.customerId': { field: 'Order.customer' },
  'filter.status': { field: 'Order.status' },
  'filter.channel': { field: 'Order.channel' },
  'filter.orderedFrom': { field: 'Order.orderedAt', edge: 'from' },
  'filter.orderedTo': { field: 'Order.orderedAt', edge: 'to-inclusive' },
  'filter.minTotal': { field: 'Order.total', edge: 'from' },
  'filter.maxTotal': { field: 'Order.total', edge: 'to-inclusive' },
  from: { field: 'Order.orderedAt', edge: 'from' },
  to: { field: 'Order.orderedAt', edge: 'to-exclusive' },
};

const INVOICE_ARGUMENTS: Record<`filter.${keyof InvoiceFilter}` | 'from' | 'to', ArgumentField> = {
  'filter.status': { field: 'Invoice.status' },
  'filter.issuedFrom': { field: 'Invoice.issuedOn', edge: 'from' },
  'filter.issuedTo': { field: 'Invoice.issuedOn', edge: 'to-inclusive' },
  from: { field: 'Invoice.issuedOn', edge: 'from' },
  to: { field: 'Invoice.issuedOn', edge: 'to-exclusive' },
};

const SALES_ARGUMENTS: Record<'status' | 'from' | 'to', ArgumentField> = {
  status: { field: 'Order.status' },
  from: { field: 'Order.orderedAt', edge: 'from' },
  to: { field: 'Order.orderedAt', edge: 'to-exclusive' },
};

function toOrder(row: OrderRow): Order {
  return {
    id: row.id,
    customerId: row.customer_id,
    orderedAt: row.ordered_at,
    status: row.status,
    channel: row.channel,
    total: row.total_amount,
  };
}

function toOrderLine(row: OrderLineRow): OrderLine {
  return {
    lineNumber: row.line_number,
    sku: row.sku,
    quantity: row.quantity,
    unitPrice: row.unit_price,
    discount: row.discount,
    netAmount: row.net_amount,
  };
}

function toInvoice(row: InvoiceRow): Invoice {
  return {
    id: row.id,
    orderId: row.order_id,
    issuedOn: row.issued_on,
    dueOn: row.due_on,
    amount: row.amount,
    status: row.status,
  };
}

function toPayment(row: PaymentRow): Payment {
  return { id: row.id, paidAt: row.paid_at, amount: row.amount, method: row.method };
}

function orderConditions(filter: OrderFilter | null | undefined): Expression<SqlBool>[] {
  const conditions: Expression<SqlBool>[] = [];
  if (!filter) return conditions;
  if (filter.customerId) conditions.push(anyOf('customer_id', filter.customerId, 'filter.customerId'));
  if (filter.status) conditions.push(anyOf('status', filter.status, 'filter.status'));
  if (filter.channel) conditions.push(anyOf('channel', filter.channel, 'filter.channel'));
  if (filter.orderedFrom) conditions.push(atLeast('ordered_at', toTimestampParameter(filter.orderedFrom), 'timestamp'));
  if (filter.orderedTo) conditions.push(atMost('ordered_at', toTimestampParameter(filter.orderedTo), 'timestamp'));
  if (filter.minTotal != null) conditions.push(atLeast('total_amount', filter.minTotal));
  if (filter.maxTotal != null) conditions.push(atMost('total_amount', filter.maxTotal));
  return conditions;
}

function invoiceConditions(filter: InvoiceFilter | null | undefined): Expression<SqlBool>[] {
  const conditions: Expression<SqlBool>[] = [];
  if (!filter) return conditions;
  if (filter.status) conditions.push(anyOf('status', filter.status, 'filter.status'));
  if (filter.issuedFrom) conditions.push(atLeast('issued_on', filter.issuedFrom, 'date'));
  if (filter.issuedTo) conditions.push(atMost('issued_on', filter.issuedTo, 'date'));
  return conditions;
}

export type SalesDimension = 'STATUS' | 'CHANNEL' | 'REGION' | 'PRODUCT' | 'CATEGORY';
export type TimeBucket = 'DAY' | 'WEEK' | 'MONTH';

export interface SalesAggregateArgs {
  readonly groupBy?: readonly SalesDimension[] | null;
  readonly bucket?: TimeBucket | null;
  readonly from?: Date | null;
  readonly to?: Date | null;
  readonly status?: readonly string[] | null;
  readonly limit?: number | null;
}

/** One group of sales: its dimensions (null when not grouped by) and measures. */
export interface SalesGroup {
  readonly period: string | null;
  readonly status: string | null;
  readonly channel: string | null;
  readonly region: string | null;
  readonly sku: string | null;
  readonly categoryId: string | null;
  readonly orders: number;
  readonly lines: number;
  readonly units: number;
  readonly revenue: number;
  readonly averageLineRevenue: number;
  readonly minLineRevenue: number;
  readonly maxLineRevenue: number;
}

export const MAX_AGGREGATE_GROUPS = 10_000;

/** Each dimension: its column, and the field whose access decides whether one may group by it. */
const SALES_DIMENSIONS: Record<SalesDimension, { column: string; alias: string; field: `${string}.${string}` }> = {
  STATUS: { column: 'o.status', alias: 'status', field: 'Order.status' },
  CHANNEL: { column: 'o.channel', alias: 'channel', field: 'Order.channel' },
  REGION: { column: 'o.region', alias: 'region', field: 'SalesAggregate.region' },
  PRODUCT: { column: 'l.sku', alias: 'sku', field: 'OrderLine.product' },
  CATEGORY: { column: 'l.category_id', alias: 'category_id', field: 'SalesAggregate.category' },
};

export interface FinanceRepository {
  order(id: string): Promise<Order | null>;
  orders(args: OrdersArgs): Promise<Connection<Order>>;
  orderList(args: OrderListArgs): Promise<Order[]>;
  invoiceList(args: InvoiceListArgs): Promise<Invoice[]>;
  ordersOfCustomer(customerId: string, args: OrdersArgs): Promise<Connection<Order>>;
  linesOf(orderId: string): Promise<OrderLine[]>;
  invoiceOfOrder(orderId: string): Promise<Invoice | null>;
  invoice(id: string): Promise<Invoice | null>;
  invoices(args: InvoicesArgs): Promise<Connection<Invoice>>;
  paymentsOf(invoiceId: string): Promise<Payment[]>;
  lifetimeValue(customerId: string): Promise<number>;
  productSales(sku: string): Promise<ProductSales>;
  salesAggregate(args: SalesAggregateArgs): Promise<SalesGroup[]>;
}

export function createFinanceRepository(
  db: Kysely<FinanceWarehouse>,
  loaders: RequestLoaders,
  access: RequestAccess,
): FinanceRepository {
  // The orders and invoices the principal may see: every query of those tables, the aggregates
  // over them included, carries these conditions.
  const visibleOrders = (table?: string) => {
    const condition = rowCondition(access.rows('Order'), table);
    return condition ? [condition] : [];
  };
  const visibleInvoices = () => {
    const condition = rowCondition(access.rows('Invoice'));
    return condition ? [condition] : [];
  };
  // A list's ordering and WHERE conditions, shared by its connection and its offset list.
  // Filtering or ordering by a field would reveal it to whoever sees it masked or cannot read it.
  const orderSelection = (args: OrderSelection) => {
    guardArguments(access, listArguments(args), ORDER_ARGUMENTS);
    return {
      ordering: orderingOf({ list: 'orders', columnsByField: ORDER_COLUMNS, order: args.orderBy, fallback: { field: 'ID', direction: 'ASC' }, access }),
      conditions: [...orderConditions(args.filter), ...orderWindow(args), ...visibleOrders()],
    };
  };
  const invoiceSelection = (args: InvoiceSelection) => {
    guardArguments(access, listArguments(args), INVOICE_ARGUMENTS);
    return {
      ordering: orderingOf({ list: 'invoices', columnsByField: INVOICE_COLUMNS, order: args.orderBy, fallback: { field: 'ID', direction: 'ASC' }, access }),
      conditions: [...invoiceConditions(args.filter), ...timeWindow('issued_on', args, 'date'), ...visibleInvoices()],
    };
  };
  const orderById = () =>
    loaders.get<string, Order | null>('Order.byId', null, async (ids) => {
      const rows = await whereAll(db.selectFrom('orders').selectAll().where('id', 'in', ids), visibleOrders()).execute();
      return oneByKey(ids, rows.map(toOrder), (order) => order.id);
    });
  const invoiceById = () =>
    loaders.get<string, Invoice | null>('Invoice.byId', null, async (ids) => {
      const rows = await whereAll(db.selectFrom('invoices').selectAll().where('id', 'in', ids), visibleInvoices()).execute();
      return oneByKey(ids, rows.map(toInvoice), (invoice) => invoice.id);
    });
  const orderCountOfCustomer = (filter: OrderFilter | null | undefined) =>
    loaders.get<string, number>('Customer.orderCount', filter, async (ids) => {
      const rows = await whereAll(
        db
          .selectFrom('orders')
          .select((eb) => ['customer_id', eb.fn.countAll<number>().as('count')])
          .where('customer_id', 'in', ids),
        [...orderConditions(filter), ...visibleOrders()],
      )
        .groupBy('customer_id')
        .execute();
      return oneByKey(ids, rows, (row) => row.customer_id).map((row) => Number(row?.count ?? 0));
    });

  return {
    order: (id) => orderById().load(id),
    invoice: (id) => invoiceById().load(id),

    async orders(args) {
      const { ordering, conditions } = orderSelection(args);
      const page = readPageArgs(args, ordering);
      const rows = await pageQuery(whereAll(db.selectFrom('orders').selectAll(), conditions), page).execute();
      return toConnection(rows, page, toOrder, () => countRows(whereAll(db.selectFrom('orders'), conditions)));
    },

    ordersOfCustomer(customerId, args) {
      guardArguments(access, listArguments(args), ORDER_ARGUMENTS);
      const page = readPageArgs(
        args,
        orderingOf({
          list: 'orders',
          columnsByField: ORDER_COLUMNS,
          order: args.orderBy,
          fallback: { field: 'ORDERED_AT', direction: 'DESC' },
          access,
        }),
      );
      const loader = loaders.get<string, Connection<Order>>('Customer.orders', args, async (ids) => {
        const query = whereAll(db.selectFrom('orders').selectAll().where('customer_id', 'in', ids), [
          ...orderConditions(args.filter),
          ...visibleOrders(),
        ]);
        const rows = (await perParentPageQuery(db, query, 'customer_id', page).execute()) as OrderRow[];
        return manyByKey(ids, rows, (row) => row.customer_id).map((group, i) =>
          toConnection(group, page, toOrder, () => orderCountOfCustomer(args.filter).load(ids[i]!)),
        );
      });
      return loader.load(customerId);
    },

    linesOf: (orderId) =>
      loaders
        .get<string, OrderLine[]>('Order.lines', null, async (ids) => {
          const rows = await db
            .selectFrom('order_lines')
            .selectAll()
            .where('order_id', 'in', ids)
            .orderBy('order_id')
            .orderBy('line_number')
            .execute();
          return manyByKey(ids, rows, (row) => row.order_id).map((group) => group.map(toOrderLine));
        })
        .load(orderId),

    invoiceOfOrder: (orderId) =>
      loaders
        .get<string, Invoice | null>('Order.invoice', null, async (ids) => {
          const rows = await whereAll(db.selectFrom('invoices').selectAll().where('order_id', 'in', ids), visibleInvoices()).execute();
          return oneByKey(ids, rows.map(toInvoice), (invoice) => invoice.orderId);
        })
        .load(orderId),

    async orderList(args) {
      const { ordering, conditions } = orderSelection(args);
      const rows = await listQuery(whereAll(db.selectFrom('orders').selectAll(), conditions), ordering, args).execute();
      return rows.map(toOrder);
    },

    async invoiceList(args) {
      const { ordering, conditions } = invoiceSelection(args);
      const rows = await listQuery(whereAll(db.selectFrom('invoices').selectAll(), conditions), ordering, args).execute();
      return rows.map(toInvoice);
    },

    async invoices(args) {
      const { ordering, conditions } = invoiceSelection(args);
      const page = readPageArgs(args, ordering);
      const rows = await pageQuery(whereAll(db.selectFrom('invoices').selectAll(), conditions), page).execute();
      return toConnection(rows, page, toInvoice, () => countRows(whereAll(db.selectFrom('invoices'), conditions)));
    },

    paymentsOf: (invoiceId) =>
      loaders
        .get<string, Payment[]>('Invoice.payments', null, async (ids) => {
          const rows = await db
            .selectFrom('payments')
            .selectAll()
            .where('invoice_id', 'in', ids)
            .orderBy('invoice_id')
            .orderBy('paid_at')
            .orderBy('id')
            .execute();
          return manyByKey(ids, rows, (row) => row.invoice_id).map((group) => group.map(toPayment));
        })
        .load(invoiceId),

    lifetimeValue: (customerId) =>
      loaders
        .get<string, number>('Customer.lifetimeValue', null, async (ids) => {
          const rows = await whereAll(
            db
              .selectFrom('orders')
              .select((eb) => ['customer_id', eb.fn.sum<number>('total_amount').as('value')])
              .where('customer_id', 'in', ids)
              .where('status', 'in', REVENUE_STATUSES),
            visibleOrders(),
          )
            .groupBy('customer_id')
            .execute();
          return oneByKey(ids, rows, (row) => row.customer_id).map((row) => Number(row?.value ?? 0));
        })
        .load(customerId),

    productSales: (sku) =>
      loaders
        .get<string, ProductSales>('Product.sales', null, async (skus) => {
          const rows = await whereAll(
            db
              .selectFrom('order_lines')
              .innerJoin('orders', 'orders.id', 'order_lines.order_id')
              .select((eb) => [
                'order_lines.sku',
                eb.fn.sum<number>('order_lines.quantity').as('units'),
                eb.fn.sum<number>('order_lines.net_amount').as('revenue'),
              ])
              .where('order_lines.sku', 'in', skus)
              .where('orders.status', 'in', REVENUE_STATUSES),
            visibleOrders('orders'),
          )
            .groupBy('order_lines.sku')
            .execute();
          return oneByKey(skus, rows, (row) => row.sku).map((row) => ({
            unitsSold: Number(row?.units ?? 0),
            revenue: Number(row?.revenue ?? 0),
          }));
        })
        .load(sku),
    async salesAggregate(args) {
      const dimensions = [...new Set(args.groupBy ?? [])];
      // Grouping by a field reveals its values: only by fields the principal may read unmasked.
      for (const dimension of dimensions) guardArgument(access, SALES_DIMENSIONS[dimension].field, 'groupBy');
      guardArguments(access, { status: args.status, from: args.from, to: args.to }, SALES_ARGUMENTS);
      const limit = args.limit ?? 1_000;
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_AGGREGATE_GROUPS) {
        throw codedError('INVALID_ARGUMENT', `"limit" must be from 1 to ${MAX_AGGREGATE_GROUPS}, got ${limit}.`, { argument: 'limit' });
      }
      // date_trunc means the same in DuckDB and PostgreSQL: UTC, weeks from Monday.
      const period: RawBuilder<string> | null = args.bucket
        ? sql<string>`cast(date_trunc(${sql.lit(args.bucket.toLowerCase())}, o.ordered_at) as timestamp)`
        : null;
      const keys: RawBuilder<unknown>[] = [...(period ? [period] : []), ...dimensions.map((d) => sql.ref(SALES_DIMENSIONS[d].column))];
      const conditions: Expression<SqlBool>[] = [
        anyOf('o.status', args.status ?? REVENUE_STATUSES, 'status'),
        ...orderWindow(args, 'o.ordered_at'),
        ...visibleOrders('o'),
      ];
      let query = db
        .selectFrom('order_lines as l')
        .innerJoin('orders as o', 'o.id', 'l.order_id')
        .select([
          ...(period ? [period.as('period')] : []),
          ...dimensions.map((d) => sql.ref<string>(SALES_DIMENSIONS[d].column).as(SALES_DIMENSIONS[d].alias)),
          sql<number>`count(distinct o.id)`.as('orders'),
          sql<number>`count(*)`.as('lines'),
          sql<number>`sum(l.quantity)`.as('units'),
          sql<number>`sum(l.net_amount)`.as('revenue'),
          sql<number>`min(l.net_amount)`.as('min_line_revenue'),
          sql<number>`max(l.net_amount)`.as('max_line_revenue'),
        ]);
      query = whereAll(query, conditions);
      if (keys.length > 0) query = query.groupBy(keys);
      for (const key of keys) query = query.orderBy(key);
      const rows = (await query.limit(limit).execute()) as Record<string, unknown>[];
      const text = (value: unknown) => (value === null || value === undefined ? null : String(value));
      return rows.map((row) => {
        // In cents, so that both dialects round the same way (half up): DuckDB's avg is a double.
        const revenueCents = Math.round(Number(row.revenue) * 100);
        return {
        period: text(row.period),
        status: text(row.status),
        channel: text(row.channel),
        region: text(row.region),
        sku: text(row.sku),
        categoryId: text(row.category_id),
        orders: Number(row.orders),
        lines: Number(row.lines),
        units: Number(row.units),
        revenue: revenueCents / 100,
        averageLineRevenue: Math.round(revenueCents / Number(row.lines)) / 100,
        minLineRevenue: Number(row.min_line_revenue),
        maxLineRevenue: Number(row.max_line_revenue),
        };
      });
    },
  };
}
