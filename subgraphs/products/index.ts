/**
 * The products domain: the catalogue (products and categories), from the product information system.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'graphql';
import { defineDomain } from '../kit/domain.js';
import { loadTables } from '../kit/warehouse/tables.js';
import { categoriesProduct, createProductsRepository, productsProduct } from './repository.js';
import { productsResolvers } from './resolvers.js';
import { productsTables, type ProductsWarehouse } from './tables.js';

export const products = defineDomain({
  name: 'products',
  typeDefs: parse(readFileSync(new URL('./schema.graphql', import.meta.url), 'utf8')),
  resolvers: productsResolvers,
  warehouseVersion: 1,
  tables: productsTables,
  dataProducts: [productsProduct, categoriesProduct],
  createRepository: createProductsRepository,
  ingest: ({ warehouse, rawDir }) => loadTables<ProductsWarehouse>(warehouse, rawDir, productsTables),
});
