/**
 * The finance domain's data products, `orders` and `invoices`, declared once each: the kit serves
 * their lookups, lists, connections and counts from the declarations (see kit/data-product.ts),
 * with filters, windows, orderings and the row policies applied on every path. What is the
 * domain's own stays here: order lines and payments (reached through a visible order or invoice),
 * lifetime values, product sales and the sales aggregate, each over the products' visible rows.
 * Other domains' entities are known here by key (customer id, SKU) and joined by the gateway.
 */
import { anyOf, anyOfCategories, atLeast, atMost, codedError, defineDataProduct, guardArgument, guardArguments, manyByKey, oneByKey, sql, timeWindow, toTimestampParameter, whereAll, type ArgumentField, type Connection, type DialectSql, type Expression, type Kysely, type ListArgs, type PageArgs, type RawBuilder, type RequestAccess, type RequestLoaders, type Selection, type SortColumn, type SqlBool, type TimeUnit } from '@data-mesh/kit';
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
  readonly id?: readonly string[] | null;
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

const orderWindow = (args: { from?: Date | null; to?: Date | null }, column: string) =>
  timeWindow(column, { from: args.from ? toTimestampParameter(args.from) : null, to: args.to ? toTimestampParameter(args.to) : null }, 'timestamp');

const ORDER_ID: SortColumn = { column: 'id', field: 'Order.id' };
const INVOICE_ID: SortColumn = { column: 'id', field: 'Invoice.id' };

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

export type SalesDimension = 'STATUS' | 'CHANNEL' | 'REGION' | 'PRODUCT' | 'CATEGORY';
export type TimeBucket = 'DAY' | 'WEEK' | 'MONTH';
const BUCKET_UNITS: Record<TimeBucket, TimeUnit> = { DAY: 'day', WEEK: 'week', MONTH: 'month' };

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

