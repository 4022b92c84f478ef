/**
 * The customers warehouse: its tables, as loaded from the CRM's raw files.
 */
import { defineTable, type RowOf, type WarehouseOf } from '@data-mesh/kit';

const customers = defineTable('customers', {
  primaryKey: ['id'],
  columns: { id: 'varchar', name: 'varchar', email: 'varchar', phone: 'varchar', birth_date: 'date', country: 'varchar', region: 'varchar', segment: 'varchar', signup_date: 'date' },
});

const addresses = defineTable('addresses', {
  primaryKey: ['id'],
  indexes: [['customer_id']],
  columns: { id: 'varchar', customer_id: 'varchar', kind: 'varchar', line1: 'varchar', city: 'varchar', postal_code: 'varchar', country: 'varchar', is_primary: 'boolean' },
});

export const customersTables = [customers, addresses] as const;
export type CustomerRow = RowOf<typeof customers>;
export type AddressRow = RowOf<typeof addresses>;
export type CustomersWarehouse = WarehouseOf<typeof customersTables>;
