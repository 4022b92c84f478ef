/**
 * The products warehouse: its tables, as loaded from the product information system's raw files.
 */
import type { TableSpec } from '../kit/warehouse/tables.js';

export type CategoryRow = {
  id: string;
  name: string;
  department: string;
};

export type ProductRow = {
  sku: string;
  name: string;
  category_id: string;
  brand: string;
  list_price: number;
  unit_cost: number;
  launch_date: string;
};

export interface ProductsWarehouse {
  categories: CategoryRow;
  products: ProductRow;
}

export const productsTables: readonly TableSpec[] = [
  {
    name: 'categories',
    primaryKey: ['id'],
    columns: [
      { name: 'id', type: 'varchar' },
      { name: 'name', type: 'varchar' },
      { name: 'department', type: 'varchar' },
    ],
  },
  {
    name: 'products',
    primaryKey: ['sku'],
    indexes: [['category_id']],
    columns: [
      { name: 'sku', type: 'varchar' },
      { name: 'name', type: 'varchar' },
      { name: 'category_id', type: 'varchar' },
      { name: 'brand', type: 'varchar' },
      { name: 'list_price', type: 'decimal(10, 2)' },
      { name: 'unit_cost', type: 'decimal(10, 2)' },
      { name: 'launch_date', type: 'date' },
    ],
  },
];
