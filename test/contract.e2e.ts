/**
 * The warehouse adapter contract: the same generated data, built by the same ingestion into DuckDB
 * files and into PostgreSQL schemas, served by the same subgraphs, must answer every query shape
 * identically: paging, filters, orderings, aggregates, row-level policy, masks, errors, and the
 * statements that entity batching costs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestMesh, tokenFor, type GraphQLResponse, type TestMesh } from './harness/mesh.js';

let duckdb: TestMesh;
let postgres: TestMesh;

beforeAll(async () => {
  [duckdb, postgres] = await Promise.all([startTestMesh(), startTestMesh({ warehouse: 'postgres' })]);
});

afterAll(async () => {
  await Promise.all([duckdb?.stop(), postgres?.stop()]);
});

const principals = {
  steward: `Bearer ${tokenFor()}`,
  analystEmea: `Bearer ${tokenFor({ subject: 'ana', roles: ['analyst'], regions: ['EMEA'], purpose: 'analytics' })}`,
  finance: `Bearer ${tokenFor({ subject: 'fin', roles: ['finance'], regions: ['APAC'] })}`,
  anonymous: '',
};

/** The answer without what differs by run (request ids). */
function comparable(body: GraphQLResponse): unknown {
  return JSON.parse(JSON.stringify(body), (key, value) => (key === 'requestId' ? undefined : value));
}

async function both(query: string, variables: Record<string, unknown> | undefined, who: keyof typeof principals) {
  const headers = { authorization: principals[who] };
  const [a, b] = await Promise.all([duckdb.query(query, variables, headers), postgres.query(query, variables, headers)]);
  return { duckdb: comparable(a.body), postgres: comparable(b.body), raw: a.body };
}

const shapes: [string, keyof typeof principals, string, Record<string, unknown>?][] = [
  ['a customers page by name', 'steward', '{ customers(first: 25, orderBy: {field: NAME}) { totalCount edges { cursor node { id name email birthDate signupDate region } } pageInfo { hasNextPage endCursor } } }'],
  ['filters on customers', 'steward', '{ customers(filter: {region: [EMEA, APAC], segment: [CONSUMER], signedUpFrom: "2021-01-01", nameContains: "an"}) { totalCount nodes { id } } }'],
  ['orders by total with a time window', 'steward', '{ orders(first: 30, orderBy: {field: TOTAL, direction: DESC}, filter: {status: [DELIVERED, RETURNED], orderedFrom: "2023-01-01T00:00:00Z", orderedTo: "2024-12-31T23:59:59Z", minTotal: 20}) { totalCount nodes { id total orderedAt status channel lines { lineNumber quantity unitPrice discount netAmount product { sku name } } } } }'],
  ['products with their aggregates', 'steward', '{ products(first: 100, orderBy: {field: LIST_PRICE, direction: DESC}) { totalCount nodes { sku name listPrice unitCost launchDate unitsSold revenue category { id name } } } }'],
  ['categories with paged products', 'steward', '{ categories { id department products(first: 2, orderBy: {field: LAUNCH_DATE}) { totalCount nodes { sku launchDate } pageInfo { endCursor } } } }'],
  ['customers with lifetime values and their orders', 'steward', '{ customers(first: 40) { nodes { id lifetimeValue orders(first: 3) { totalCount nodes { id total } } addresses { kind city } } } }'],
  ['invoices and payments', 'steward', '{ invoices(first: 40, orderBy: {field: ISSUED_ON, direction: DESC}, filter: {status: [PAID, OVERDUE]}) { totalCount nodes { id issuedOn dueOn amount status order { id } payments { amount method paidAt } } } }'],
  ['row policy: an analyst of one region', 'analystEmea', '{ customers { totalCount } orders { totalCount } invoices { totalCount } products(first: 100) { nodes { sku revenue unitsSold } } }'],
  ['masks and denials: an analyst', 'analystEmea', '{ customers(first: 10) { nodes { id name email phone birthDate } } }'],
  ['finance: every order, no customer of another region', 'finance', '{ orders { totalCount } customers { totalCount } products(first: 5) { nodes { unitCost } } }'],
  ['anonymous callers', 'anonymous', '{ products(first: 5) { nodes { sku name unitCost } } customers { totalCount } }'],
  ['sales by month and category, and by ISO week, region and status', 'steward', '{ a: salesAggregate(groupBy: [CATEGORY], bucket: MONTH, from: "2023-01-01T00:00:00Z", to: "2024-01-01T00:00:00Z") { period category { id name } orders lines units revenue averageLineRevenue minLineRevenue maxLineRevenue } b: salesAggregate(groupBy: [REGION, STATUS, CHANNEL], bucket: WEEK, status: [DELIVERED, RETURNED, CANCELLED], limit: 200) { period region status channel orders revenue } c: salesAggregate(groupBy: [PRODUCT], bucket: DAY, from: "2024-11-01T00:00:00Z", to: "2024-12-01T00:00:00Z") { period product { sku } units revenue } }'],
  ['sales of one region: an analyst', 'analystEmea', '{ salesAggregate(groupBy: [REGION]) { region orders revenue } }'],
  ['unknown ids and bad cursors', 'steward', '{ customer(id: "nope") { id } order(id: "nope") { id } orders(after: "bm9wZQ") { totalCount } }'],
];

describe('DuckDB and PostgreSQL give identical answers', () => {
  it('compares what it says it compares', () => {
    for (const name of ['customers', 'products', 'finance']) {
      expect(duckdb.warehouses[name]!.dialect).toBe('duckdb');
      expect(postgres.warehouses[name]!.dialect).toBe('postgres');
      expect(postgres.warehouses[name]!.location).toMatch(new RegExp(`^postgres://127\\.0\\.0\\.1:5432/mesh_test_\\d+_\\w+\\?schema=${name}$`));
    }
  });

  it.each(shapes)('%s', async (_what, who, query, variables) => {
    const answers = await both(query, variables, who);
    expect(answers.postgres).toEqual(answers.duckdb);
    // A comparison of two empty answers would prove nothing.
    expect(JSON.stringify(answers.raw.data ?? answers.raw.errors).length).toBeGreaterThan(20);
  });

  it('walking a connection page by page: every page and cursor the same', async () => {
    for (let page = 0, after: string | null = null; page < 200; page++) {
      const answers = await both(
        'query ($after: String) { orders(first: 97, after: $after, orderBy: {field: ORDERED_AT, direction: DESC}) { nodes { id orderedAt } pageInfo { hasNextPage endCursor } } }',
        { after },
        'steward',
      );
      expect(answers.postgres).toEqual(answers.duckdb);
      const info = (answers.raw.data as any).orders.pageInfo;
      if (!info.hasNextPage) return;
      after = info.endCursor;
    }
    throw new Error('paging did not end');
  });

  it('entity batching costs the same statements on both', async () => {
    const query = '{ orders(first: 100) { nodes { id customer { name } lines { quantity product { name } } } } }';
    const counts = async (mesh: TestMesh) => {
      const statements = await mesh.statementsDuring(() => mesh.query(query));
      return Object.fromEntries(Object.entries(statements).map(([domain, list]) => [domain, list.length]));
    };
    const [a, b] = [await counts(duckdb), await counts(postgres)];
    expect(b).toEqual(a);
    expect(a).toEqual({ customers: 1, products: 1, finance: 2 });
  });
});
