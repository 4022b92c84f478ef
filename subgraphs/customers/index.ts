/**
 * The customers domain: customer master data and addresses, from the CRM.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'graphql';
import { defineDomain } from '../kit/domain.js';
import { loadTables } from '../kit/warehouse/tables.js';
import { createCustomersRepository, customersProduct } from './repository.js';
import { customersResolvers } from './resolvers.js';
import { customersTables, type CustomersWarehouse } from './tables.js';

export const customers = defineDomain({
  name: 'customers',
  typeDefs: parse(readFileSync(new URL('./schema.graphql', import.meta.url), 'utf8')),
  resolvers: customersResolvers,
  warehouseVersion: 1,
  tables: customersTables,
  dataProducts: [customersProduct],
  createRepository: createCustomersRepository,
  ingest: ({ warehouse, rawDir }) => loadTables<CustomersWarehouse>(warehouse, rawDir, customersTables),
});