/** Data product `orders`: one row per order, from the order management system. */
export const ordersProduct = defineDataProduct<OrderRow, Order, OrderFilter, OrderSortField>({
  name: 'orders',
  metadata: {
    title: 'Customer orders',
    version: '1.0.0',
    status: 'active',
    description: {
      purpose: 'One row per customer order, with its status, channel and total; its lines and invoice beside it.',
      limitations: 'Totals are the sum of the lines after discount, before tax. Analysts see the orders of their regions.',
      usage: 'Revenue counts orders with status PAID, SHIPPED or DELIVERED; use salesAggregate for grouped figures.',
    },
    tags: ['sales', 'financial'],
    owners: [{ username: 'finance-team@example.com', name: 'Finance domain team', role: 'owner' }],
    inputPorts: [
      { name: 'oms.orders', version: '1.0.0', contractId: 'oms.orders.csv', description: 'Order management export: orders.csv' },
      { name: 'oms.order_lines', version: '1.0.0', contractId: 'oms.order_lines.csv', description: 'Order management export: order_lines.csv' },
    ],
    sla: [
      { property: 'frequency', value: 1, unit: 'd' },
      { property: 'latency', value: 24, unit: 'h', element: 'ordered_at' },
      { property: 'availability', value: 99.9, unit: '%' },
      { property: 'retention', value: 10, unit: 'y', description: 'Accounting records are kept ten years.' },
    ],
    extraOutputPorts: [{ name: 'salesAggregate', type: 'GraphQL aggregate', description: 'Order lines grouped by period, status, channel, region, product or category, in the warehouse.' }],
    feeds: [
      { fields: ['Product.unitsSold', 'Product.revenue'], how: 'The lines of revenue orders (PAID, SHIPPED, DELIVERED) joined through the product key: order_lines.sku = Product.sku; units and net amounts summed per product and region at each load (product_sales), the regions the reader may see added up.' },
      { fields: ['Customer.orders'], how: 'Orders joined through the customer key: orders.customer_id = Customer.id.' },
    ],
  },
  type: 'Order',
  table: 'orders',
  // A load that loses or gains far more orders than its history predicts (a cut export, one delivered twice) is kept out.
  pipeline: { anomalies: { errors: ['rows'] } },
  // Apps that follow orders may be away two weeks and still resume where they left.
  events: { retention: { value: 14, unit: 'd' } },
  quality: [
    { name: 'status_known', metric: 'invalidValues', column: 'status', validValues: ['PENDING', 'PAID', 'SHIPPED', 'DELIVERED', 'CANCELLED', 'RETURNED'], mustBe: 0, dimension: 'conformity', severity: 'error' },
    { name: 'channel_known', metric: 'invalidValues', column: 'channel', validValues: ['WEB', 'MOBILE_APP', 'STORE'], mustBe: 0, dimension: 'conformity', severity: 'error' },
    { name: 'customer_present', metric: 'missingValues', column: 'customer_id', missingValues: [''], mustBe: 0, dimension: 'completeness', severity: 'error' },
    { name: 'total_not_negative', metric: 'invalidValues', column: 'total_amount', range: [0, 100000000], mustBe: 0, dimension: 'conformity', severity: 'error' },
    { name: 'lines_present', metric: 'sql', query: 'select count(*) from ${table} o where not exists (select 1 from order_lines l where l.order_id = o.id)', mustBe: 0, dimension: 'completeness', severity: 'warning', description: 'Every order has lines.' },
    { name: 'not_empty', metric: 'rowCount', mustBeGreaterThan: 0, dimension: 'completeness', severity: 'error' },
    { name: 'id_format', metric: 'invalidValues', column: 'id', pattern: 'O[0-9]{8}', mustBe: 0, dimension: 'conformity', severity: 'error', description: '`O` and eight digits.' },
    { name: 'ordered_recent', metric: 'latency', column: 'ordered_at', mustBeLessOrEqualTo: 7 * 86_400, dimension: 'timeliness', severity: 'warning', description: 'The newest order is at most seven days older than the order system\'s export: an old export delivered again shows here.' },
  ],
  key: 'id',
  columns: { id: 'id', customer: 'customer_id', orderedAt: 'ordered_at', status: 'status', channel: 'channel', total: 'total_amount' },
  toNode: toOrder,
  orderings: {
    ID: [ORDER_ID],
    ORDERED_AT: [{ column: 'ordered_at', cast: 'timestamp', field: 'Order.orderedAt' }, ORDER_ID],
    TOTAL: [{ column: 'total_amount', numeric: true, field: 'Order.total' }, ORDER_ID],
  },
  defaultOrder: { field: 'ID', direction: 'ASC' },
  filters: {
    id: { field: 'Order.id', where: (ids, argument) => anyOf('id', ids, argument) },
    customerId: { field: 'Order.customer', where: (ids, argument) => anyOf('customer_id', ids, argument) },
    status: { field: 'Order.status', where: (statuses, argument, dialect) => anyOfCategories('status', statuses, argument, dialect) },
    channel: { field: 'Order.channel', where: (channels, argument, dialect) => anyOfCategories('channel', channels, argument, dialect) },
    orderedFrom: { field: 'Order.orderedAt', edge: 'from', where: (at) => atLeast('ordered_at', toTimestampParameter(at), 'timestamp') },
    orderedTo: { field: 'Order.orderedAt', edge: 'to-inclusive', where: (at) => atMost('ordered_at', toTimestampParameter(at), 'timestamp') },
    minTotal: { field: 'Order.total', edge: 'from', where: (total) => atLeast('total_amount', total) },
    maxTotal: { field: 'Order.total', edge: 'to-inclusive', where: (total) => atMost('total_amount', total) },
  },
  window: { column: 'ordered_at', cast: 'timestamp', field: 'Order.orderedAt', toParameter: (at) => toTimestampParameter(at as Date) },
});

