/**
 * The products domain: the catalogue (products and categories), from the product information system.
 */
import { defineDomain } from '@data-mesh/kit';
import { categoriesProduct, createProductsRepository, productsProduct } from './repository.js';
import { productsResolvers } from './resolvers.js';
import { productsTables } from './tables.js';

export const products = defineDomain({
  name: 'products',
  folder: import.meta.url,
  resolvers: productsResolvers,
  warehouseVersion: 1,
  tables: productsTables,
  dataProducts: [productsProduct, categoriesProduct],
  createRepository: createProductsRepository,
});
