/**
 * The finance warehouse: its tables, as loaded from the order management and billing systems'
 * raw files, the derived amounts computed at ingestion, and each product's sales kept at every load.
 */
import { defineTable, loadTables, sql, type DeriveIncrementOptions, type Kysely, type RawBuilder, type RowOf, type Warehouse, type WarehouseOf } from '@data-mesh/kit';

/** An amount computed at ingestion, after the raw files are loaded. */
const DERIVED_AMOUNT = { type: 'decimal(14, 2)', nullable: true, derived: true } as const;

const orders = defineTable('orders', {
  primaryKey: ['id'],
  indexes: [['customer_id'], ['region']],
  // `region`: the sales region the order is booked in (row policy of orders and invoices); `total_amount`: the sum of its lines.
  columns: { id: 'varchar', customer_id: 'varchar', ordered_at: 'timestamp', status: 'varchar', channel: 'varchar', region: 'varchar', total_amount: DERIVED_AMOUNT },
});

const orderLines = defineTable('order_lines', {
  primaryKey: ['order_id', 'line_number'],
  indexes: [['sku']],
  // `category_id`: the product's category as booked on the line (the sales dimension "category").
  // `net_amount`: computed from the line itself as it is loaded or merged.
  columns: { order_id: 'varchar', line_number: 'integer', sku: 'varchar', category_id: 'varchar', quantity: 'integer', unit_price: 'decimal(10, 2)', discount: 'decimal(4, 3)', net_amount: { ...DERIVED_AMOUNT, fromRow: 'round(quantity * unit_price * (1 - discount), 2)' } },
});

const invoices = defineTable('invoices', {
  primaryKey: ['id'],
  indexes: [['order_id']],
  // `region`: its order's, copied at ingestion.
  columns: { id: 'varchar', order_id: 'varchar', issued_on: 'date', due_on: 'date', amount: 'decimal(14, 2)', status: 'varchar', region: { type: 'varchar', nullable: true, derived: true } },
});

const payments = defineTable('payments', {
  primaryKey: ['id'],
  indexes: [['invoice_id']],
  columns: { id: 'varchar', invoice_id: 'varchar', paid_at: 'timestamp', amount: 'decimal(14, 2)', method: 'varchar' },
});

/**
 * Units and revenue per product and sales region, over revenue orders: kept at each load (full or
 * incremental) so that a product's figures are read, not summed over its lines at each request;
 * per region, so that the orders' row policy still applies (an analyst's figures are their regions').
 */
const productSales = defineTable('product_sales', {
  primaryKey: ['sku', 'region'],
  source: 'derived',
  columns: { sku: 'varchar', region: 'varchar', units: 'integer', revenue: 'decimal(14, 2)' },
});

export const financeTables = [orders, orderLines, invoices, payments, productSales] as const;
export type OrderRow = RowOf<typeof orders>;
export type OrderLineRow = RowOf<typeof orderLines>;
export type InvoiceRow = RowOf<typeof invoices>;
export type PaymentRow = RowOf<typeof payments>;
export type FinanceWarehouse = WarehouseOf<typeof financeTables>;

/** Orders whose amounts count as revenue (lifetime value, product revenue and units sold). */
export const REVENUE_STATUSES = ['PAID', 'SHIPPED', 'DELIVERED'] as const;

/** Loads the raw files (each line's net amount computed as it is loaded), then derives each order's total and each invoice's region, in SQL. */
export async function ingestFinance({
  warehouse,
  rawDir,
}: {
  warehouse: Warehouse<FinanceWarehouse>;
  rawDir: string;
}): Promise<Record<string, number>> {
  const rows = await loadTables(warehouse, rawDir, financeTables);
  const db: Kysely<FinanceWarehouse> = warehouse.db;
  await sql`UPDATE orders SET total_amount = line_totals.total
    FROM (SELECT order_id, sum(net_amount) AS total FROM order_lines GROUP BY order_id) AS line_totals
    WHERE line_totals.order_id = orders.id`.execute(db);
  await sql`UPDATE orders SET total_amount = 0 WHERE total_amount IS NULL`.execute(db);
  await sql`UPDATE invoices SET region = orders.region FROM orders WHERE orders.id = invoices.order_id`.execute(db);
  await sql`INSERT INTO product_sales ${salesOf(null)}`.execute(db);
  return rows;
}

