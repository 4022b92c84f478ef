/**
 * The data product contract, run over every product of every domain (issue 13, part 1): what the
 * kit serves from a declaration, on the real warehouses, for a principal the row policies bypass
 * and for one they hold: a connection walked page by page yields every visible row once, in order;
 * its count and the offset list agree with it and with the test's own SQL; lookups are batched and
 * answer only visible rows; every path holds the row policy.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestPolicy } from '../policy/decide.js';
import { governanceRules } from '../policy/governance.rules.js';
import { readPolicy, type PolicyIndex } from '../policy/policy-index.js';
import type { Principal } from '../policy/principal.js';
import { domains, type AnyDomain } from '../subgraphs/domains.js';
import type { DataProduct } from '../subgraphs/kit/data-product.js';
import { RequestLoaders } from '../subgraphs/kit/loaders.js';
import { subgraphTypeDefs } from '../subgraphs/kit/domain-schema.js';
import { dialectAdapter } from '../subgraphs/kit/warehouse/dialects.js';
import { startTestMesh, type MeshDomain, type TestMesh } from './harness/mesh.js';

const principal = (roles: string[], regions: string[]): Principal => ({
  anonymous: false,
  subject: 'contract',
  issuer: null,
  roles,
  scopes: [],
  purpose: 'customer-support',
  client: null,
  attributes: { regions },
});
const PRINCIPALS = { steward: principal(['steward'], []), 'analyst of EMEA': principal(['analyst'], ['EMEA']) };

let mesh: TestMesh;
const policies = new Map<string, PolicyIndex>();
beforeAll(async () => {
  mesh = await startTestMesh();
  for (const domain of domains) policies.set(domain.name, readPolicy(subgraphTypeDefs(domain), governanceRules));
});
afterAll(async () => {
  await mesh?.stop();
});

const cases = domains.flatMap((domain) =>
  domain.dataProducts.flatMap((product) => Object.entries(PRINCIPALS).map(([who, p]) => [`${domain.name}.${product.spec.name}`, who, domain, product, p] as const)),
);

/** The keys a principal may see, by the test's own SQL, in key order. */
async function visibleKeys(domain: AnyDomain, product: DataProduct<any, any, any>, who: Principal): Promise<string[]> {
  const { table, key, type } = product.spec;
  const policy = policies.get(domain.name)!.rowPolicy(type);
  const filtered = policy && !policy.bypassRoles.some((role) => who.roles.includes(role));
  const values = filtered ? (who.attributes[policy.claim] ?? []) : [];
  const where = filtered ? `where ${policy.column} in (${values.map(() => '?').join(', ') || 'null'})` : '';
  const rows = await mesh.sql<Record<string, string>>(domain.name, `select ${key} as k from ${table} ${where} order by ${key}`, values);
  return rows.map((row) => row.k!);
}

describe.each(cases)('%s, for a %s', (_id, _who, domain, product, who) => {
  const reader = () => product.reader(mesh.warehouses[domain.name]!.db, new RequestLoaders(), new RequestPolicy(policies.get(domain.name)!, who), dialectAdapter(mesh.warehouses[domain.name]!.dialect).sql);
  const keyOf = (node: any): string => node[Object.entries(product.spec.columns).find(([, column]) => column === product.spec.key)![0]];
  const keyOrdered = product.spec.orderings[product.spec.defaultOrder.field]?.length === 1;

  it('walks its connection page by page: every visible row once, in order, with its count', async () => {
    const expected = await visibleKeys(domain, product, who);
    const seen: string[] = [];
    let after: string | null = null;
    let total = -1;
    for (let pages = 0; pages < 1_000; pages++) {
      const page = await reader().connection({ first: 97, after });
      if (total < 0) total = await page.totalCount();
      seen.push(...page.nodes.map(keyOf));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(new Set(seen).size).toBe(seen.length);
    expect(keyOrdered ? seen : [...seen].sort()).toEqual(expected);
    expect(total).toBe(expected.length);
  });

  it('answers its offset list in the connection\'s order, and every row of it alike', async () => {
    const first = await reader().connection({ first: 150 });
    const list = await reader().list({ limit: 100, offset: 50 });
    expect(list.map(keyOf)).toEqual(first.nodes.slice(50, 150).map(keyOf));
    const all = (await reader().all()).map(keyOf);
    expect([...all].sort()).toEqual(await visibleKeys(domain, product, who));
  });

  it('looks up visible rows in one batched statement, and answers null outside the row policy', async () => {
    const expected = await visibleKeys(domain, product, who);
    const everything = await mesh.sql<{ k: string }>(domain.name, `select ${product.spec.key} as k from ${product.spec.table} order by ${product.spec.key} limit 400`);
    const sample = everything.map((row) => row.k);
    const visible = new Set(expected);
    const one = reader();
    let answers: unknown[] = [];
    const statements = await mesh.statementsDuring(async () => {
      answers = await Promise.all(sample.map((key) => one.byKey(key)));
    });
    expect(statements[domain.name as MeshDomain]).toHaveLength(1);
    answers.forEach((node, i) => {
      if (visible.has(sample[i]!)) expect(keyOf(node)).toBe(sample[i]);
      else expect(node).toBeNull();
    });
  });
});

it('covers a product with a row policy and one without, for both principals', () => {
  const typed = cases.map(([id]) => id);
  expect(new Set(typed)).toEqual(new Set(['customers.customers', 'products.products', 'products.categories', 'finance.orders', 'finance.invoices']));
  const withPolicy = domains.flatMap((domain) => domain.dataProducts.filter((product) => readPolicy(subgraphTypeDefs(domain), governanceRules).rowPolicy(product.spec.type)));
  expect(withPolicy.length).toBeGreaterThanOrEqual(3);
});
