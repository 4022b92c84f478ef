/**
 * The products data products, read from the products warehouse. Every list is filtered, ordered
 * and paged in SQL; lookups by key and per-category lists are batched per request.
 */
import { sql, type Expression, type Kysely, type SqlBool } from 'kysely';
import {
  listQuery,
  orderingOf,
  pageQuery,
  perParentPageQuery,
  readPageArgs,
  toConnection,
  type Connection,
  type ListArgs,
  type Selection,
  type OrderInput,
  type PageArgs,
  type SortColumn,
} from '../kit/connection.js';
import { anyOf, atLeast, atMost, containsText, countRows, guardArguments, listArguments, timeWindow, whereAll, type ArgumentField, type RequestAccess } from '../kit/filters.js';
import { manyByKey, oneByKey, type RequestLoaders } from '../kit/loaders.js';
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
const PRODUCT_ORDER_COLUMNS: Record<ProductSortField, readonly SortColumn[]> = {
  SKU: [BY_SKU],
  NAME: [{ column: 'name', field: 'Product.name' }, BY_SKU],
  LIST_PRICE: [{ column: 'list_price', numeric: true, field: 'Product.listPrice' }, BY_SKU],
  LAUNCH_DATE: [{ column: 'launch_date', cast: 'date', field: 'Product.launchDate' }, BY_SKU],
};

/** The field each argument of a product list reads: none may reveal what the principal cannot see. */
const PRODUCT_ARGUMENTS: Record<`filter.${keyof ProductFilter}` | 'from' | 'to', ArgumentField> = {
  'filter.categoryId': { field: 'Product.category' },
  'filter.department': { field: 'Category.department' },
  'filter.brand': { field: 'Product.brand' },
  'filter.launchedFrom': { field: 'Product.launchDate', edge: 'from' },
  'filter.launchedTo': { field: 'Product.launchDate', edge: 'to-inclusive' },
  'filter.minListPrice': { field: 'Product.listPrice', edge: 'from' },
  'filter.maxListPrice': { field: 'Product.listPrice', edge: 'to-inclusive' },
  'filter.nameContains': { field: 'Product.name' },
  from: { field: 'Product.launchDate', edge: 'from' },
  to: { field: 'Product.launchDate', edge: 'to-exclusive' },
};

function productOrdering(orderBy: OrderInput<ProductSortField> | null | undefined, access: RequestAccess) {
  return orderingOf({
    list: 'products',
    columnsByField: PRODUCT_ORDER_COLUMNS,
    order: orderBy,
    fallback: { field: 'SKU', direction: 'ASC' },
    access,
  });
}

function toProduct(row: ProductRow): Product {
  return {
    sku: row.sku,
    name: row.name,
    categoryId: row.category_id,
    brand: row.brand,
    listPrice: row.list_price,
    unitCost: row.unit_cost,
    launchDate: row.launch_date,
  };
}

function toCategory(row: CategoryRow): Category {
  return { id: row.id, name: row.name, department: row.department };
}

function productConditions(filter: ProductFilter | null | undefined): Expression<SqlBool>[] {
  const conditions: Expression<SqlBool>[] = [];
  if (!filter) return conditions;
  if (filter.categoryId) conditions.push(anyOf('category_id', filter.categoryId, 'filter.categoryId'));
  if (filter.department) {
    const inDepartments = anyOf('department', filter.department, 'filter.department');
    conditions.push(sql<SqlBool>`category_id in (select id from categories where ${inDepartments})`);
  }
  if (filter.brand) conditions.push(anyOf('brand', filter.brand, 'filter.brand'));
  if (filter.launchedFrom) conditions.push(atLeast('launch_date', filter.launchedFrom, 'date'));
  if (filter.launchedTo) conditions.push(atMost('launch_date', filter.launchedTo, 'date'));
  if (filter.minListPrice != null) conditions.push(atLeast('list_price', filter.minListPrice));
  if (filter.maxListPrice != null) conditions.push(atMost('list_price', filter.maxListPrice));
  if (filter.nameContains != null) conditions.push(containsText('name', filter.nameContains, 'filter.nameContains'));
  return conditions;
}

export interface ProductsRepository {
  product(sku: string): Promise<Product | null>;
  products(args: ProductsArgs): Promise<Connection<Product>>;
  productList(args: ProductListArgs): Promise<Product[]>;
  category(id: string): Promise<Category | null>;
  categories(): Promise<Category[]>;
  productsOfCategory(categoryId: string, args: CategoryProductsArgs): Promise<Connection<Product>>;
}

/** The conditions of a product list, shared by the connection and the offset list: its filter and launch window. */
function productSelectionConditions(args: ProductSelection, access: RequestAccess): Expression<SqlBool>[] {
  guardArguments(access, listArguments(args), PRODUCT_ARGUMENTS);
  return [...productConditions(args.filter), ...timeWindow('launch_date', args, 'date')];
}

export function createProductsRepository(db: Kysely<ProductsWarehouse>, loaders: RequestLoaders, access: RequestAccess): ProductsRepository {
  const productBySku = () =>
    loaders.get<string, Product | null>('Product.bySku', null, async (skus) => {
      const rows = await db.selectFrom('products').selectAll().where('sku', 'in', skus).execute();
      return oneByKey(skus, rows.map(toProduct), (product) => product.sku);
    });
  const categoryById = () =>
    loaders.get<string, Category | null>('Category.byId', null, async (ids) => {
      const rows = await db.selectFrom('categories').selectAll().where('id', 'in', ids).execute();
      return oneByKey(ids, rows.map(toCategory), (category) => category.id);
    });
  const productCountByCategory = () =>
    loaders.get<string, number>('Category.productCount', null, async (ids) => {
      const rows = await db
        .selectFrom('products')
        .select((eb) => ['category_id', eb.fn.countAll<number>().as('count')])
        .where('category_id', 'in', ids)
        .groupBy('category_id')
        .execute();
      return oneByKey(ids, rows, (row) => row.category_id).map((row) => Number(row?.count ?? 0));
    });

  return {
    product: (sku) => productBySku().load(sku),
    category: (id) => categoryById().load(id),
    async categories() {
      const rows = await db.selectFrom('categories').selectAll().orderBy('department').orderBy('name').execute();
      return rows.map(toCategory);
    },
    async products(args) {
      const page = readPageArgs(args, productOrdering(args.orderBy, access));
      const conditions = productSelectionConditions(args, access);
      const rows = await pageQuery(whereAll(db.selectFrom('products').selectAll(), conditions), page).execute();
      return toConnection(rows, page, toProduct, () => countRows(whereAll(db.selectFrom('products'), conditions)));
    },
    async productList(args) {
      const conditions = productSelectionConditions(args, access);
      const rows = await listQuery(whereAll(db.selectFrom('products').selectAll(), conditions), productOrdering(args.orderBy, access), args).execute();
      return rows.map(toProduct);
    },
    productsOfCategory(categoryId, args) {
      const page = readPageArgs(args, productOrdering(args.orderBy, access));
      const loader = loaders.get<string, Connection<Product>>('Category.products', args, async (ids) => {
        const query = db.selectFrom('products').selectAll().where('category_id', 'in', ids);
        const rows = (await perParentPageQuery(db, query, 'category_id', page).execute()) as ProductRow[];
        return manyByKey(ids, rows, (row) => row.category_id).map((group, i) =>
          toConnection(group, page, toProduct, () => productCountByCategory().load(ids[i]!)),
        );
      });
      return loader.load(categoryId);
    },
  };
}
