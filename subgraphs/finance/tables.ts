/**
 * The finance warehouse: its tables, as loaded from the order management and billing systems'
 * raw files, and the derived amounts computed once at ingestion.
 */
import { sql, type Kysely } from 'kysely';
import { loadTables, type TableSpec } from '../kit/warehouse/tables.js';
import type { Warehouse } from '../kit/warehouse/warehouse.js';

export type OrderRow = {
  id: string;
  customer_id: string;
  ordered_at: string;
  status: string;
  channel: string;
  region: string;
  total_amount: number;
};

export type OrderLineRow = {
  order_id: string;
  line_number: number;
  sku: string;
  category_id: string;
  quantity: number;
  unit_price: number;
  discount: number;
  net_amount: number;
};

export type InvoiceRow = {
  id: string;
  order_id: string;
  issued_on: string;
  due_on: string;
  amount: number;
  status: string;
  region: string;
};

export type PaymentRow = {
  id: string;
  invoice_id: string;
  paid_at: string;
  amount: number;
  method: string;
};

export interface FinanceWarehouse {
  orders: OrderRow;
  order_lines: OrderLineRow;
  invoices: InvoiceRow;
  payments: PaymentRow;
}

/** Orders whose amounts count as revenue (lifetime value, product revenue and units sold). */
export const REVENUE_STATUSES = ['PAID', 'SHIPPED', 'DELIVERED'] as const;

export const financeTables: readonly TableSpec[] = [
  {
    name: 'orders',
    primaryKey: ['id'],
    indexes: [['customer_id'], ['region']],
    columns: [
      { name: 'id', type: 'varchar' },
      { name: 'customer_id', type: 'varchar' },
      { name: 'ordered_at', type: 'timestamp' },
      { name: 'status', type: 'varchar' },
      { name: 'channel', type: 'varchar' },
      // The sales region the order is booked in (row policy of orders and invoices).
      { name: 'region', type: 'varchar' },
      { name: 'total_amount', type: 'decimal(14, 2)', nullable: true, derived: true },
    ],
  },
  {
    name: 'order_lines',
    primaryKey: ['order_id', 'line_number'],
    indexes: [['sku']],
    columns: [
      { name: 'order_id', type: 'varchar' },
      { name: 'line_number', type: 'integer' },
      { name: 'sku', type: 'varchar' },
      // The product's category as booked on the line (the sales dimension "category").
      { name: 'category_id', type: 'varchar' },
      { name: 'quantity', type: 'integer' },
      { name: 'unit_price', type: 'decimal(10, 2)' },
      { name: 'discount', type: 'decimal(4, 3)' },
      { name: 'net_amount', type: 'decimal(14, 2)', nullable: true, derived: true },
    ],
  },
  {
    name: 'invoices',
    primaryKey: ['id'],
    indexes: [['order_id']],
    columns: [
      { name: 'id', type: 'varchar' },
      { name: 'order_id', type: 'varchar' },
      { name: 'issued_on', type: 'date' },
      { name: 'due_on', type: 'date' },
      { name: 'amount', type: 'decimal(14, 2)' },
      { name: 'status', type: 'varchar' },
      { name: 'region', type: 'varchar', nullable: true, derived: true },
    ],
  },
  {
    name: 'payments',
    primaryKey: ['id'],
    indexes: [['invoice_id']],
    columns: [
      { name: 'id', type: 'varchar' },
      { name: 'invoice_id', type: 'varchar' },
      { name: 'paid_at', type: 'timestamp' },
      { name: 'amount', type: 'decimal(14, 2)' },
      { name: 'method', type: 'varchar' },
    ],
  },
];

/** Loads the raw files, then derives each line's net amount and each order's total, in SQL. */
export async function ingestFinance({
  warehouse,
  rawDir,
}: {
  warehouse: Warehouse<FinanceWarehouse>;
  rawDir: string;
}): Promise<Record<string, number>> {
  const rows = await loadTables(warehouse, rawDir, financeTables);
  const db: Kysely<FinanceWarehouse> = warehouse.db;
  await sql`UPDATE order_lines SET net_amount = round(quantity * unit_price * (1 - discount), 2)`.execute(db);
  await sql`UPDATE orders SET total_amount = line_totals.total
    FROM (SELECT order_id, sum(net_amount) AS total FROM order_lines GROUP BY order_id) AS line_totals
    WHERE line_totals.order_id = orders.id`.execute(db);
  await sql`UPDATE orders SET total_amount = 0 WHERE total_amount IS NULL`.execute(db);
  await sql`UPDATE invoices SET region = orders.region FROM orders WHERE orders.id = invoices.order_id`.execute(db);
  return rows;
}
