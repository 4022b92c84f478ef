/**
 * The customers domain: customer master data and addresses, from the CRM.
 */
import { defineDomain } from '@data-mesh/kit';
import { createCustomersRepository, customersProduct } from './repository.js';
import { customersResolvers } from './resolvers.js';
import { customersTables } from './tables.js';

export const customers = defineDomain({
  name: 'customers',
  folder: import.meta.url,
  resolvers: customersResolvers,
  warehouseVersion: 1,
  tables: customersTables,
  dataProducts: [customersProduct],
  createRepository: createCustomersRepository,
});
