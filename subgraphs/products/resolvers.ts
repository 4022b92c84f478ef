import type { DomainContext, GraphQLResolverMap } from '@data-mesh/kit';
import type { Category, CategoryProductsArgs, Product, ProductListArgs, ProductsArgs, ProductsRepository } from './repository.js';

type Context = DomainContext<ProductsRepository>;

export const productsResolvers: GraphQLResolverMap<Context> = {
  Query: {
    product: (_: unknown, { sku }: { sku: string }, { repo }: Context) => repo.product(sku),
    products: (_: unknown, args: ProductsArgs, { repo }: Context) => repo.products(args),
    productList: (_: unknown, args: ProductListArgs, { repo }: Context) => repo.productList(args),
    category: (_: unknown, { id }: { id: string }, { repo }: Context) => repo.category(id),
    categories: (_: unknown, __: unknown, { repo }: Context) => repo.categories(),
  },
  Product: {
    __resolveReference: ({ sku }: { sku: string }, { repo }: Context) => repo.product(sku),
    // Every product row has a category (a foreign key in the warehouse), so this is never null.
    category: (product: Product, _: unknown, { repo }: Context) => repo.category(product.categoryId),
  },
  Category: {
    __resolveReference: ({ id }: { id: string }, { repo }: Context) => repo.category(id),
    products: (category: Category, args: CategoryProductsArgs, { repo }: Context) =>
      repo.productsOfCategory(category.id, args),
  },
};
