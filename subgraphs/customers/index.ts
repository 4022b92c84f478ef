/**
 * The customers domain: customer master data and addresses, from the CRM, and each customer's
 * lifetime value, derived from the finance domain's orders as its change feed announces them.
 */
import { defineDomain } from '@data-mesh/kit';
import { createCustomersRepository, customersProduct } from './repository.js';
import { customersResolvers } from './resolvers.js';
import { customersTables, deriveCustomersIncrement } from './tables.js';

export const customers = defineDomain({
  name: 'customers',
  folder: import.meta.url,
  resolvers: customersResolvers,
  warehouseVersion: 2,
  tables: customersTables,
  dataProducts: [customersProduct],
  createRepository: createCustomersRepository,
  deriveIncrement: deriveCustomersIncrement,
});