/** Units and revenue per product and region over revenue orders: of every product, or of those `skus` selects. */
const salesOf = (skus: RawBuilder<unknown> | null) => sql`
  select l.sku, o.region, cast(sum(l.quantity) as integer) as units, sum(l.net_amount) as revenue
  from order_lines as l join orders as o on o.id = l.order_id
  where o.status in (${sql.join(REVENUE_STATUSES.map((status) => sql.lit(status)))})${skus ? sql` and l.sku in (${skus})` : sql``}
  group by l.sku, o.region`;

/**
 * After increments are merged (each changed line's net amount computed as it was written): the
 * total of each order whose lines (or itself) changed, and the region of each invoice whose order
 * (or itself) changed; the same values a full load derives. Joins from the changed keys; the rows
 * whose value changes are said (`touch`) before they are written, and only they are written.
 */
export async function deriveFinanceIncrement({ db, changed, touch, before }: DeriveIncrementOptions<FinanceWarehouse>): Promise<void> {
  const changedLines = changed.order_lines ? sql.table(changed.order_lines) : null;
  const orders = [changed.orders && sql`select id from ${sql.table(changed.orders)}`, changedLines && sql`select order_id as id from ${changedLines}`].filter((query) => query !== undefined && query !== null);
  if (orders.length > 0) {
    // A join, not a subquery per order: a full load merges its increments before the lines have an index.
    await sql`CREATE TABLE _order_totals AS select k.id, coalesce(sum(l.net_amount), 0) as total from (${sql.join(orders, sql` union `)}) as k left join order_lines as l on l.order_id = k.id group by k.id`.execute(db);
    await touch('orders', sql`select o.id from orders as o join _order_totals as t on t.id = o.id where o.total_amount is distinct from t.total`);
    await sql`UPDATE orders SET total_amount = t.total FROM _order_totals AS t WHERE orders.id = t.id AND orders.total_amount IS DISTINCT FROM t.total`.execute(db);
    await sql`DROP TABLE _order_totals`.execute(db);
  }
  if (changed.invoices) {
    await sql`UPDATE invoices SET region = o.region FROM ${sql.table(changed.invoices)} AS c, orders AS o WHERE c.id = invoices.id AND o.id = invoices.order_id AND invoices.region IS DISTINCT FROM o.region`.execute(db);
  }
  if (changed.orders) {
    // The invoices of an order that moved region move with it.
    const moved = sql`select i.id from invoices as i join ${sql.table(changed.orders)} as c on c.id = i.order_id join orders as o on o.id = i.order_id where i.region is distinct from o.region`;
    await touch('invoices', moved);
    await sql`UPDATE invoices SET region = o.region FROM ${sql.table(changed.orders)} AS c, orders AS o WHERE c.id = o.id AND o.id = invoices.order_id AND invoices.region IS DISTINCT FROM o.region`.execute(db);
  }
  // The sales of each product a changed order or line is for (now, and before: a line removed or moved to another product).
  const skus = [
    changed.orders && sql`select l.sku from order_lines as l join ${sql.table(changed.orders)} as c on c.id = l.order_id`,
    changedLines && sql`select l.sku from order_lines as l join ${changedLines} as c on c.order_id = l.order_id and c.line_number = l.line_number`,
    changedLines && sql`select b.sku from ${before('order_lines')} as b`,
  ].filter((query) => query !== undefined && query !== null);
  if (skus.length > 0) {
    await sql`CREATE TABLE _sales_skus AS select distinct u.sku from (${sql.join(skus, sql` union `)}) as u`.execute(db);
    await sql`DELETE FROM product_sales WHERE sku IN (select sku from _sales_skus)`.execute(db);
    await sql`INSERT INTO product_sales ${salesOf(sql`select sku from _sales_skus`)}`.execute(db);
    await sql`DROP TABLE _sales_skus`.execute(db);
  }
}