/** Data product `invoices`: one row per invoice, for the orders that were invoiced. */
export const invoicesProduct = defineDataProduct<InvoiceRow, Invoice, InvoiceFilter, InvoiceSortField>({
  name: 'invoices',
  metadata: {
    title: 'Invoices',
    version: '1.0.0',
    status: 'active',
    description: {
      purpose: 'One row per invoice of an order, with its issue and due dates, amount and status; payments for finance.',
      limitations: 'Cancelled and pending orders have no invoice. Confidential financial data.',
      usage: 'Receivables and payment delays: compare due dates with payments.',
    },
    tags: ['billing', 'financial'],
    owners: [{ username: 'finance-team@example.com', name: 'Finance domain team', role: 'owner' }],
    inputPorts: [
      { name: 'billing.invoices', version: '1.0.0', contractId: 'billing.invoices.csv', description: 'Billing export: invoices.csv' },
      { name: 'billing.payments', version: '1.0.0', contractId: 'billing.payments.csv', description: 'Billing export: payments.csv' },
    ],
    sla: [
      { property: 'frequency', value: 1, unit: 'd' },
      { property: 'latency', value: 24, unit: 'h', element: 'issued_on' },
      { property: 'availability', value: 99.9, unit: '%' },
      { property: 'retention', value: 10, unit: 'y' },
    ],
  },
  type: 'Invoice',
  table: 'invoices',
  // Its regions are its orders': it is loaded after each run of the orders' pipeline, not on a schedule of its own.
  pipeline: { dependsOn: ['orders'], every: 'never' },
  quality: [
    { name: 'order_exists', metric: 'relationships', column: 'order_id', to: { table: 'orders', column: 'id' }, mustBe: 0, dimension: 'consistency', severity: 'error' },
    { name: 'status_known', metric: 'invalidValues', column: 'status', validValues: ['OPEN', 'PAID', 'OVERDUE', 'VOID'], mustBe: 0, dimension: 'conformity', severity: 'error' },
    { name: 'amount_not_negative', metric: 'invalidValues', column: 'amount', range: [0, 100000000], mustBe: 0, dimension: 'conformity', severity: 'error' },
    { name: 'due_after_issue', metric: 'sql', query: 'select count(*) from ${table} where due_on < issued_on', mustBe: 0, dimension: 'consistency', severity: 'warning' },
    { name: 'issued_recent', metric: 'latency', column: 'issued_on', mustBeLessOrEqualTo: 7 * 86_400, dimension: 'timeliness', severity: 'warning', description: 'The newest invoice is at most seven days older than the billing export.' },
  ],
  key: 'id',
  columns: { id: 'id', order: 'order_id', issuedOn: 'issued_on', dueOn: 'due_on', amount: 'amount', status: 'status' },
  toNode: toInvoice,
  orderings: {
    ID: [INVOICE_ID],
    ISSUED_ON: [{ column: 'issued_on', cast: 'date', field: 'Invoice.issuedOn' }, INVOICE_ID],
    AMOUNT: [{ column: 'amount', numeric: true, field: 'Invoice.amount' }, INVOICE_ID],
  },
  defaultOrder: { field: 'ID', direction: 'ASC' },
  filters: {
    status: { field: 'Invoice.status', where: (statuses, argument, dialect) => anyOfCategories('status', statuses, argument, dialect) },
    issuedFrom: { field: 'Invoice.issuedOn', edge: 'from', where: (day) => atLeast('issued_on', day, 'date') },
    issuedTo: { field: 'Invoice.issuedOn', edge: 'to-inclusive', where: (day) => atMost('issued_on', day, 'date') },
  },
  window: { column: 'issued_on', cast: 'date', field: 'Invoice.issuedOn' },
});

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
  productSales(sku: string): Promise<ProductSales>;
  salesAggregate(args: SalesAggregateArgs): Promise<SalesGroup[]>;
}

export function createFinanceRepository(
  db: Kysely<FinanceWarehouse>,
  loaders: RequestLoaders,
  access: RequestAccess,
  dialect: DialectSql,
): FinanceRepository {
  const orders = ordersProduct.reader(db, loaders, access, dialect);
  const invoices = invoicesProduct.reader(db, loaders, access, dialect);
  return {
    order: (id) => orders.byKey(id),
    invoice: (id) => invoices.byKey(id),
    orders: (args) => orders.connection(args),
    orderList: (args) => orders.list(args),
    // A customer's orders: newest first unless the caller orders them.
    ordersOfCustomer: (customerId, args) => orders.connectionOf('customer_id', customerId, args, { field: 'ORDERED_AT', direction: 'DESC' }),
    invoices: (args) => invoices.connection(args),
    invoiceList: (args) => invoices.list(args),
    invoiceOfOrder: (orderId) => invoices.oneBy('order_id', orderId),

    // An order's lines and an invoice's payments are reached through a visible order or invoice.
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

    // A product's figures are kept per region at each load (product_sales): read, and summed over the regions the principal may see.
    productSales: (sku) =>
      loaders
        .get<string, ProductSales>('Product.sales', null, async (skus) => {
          const rows = await whereAll(
            db
              .selectFrom('product_sales as ps')
              .select((eb) => ['ps.sku', eb.fn.sum<number>('ps.units').as('units'), eb.fn.sum<number>('ps.revenue').as('revenue')])
              .where('ps.sku', 'in', skus),
            orders.visible('ps'),
          )
            .groupBy('ps.sku')
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
      // The start of each order's period (UTC, weeks from Monday), as the warehouse's dialect spells it.
      const period: RawBuilder<string> | null = args.bucket ? dialect.truncateTime(BUCKET_UNITS[args.bucket], sql.ref('o.ordered_at')) : null;
      const keys: RawBuilder<unknown>[] = [...(period ? [period] : []), ...dimensions.map((d) => sql.ref(SALES_DIMENSIONS[d].column))];
      const conditions: Expression<SqlBool>[] = [
        anyOfCategories('o.status', args.status ?? REVENUE_STATUSES, 'status', dialect),
        ...orderWindow(args, 'o.ordered_at'),
        ...orders.visible('o'),
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
