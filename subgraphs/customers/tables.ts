/**
 * The customers warehouse: its tables, as loaded from the CRM's raw files, and the orders the
 * finance domain's change feed says of each customer (an input: events/inputs.ts in the kit), from
 * which each customer's lifetime value is derived.
 */
import { defineTable, sql, type DeriveIncrementOptions, type Kysely, type RawBuilder, type RowOf, type WarehouseOf } from '@data-mesh/kit';

const customers = defineTable('customers', {
  primaryKey: ['id'],
  // `lifetime_value`: the sum of the totals of the customer's revenue orders (customer_orders); null until finance's orders were first read.
  columns: { id: 'varchar', name: 'varchar', email: 'varchar', phone: 'varchar', birth_date: 'date', country: 'varchar', region: 'varchar', segment: 'varchar', signup_date: 'date', lifetime_value: { type: 'decimal(14, 2)', nullable: true, derived: true } },
});

/** Each order of finance.orders as this domain read it through the gateway: kept by the input, never loaded from a file. */
const customerOrders = defineTable('customer_orders', {
  primaryKey: ['order_id'],
  indexes: [['customer_id']],
  source: 'increments',
  columns: { order_id: 'varchar', customer_id: 'varchar', status: 'varchar', total: 'decimal(14, 2)' },
});

const addresses = defineTable('addresses', {
  primaryKey: ['id'],
  indexes: [['customer_id']],
  columns: { id: 'varchar', customer_id: 'varchar', kind: 'varchar', line1: 'varchar', city: 'varchar', postal_code: 'varchar', country: 'varchar', is_primary: 'boolean' },
});

export const customersTables = [customers, addresses, customerOrders] as const;
export type CustomerRow = RowOf<typeof customers>;
export type AddressRow = RowOf<typeof addresses>;
export type CustomersWarehouse = WarehouseOf<typeof customersTables>;

/** Orders whose totals count in a lifetime value (as finance counts revenue). */
export const REVENUE_STATUSES = ['PAID', 'SHIPPED', 'DELIVERED'] as const;

/**
 * Each listed customer's lifetime value from the orders kept: the sum of its revenue orders'
 * totals (0 without any); null while no order was ever read (the input has not been read yet).
 */
const valuesOf = (customerIds: RawBuilder<unknown>) => sql`
  select k.id, case when exists (select 1 from customer_orders) then coalesce(sum(o.total), 0) end as value
  from (${customerIds}) as k
  left join customer_orders as o on o.customer_id = k.id and o.status in (${sql.join(REVENUE_STATUSES.map((status) => sql.lit(status)))})
  group by k.id`;

/**
 * After increments are merged: the lifetime value of each customer whose orders changed (the
 * customer an order belongs to now, and the one it belonged to before it moved or was deleted),
 * and of each customer the CRM delivered again; once orders were first read, every customer still
 * without a value gets 0. Only the rows whose value changes are written (and said: `touch`), so a
 * changed value is a change event of customers.customers.
 */
export async function deriveCustomersIncrement({ db, changed, touch, before }: DeriveIncrementOptions<CustomersWarehouse>): Promise<void> {
  const keys: RawBuilder<unknown>[] = [];
  if (changed.customer_orders) {
    keys.push(sql`select o.customer_id as id from customer_orders as o join ${sql.table(changed.customer_orders)} as c on c.order_id = o.order_id`);
    keys.push(sql`select b.customer_id as id from ${before('customer_orders')} as b`);
    keys.push(sql`select c.id from customers as c where c.lifetime_value is null and exists (select 1 from customer_orders)`);
  }
  if (changed.customers) keys.push(sql`select id from ${sql.table(changed.customers)}`);
  if (keys.length === 0) return;
  const k: Kysely<any> = db as Kysely<any>;
  await sql`CREATE TABLE _customer_values AS ${valuesOf(sql`select distinct u.id from (${sql.join(keys, sql` union `)}) as u`)}`.execute(k);
  await touch('customers', sql`select c.id from customers as c join _customer_values as v on v.id = c.id where c.lifetime_value is distinct from v.value`);
  await sql`UPDATE customers SET lifetime_value = v.value FROM _customer_values AS v WHERE customers.id = v.id AND customers.lifetime_value IS DISTINCT FROM v.value`.execute(k);
  await sql`DROP TABLE _customer_values`.execute(k);
}
