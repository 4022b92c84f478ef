/**
 * Cost estimates of operations on the real supergraph (the three domains' SDLs composed), each
 * equal to a value computed by hand from the directives in their SDL.
 */
import { buildSchema, getIntrospectionQuery, getOperationAST, graphqlSync, parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { domains } from '../subgraphs/domains.js';
import { printDomainSdl } from '../subgraphs/kit/domain-schema.js';
import { estimateCost, readCostIndex } from '../gateway/request-stages/cost.js';
import { composeSupergraph } from '../gateway/supergraph/supergraph.js';

const composed = composeSupergraph(domains.map((domain) => ({ name: domain.name, url: `http://${domain.name}`, sdl: printDomainSdl(domain) })));
const schema = buildSchema(composed.apiSchemaSdl);
const index = readCostIndex(parse(composed.supergraphSdl));

function cost(query: string, variables: Record<string, unknown> = {}): number {
  const document = parse(query);
  return estimateCost({ schema, index, document, operation: getOperationAST(document)!, variables });
}

describe('the cost estimate', () => {
  it('reads the directives the domains declare', () => {
    expect(index.fieldWeights.get('Product.revenue')).toBe(10);
    // Kept as a column by the customers domain (from finance's orders), it costs what a scalar costs.
    expect(index.fieldWeights.get('Customer.lifetimeValue')).toBeUndefined();
    expect(index.fieldWeights.get('Query.salesAggregate')).toBe(5);
    expect(index.listSizes.get('Query.orders')).toEqual({ assumedSize: 20, slicingArguments: ['first'], sizedFields: ['edges', 'nodes'] });
    expect(index.listSizes.get('Order.lines')).toEqual({ assumedSize: 8, slicingArguments: [], sizedFields: [] });
  });

  it.each([
    // Scalars cost 0; one object 1.
    ['{ product(sku: "SKU-000001") { sku name } }', {}, 1],
    // A connection (1) with its slicing argument sizing `nodes`: 1 + 50 × Product (1).
    ['{ products(first: 50) { nodes { sku name } } }', {}, 51],
    // Without `first`: the assumed size, 20.
    ['{ products { nodes { sku } pageInfo { hasNextPage } } }', {}, 1 + 20 + 1],
    // The slicing argument from a variable.
    ['query($n: Int) { customers(first: $n) { nodes { id } } }', { n: 200 }, 201],
    // Nested: orders(500) × (Order 1 + customer 1 + lines 8 × (OrderLine 1 + product 1)).
    ['{ orders(first: 500) { nodes { id customer { name } lines { quantity product { name } } } } }', {}, 1 + 500 * (1 + 1 + 8 * 2)],
    // Expensive fields: revenue 10 for each of 100 products; lifetimeValue, a column, 0.
    ['{ productList(limit: 100) { sku revenue } }', {}, 100 * (1 + 10)],
    ['{ customerList(limit: 100) { id lifetimeValue } }', {}, 100 * 1],
    // salesAggregate: weight 5 per group, `limit` of them; product 1 and revenue 0 each.
    ['{ salesAggregate(groupBy: [PRODUCT], limit: 10) { revenue product { name } } }', {}, 10 * (5 + 1)],
    // Every category (assumed 20) × its products (first 5) × (1 + revenue 10).
    ['{ categories { name products(first: 5) { nodes { revenue } } } }', {}, 20 * (1 + 1 + 5 * (1 + 10))],
    // Fragments count where they are spread; skipped fields do not count.
    ['{ customers(first: 10) { nodes { ...C } } } fragment C on Customer { id addresses { city } lifetimeValue @skip(if: true) }', {}, 1 + 10 * (1 + 3 * 1)],
    ['query($no: Boolean!) { customers(first: 10) { nodes { lifetimeValue @include(if: $no) } } }', { no: false }, 1 + 10 * 1],
    // A variable not sent takes its default value: sized 500, not the assumed 20.
    ['query($a: Int = 500) { customers(first: $a) { nodes { id } } }', {}, 501],
    ['query($a: Int = 500) { customers(first: $a) { nodes { id } } }', { a: 3 }, 4],
    // ... in an input object and a directive's condition too.
    ['query($skip: Boolean = true) { customers(first: 10) { nodes { id lifetimeValue @skip(if: $skip) } } }', {}, 11],
    // __typename is a scalar: 0.
    ['{ __typename }', {}, 0],
  ])('%s costs %s', (query, variables, expected) => {
    expect(cost(query, variables)).toBe(expected);
  });

  /** The objects an answer holds (what introspection is charged: one per object). */
  const objectsIn = (value: unknown): number =>
    Array.isArray(value) ? value.reduce((sum: number, item) => sum + objectsIn(item), 0) : value !== null && typeof value === 'object' ? 1 + Object.values(value).reduce((sum: number, item) => sum + objectsIn(item), 0) : 0;
  const answerObjects = (query: string) => {
    const answer = graphqlSync({ schema, source: query });
    expect(answer.errors).toBeUndefined();
    return objectsIn(answer.data) - 1; // the `data` object itself is not an answer's object
  };

  it('charges introspection one per object its answer holds, as graphql-js answers it', () => {
    const standard = getIntrospectionQuery({ descriptions: true, specifiedByUrl: true, directiveIsRepeatable: true, inputValueDeprecation: true });
    const objects = answerObjects(standard);
    expect(objects).toBeGreaterThan(1000); // the mesh's API schema: about 1,300
    expect(cost(standard)).toBe(objects);
    // Within the anonymous budget (2,000): the IDE's schema explorer works signed out.
    expect(cost(standard)).toBeLessThan(2_000);
    const typeQuery = '{ __type(name: "Customer") { name fields { name args { name type { name ofType { name } } } type { kind ofType { kind ofType { name } } } } } }';
    expect(cost(typeQuery)).toBe(answerObjects(typeQuery));
    expect(cost('query($t: String!) { __type(name: $t) { fields { name } } }', { t: 'Customer' })).toBe(answerObjects('{ __type(name: "Customer") { fields { name } } }'));
    expect(cost('{ __type(name: "NoSuchType") { name } }')).toBe(0);
  });

  it('charges fifteen aliased copies of the schema fifteen times', () => {
    const one = '__schema { types { name fields { name type { name ofType { name ofType { name } } } } } }';
    const fifteen = `{ ${Array.from({ length: 15 }, (_, i) => `s${i}: ${one}`).join(' ')} }`;
    expect(cost(fifteen)).toBe(15 * answerObjects(`{ ${one} }`));
    expect(cost(fifteen)).toBeGreaterThan(2_000);
  });

  it('counts deep introspection nesting through fragments once per type (bounded work, exact count)', () => {
    const deep = `{ __schema { types { ...T } } } fragment T on __Type { fields { type { ...R } } } fragment R on __Type { name ofType { name ofType { name } } fields { name } }`;
    expect(cost(deep)).toBe(answerObjects(deep));
  });

  it('costs fragments that spread each other twice, 30 deep, once each (no exponential walk)', () => {
    const fragments = Array.from({ length: 30 }, (_, i) => `fragment F${i} on Customer { id ${i < 29 ? `...F${i + 1} ...F${i + 1}` : 'name'} }`).join(' ');
    // Each fragment doubles the one below: 2^29 copies of `id`, all scalars (0) on one Customer.
    expect(cost(`{ customers(first: 2) { nodes { ...F0 } } } ${fragments}`)).toBe(1 + 2 * 1);
  });
});

describe('the peer benchmark under the limits `npm run bench:peers` gives it', () => {
  const bench = new URL('../../shared/peer-bench/', import.meta.url);
  it('fits its query in the raised anonymous budget, and not in the default one', async () => {
    const { readFile } = await import('node:fs/promises');
    const { Supergraph } = await import('@apollo/federation-internals');
    const { parseLimitsConfig, DEFAULT_LIMITS } = await import('../gateway/request-stages/allowances.js');
    const supergraph = await readFile(new URL('supergraph.graphql', bench), 'utf8');
    const payload = JSON.parse(await readFile(new URL('payload.json', bench), 'utf8')) as { query: string };
    const peerSchema = Supergraph.build(supergraph).apiSchema().toGraphQLJSSchema();
    const document = parse(payload.query);
    const estimate = estimateCost({ schema: peerSchema, index: readCostIndex(parse(supergraph)), document, operation: getOperationAST(document)!, variables: {} });
    const script = await readFile(new URL('peers.sh', import.meta.url), 'utf8');
    const limits = parseLimitsConfig(/GATEWAY_LIMITS:-'([^']+)'/.exec(script)![1]!);
    expect(estimate).toBeGreaterThan(DEFAULT_LIMITS.anonymous.maxCost);
    expect(estimate).toBeLessThanOrEqual(limits.anonymous.maxCost);
    // At the benchmark's pace (a few hundred answers a second) the rate allowance never runs out in a window.
    expect(limits.anonymous.ratePerWindow / estimate).toBeGreaterThan(1_000 * limits.rateWindowSeconds);
  });
});
