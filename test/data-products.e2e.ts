/**
 * Data product declarations (issue 13, part 1): the kit applies a type's row policy on every path
 * of a product declared with defineDataProduct, so adding a row policy to a product needs no other
 * change; and a subgraph that serves a `@rowPolicy` type without such a declaration does not start.
 */
import { parse, print } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { domains } from '../subgraphs/domains.js';
import { UndeclaredRowPolicyError } from '../subgraphs/kit/subgraph-server.js';
import { startTestMesh, startupFailureOf, tokenFor, type TestMesh } from './harness/mesh.js';

const byName = (name: string) => domains.find((domain) => domain.name === name)!;

describe('a row policy added to a product declared without one', () => {
  let mesh: TestMesh;
  let brand: string;
  let mine: { sku: string; category_id: string }[];
  const seen = () => `Bearer ${tokenFor({ subject: 'brand-analyst', roles: ['analyst'], regions: [brand] })}`;

  beforeAll(async () => {
    // Only the SDL changes: `Product` gets a row policy on its brand, matched against the token's regions claim.
    const products = byName('products');
    const sdl = print(products.typeDefs).replace(
      /type Product @key\(fields: "sku"\)/,
      'type Product @key(fields: "sku") @rowPolicy(column: "brand", claim: "regions", bypassRoles: ["steward", "admin"])',
    );
    expect(sdl).toContain('@rowPolicy(column: "brand"');
    mesh = await startTestMesh({ domains: domains.map((domain) => (domain === products ? { ...products, typeDefs: parse(sdl) } : domain)) });
    [{ brand }] = (await mesh.sql<{ brand: string }>('products', 'select brand, count(*) as n from products group by brand order by n desc, brand limit 1')) as [{ brand: string }];
    mine = await mesh.sql('products', 'select sku, category_id from products where brand = ? order by sku', [brand]);
  });
  afterAll(async () => {
    await mesh?.stop();
  });

  it('filters the connection, its count and the offset list', async () => {
    const { body } = await mesh.query<any>('{ products(first: 500) { totalCount nodes { sku brand } } productList(limit: 1000) { sku } }', undefined, { authorization: seen() });
    expect(body.errors).toBeUndefined();
    expect(mine.length).toBeGreaterThan(0);
    expect(body.data.products.nodes.map((p: any) => p.sku)).toEqual(mine.map((p) => p.sku));
    expect(body.data.products.totalCount).toBe(mine.length);
    expect(body.data.productList.map((p: any) => p.sku)).toEqual(mine.map((p) => p.sku));
  });

  it('filters lookups, a category\'s products and their count, and entity references from another domain', async () => {
    const [other] = await mesh.sql<{ sku: string }>('products', 'select sku from products where brand <> ? order by sku limit 1', [brand]);
    const category = mine[0]!.category_id;
    const inCategory = mine.filter((p) => p.category_id === category).map((p) => p.sku);
    const { body } = await mesh.query<any>(
      'query ($mine: ID!, $other: ID!, $category: ID!) { a: product(sku: $mine) { sku } b: product(sku: $other) { sku } category(id: $category) { products(first: 500) { totalCount nodes { sku } } } }',
      { mine: mine[0]!.sku, other: other!.sku, category },
      { authorization: seen() },
    );
    expect(body.errors).toBeUndefined();
    expect(body.data.a).toEqual({ sku: mine[0]!.sku });
    expect(body.data.b).toBeNull();
    expect(body.data.category.products.nodes.map((p: any) => p.sku)).toEqual(inCategory);
    expect(body.data.category.products.totalCount).toBe(inCategory.length);

    // Order lines name products of every brand; resolved through `_entities`, only theirs come back.
    const lines = await mesh.query<any>('{ orders(first: 50) { nodes { lines { product { sku brand } } } } }', undefined, {
      authorization: `Bearer ${tokenFor({ subject: 'brand-analyst', roles: ['analyst'], regions: [brand, 'EMEA', 'AMERICAS', 'APAC'] })}`,
    });
    const products = lines.body.data.orders.nodes.flatMap((order: any) => order.lines.map((line: any) => line.product));
    expect(products.some((p: any) => p === null)).toBe(true);
    // Some of the brand's products do come back through `_entities` (the loop below checks those).
    expect(products.filter(Boolean).length).toBeGreaterThan(0);
    for (const product of products.filter(Boolean)) expect(product.brand).toBe(brand);
  });

  it('lets a role the policy bypasses see every row', async () => {
    const { body } = await mesh.query<any>('{ products(first: 1) { totalCount } }');
    const [all] = await mesh.sql<{ n: number }>('products', 'select count(*) as n from products');
    expect(body.data.products.totalCount).toBe(Number(all!.n));
  });
});

describe('a subgraph serving a @rowPolicy type without a data product declaration', () => {
  it('does not start, and names the type', async () => {
    const failure = await startupFailureOf({ ...byName('customers'), dataProducts: [] });
    expect(failure).toBeInstanceOf(UndeclaredRowPolicyError);
    expect((failure as Error).message).toMatch(/The customers subgraph serves Customer with @rowPolicy but declares no data product for it/);
  });
});
