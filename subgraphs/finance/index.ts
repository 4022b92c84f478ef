/**
 * The finance domain: orders, order lines, invoices and payments, from the order management and
 * billing systems. It adds `orders` to customers and `unitsSold` and `revenue`
 * to products, by key, without reading the other domains' warehouses.
 */
import { defineDomain } from '@data-mesh/kit';
import { createFinanceRepository, invoicesProduct, ordersProduct } from './repository.js';
import { financeResolvers } from './resolvers.js';
import { deriveFinanceIncrement, financeTables, ingestFinance } from './tables.js';

export const finance = defineDomain({
  name: 'finance',
  folder: import.meta.url,
  resolvers: financeResolvers,
  warehouseVersion: 4,
  tables: financeTables,
  dataProducts: [ordersProduct, invoicesProduct],
  createRepository: createFinanceRepository,
  ingest: ingestFinance,
  deriveIncrement: deriveFinanceIncrement,
});
