/**
 * The products warehouse: its tables, as loaded from the product information system's raw files.
 */
import { defineTable, type RowOf, type WarehouseOf } from '@data-mesh/kit';

const categories = defineTable('categories', {
  primaryKey: ['id'],
  columns: { id: 'varchar', name: 'varchar', department: 'varchar' },
});

const products = defineTable('products', {
  primaryKey: ['sku'],
  indexes: [['category_id']],
  columns: { sku: 'varchar', name: 'varchar', category_id: 'varchar', brand: 'varchar', list_price: 'decimal(10, 2)', unit_cost: 'decimal(10, 2)', launch_date: 'date' },
});

export const productsTables = [categories, products] as const;
export type CategoryRow = RowOf<typeof categories>;
export type ProductRow = RowOf<typeof products>;
export type ProductsWarehouse = WarehouseOf<typeof productsTables>;
