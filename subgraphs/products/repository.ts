/**
 * The products domain's data products, `products` and `categories`, declared once each: the kit
 * serves their lookups, lists, connections and counts from the declarations (see
 * kit/data-product.ts), with filters, windows, orderings and row policies applied on every path.
 */
import { anyOf, atLeast, atMost, containsText, defineDataProduct, sql, type Connection, type DialectSql, type Kysely, type ListArgs, type PageArgs, type RequestAccess, type RequestLoaders, type Selection, type SortColumn, type SqlBool } from '@data-mesh/kit';
import type { CategoryRow, ProductRow, ProductsWarehouse } from './tables.js';

export interface Product {
  readonly sku: string;
  readonly name: string;
  readonly categoryId: string;
  readonly brand: string;
  readonly listPrice: number;
  readonly unitCost: number;
  readonly launchDate: string;
}

export interface Category {
  readonly id: string;
  readonly name: string;
  readonly department: string;
}

export interface ProductFilter {
  readonly categoryId?: readonly string[] | null;
  readonly department?: readonly string[] | null;
  readonly brand?: readonly string[] | null;
  readonly launchedFrom?: string | null;
  readonly launchedTo?: string | null;
  readonly minListPrice?: number | null;
  readonly maxListPrice?: number | null;
  readonly nameContains?: string | null;
}

export type ProductSortField = 'SKU' | 'NAME' | 'LIST_PRICE' | 'LAUNCH_DATE';

/** What selects products; the window is on the launch date. */
export type ProductSelection = Selection<ProductFilter, ProductSortField>;

export interface ProductsArgs extends PageArgs, ProductSelection {}

export interface ProductListArgs extends ListArgs, ProductSelection {}

export type CategoryProductsArgs = Omit<ProductsArgs, 'filter' | 'from' | 'to'>;

const BY_SKU: SortColumn = { column: 'sku', field: 'Product.sku' };

/** Data product `products`: one row per product, from the product information system. */
export const productsProduct = defineDataProduct<ProductRow, Product, ProductFilter, ProductSortField>({
  name: 'products',
  metadata: {
    title: 'Products',
    version: '1.0.0',
    status: 'active',
    description: {
      purpose: 'The product catalogue: every product on sale, its category, brand, list price and launch date.',
      limitations: 'Prices are the current list prices, not the prices of past orders (see finance order lines). Unit costs are for finance, stewards and admins.',
      usage: 'Join sales to products by SKU; group by category or brand.',
    },
    tags: ['catalogue', 'reference'],
    owners: [{ username: 'products-team@example.com', name: 'Products domain team', role: 'owner' }],
    inputPorts: [{ name: 'pim.products', version: '1.0.0', contractId: 'pim.products.csv', description: 'Product information system export: products.csv' }],
    sla: [
      { property: 'frequency', value: 1, unit: 'd', description: 'Rebuilt from the product information system at each ingestion, daily.' },
      { property: 'latency', value: 24, unit: 'h', element: 'launch_date' },
      { property: 'availability', value: 99.5, unit: '%' },
    ],
  },
  type: 'Product',
  table: 'products',
  quality: [
    { name: 'category_exists', metric: 'relationships', column: 'category_id', to: { table: 'categories', column: 'id' }, mustBe: 0, dimension: 'consistency', severity: 'error' },
    { name: 'list_price_positive', metric: 'invalidValues', column: 'list_price', range: [0.01, 1000000], mustBe: 0, dimension: 'conformity', severity: 'error' },
    { name: 'margin_not_negative', metric: 'sql', query: 'select count(*) from ${table} where unit_cost > list_price', mustBe: 0, dimension: 'accuracy', severity: 'warning', description: 'No product costs more than its list price.' },
    { name: 'not_empty', metric: 'rowCount', mustBeGreaterThan: 0, dimension: 'completeness', severity: 'error' },
    { name: 'sku_format', metric: 'invalidValues', column: 'sku', pattern: 'SKU-[0-9]{6}', mustBe: 0, dimension: 'conformity', severity: 'error', description: '`SKU-` and six digits.' },
    { name: 'name_present', metric: 'missingValues', column: 'name', missingValues: [''], mustBe: 0, dimension: 'completeness', severity: 'error' },
    { name: 'launch_recent', metric: 'latency', column: 'launch_date', mustBeLessOrEqualTo: 730 * 86_400, dimension: 'timeliness', severity: 'warning', description: 'The newest launch is at most two years older than the product information export: an old export delivered again shows here.' },
  ],
  key: 'sku',
  columns: { sku: 'sku', name: 'name', category: 'category_id', brand: 'brand', listPrice: 'list_price', unitCost: 'unit_cost', launchDate: 'launch_date' },
  toNode: (row) => ({
    sku: row.sku,
    name: row.name,
    categoryId: row.category_id,
    brand: row.brand,
    listPrice: row.list_price,
    unitCost: row.unit_cost,
    launchDate: row.launch_date,
  }),
  orderings: {
    SKU: [BY_SKU],
    NAME: [{ column: 'name', field: 'Product.name' }, BY_SKU],
    LIST_PRICE: [{ column: 'list_price', numeric: true, field: 'Product.listPrice' }, BY_SKU],
    LAUNCH_DATE: [{ column: 'launch_date', cast: 'date', field: 'Product.launchDate' }, BY_SKU],
  },
  defaultOrder: { field: 'SKU', direction: 'ASC' },
  filters: {
    categoryId: { field: 'Product.category', where: (ids, argument) => anyOf('category_id', ids, argument) },
    department: {
      field: 'Category.department',
      where: (departments, argument) => sql<SqlBool>`category_id in (select id from categories where ${anyOf('department', departments, argument)})`,
    },
    brand: { field: 'Product.brand', where: (brands, argument) => anyOf('brand', brands, argument) },
    launchedFrom: { field: 'Product.launchDate', edge: 'from', where: (day) => atLeast('launch_date', day, 'date') },
    launchedTo: { field: 'Product.launchDate', edge: 'to-inclusive', where: (day) => atMost('launch_date', day, 'date') },
    minListPrice: { field: 'Product.listPrice', edge: 'from', where: (price) => atLeast('list_price', price) },
    maxListPrice: { field: 'Product.listPrice', edge: 'to-inclusive', where: (price) => atMost('list_price', price) },
    nameContains: { field: 'Product.name', where: (text, argument, dialect) => containsText('name', text, argument, dialect) },
  },
  window: { column: 'launch_date', cast: 'date', field: 'Product.launchDate' },
});

/** Data product `categories`: the product categories and their departments. */
export const categoriesProduct = defineDataProduct<CategoryRow, Category, Record<never, never>, 'DEPARTMENT'>({
  name: 'categories',
  metadata: {
    title: 'Product categories',
    version: '1.0.0',
    status: 'active',
    description: {
      purpose: 'The categories products are sold under, and the department of each.',
      usage: 'Group products and sales by category or department.',
    },
    tags: ['catalogue', 'reference'],
    owners: [{ username: 'products-team@example.com', name: 'Products domain team', role: 'owner' }],
    inputPorts: [{ name: 'pim.categories', version: '1.0.0', contractId: 'pim.categories.csv', description: 'Product information system export: categories.csv' }],
    sla: [
      { property: 'frequency', value: 1, unit: 'd' },
      { property: 'availability', value: 99.5, unit: '%' },
    ],
  },
  type: 'Category',
  table: 'categories',
  quality: [{ name: 'not_empty', metric: 'rowCount', mustBeGreaterThan: 0, dimension: 'completeness', severity: 'error' }],
  key: 'id',
  columns: { id: 'id', name: 'name', department: 'department' },
  toNode: (row) => ({ id: row.id, name: row.name, department: row.department }),
  orderings: {
    DEPARTMENT: [{ column: 'department', field: 'Category.department' }, { column: 'name', field: 'Category.name' }, { column: 'id', field: 'Category.id' }],
  },
  defaultOrder: { field: 'DEPARTMENT', direction: 'ASC' },
  filters: {},
});

export interface ProductsRepository {
  product(sku: string): Promise<Product | null>;
  products(args: ProductsArgs): Promise<Connection<Product>>;
  productList(args: ProductListArgs): Promise<Product[]>;
  category(id: string): Promise<Category | null>;
  categories(): Promise<Category[]>;
  productsOfCategory(categoryId: string, args: CategoryProductsArgs): Promise<Connection<Product>>;
}

export function createProductsRepository(db: Kysely<ProductsWarehouse>, loaders: RequestLoaders, access: RequestAccess, dialect: DialectSql): ProductsRepository {
  const products = productsProduct.reader(db, loaders, access, dialect);
  const categories = categoriesProduct.reader(db, loaders, access, dialect);
  return {
    product: (sku) => products.byKey(sku),
    products: (args) => products.connection(args),
    productList: (args) => products.list(args),
    category: (id) => categories.byKey(id),
    categories: () => categories.all(),
    productsOfCategory: (categoryId, args) => products.connectionOf('category_id', categoryId, args),
  };
}
