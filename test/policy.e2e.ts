/**
 * Access control end to end: real signed tokens, the gateway's pre-plan filter, and every subgraph
 * enforcing the same policy again on each field and in SQL (row policy).
 */
import { SIGNATURE_HEADER } from '../policy/subgraph-signature.js';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PreplanMode } from '../gateway/request-stages/preplan-policy.js';
import type { RunningGateway } from '../gateway/server.js';
import { domains } from '../subgraphs/domains.js';
import { postGraphQL, startTestGateway, startTestMesh, STEWARD, testGatewayConfig, testIdentity, tokenFor, type GraphQLResponse, type TestMesh, postSubgraph } from './harness/mesh.js';

let mesh: TestMesh;

const tokens = {
  anonymous: '',
  analystEmea: tokenFor({ subject: 'ana', roles: ['analyst'], regions: ['EMEA'], purpose: 'analytics' }),
  analystNoRegion: tokenFor({ subject: 'nora', roles: ['analyst'], regions: [] }),
  finance: tokenFor({ subject: 'fin', roles: ['finance'] }),
  support: tokenFor({ subject: 'sam', roles: ['support'], regions: ['EMEA'] }),
  steward: tokenFor({ subject: 'stella', roles: ['steward'], purpose: 'customer-support' }),
  viewer: tokenFor({ subject: 'vic', roles: ['viewer'], regions: ['EMEA'] }),
};
type Who = keyof typeof tokens;

function as(who: Who) {
  return { authorization: tokens[who] ? `Bearer ${tokens[who]}` : '' };
}

async function ask<T = any>(who: Who, query: string, variables?: Record<string, unknown>): Promise<GraphQLResponse<T>> {
  return (await mesh.query<T>(query, variables, as(who))).body;
}

const codes = (body: GraphQLResponse) => (body.errors ?? []).map((error) => `${error.extensions?.code} ${error.extensions?.coordinate ?? ''} ${(error.path ?? []).join('.')}`.trim());

let emeaCustomer: string;
let americasCustomer: string;
let americasOrder: string;

beforeAll(async () => {
  mesh = await startTestMesh();
  [{ id: emeaCustomer }, { id: americasCustomer }] = [
    ...(await mesh.sql<{ id: string }>('customers', "select id from customers where region = 'EMEA' order by id limit 1")),
    ...(await mesh.sql<{ id: string }>('customers', "select id from customers where region = 'AMERICAS' order by id limit 1")),
  ] as [{ id: string }, { id: string }];
  [{ id: americasOrder }] = (await mesh.sql<{ id: string }>('finance', "select id from orders where region = 'AMERICAS' order by id limit 1")) as [{ id: string }];
});

afterAll(async () => {
  await mesh?.stop();
});

describe('who sees which fields', () => {
  // (principal, operation) → the errors expected (data is null exactly where an error points)
  const cases: [Who, string, string[]][] = [
    ['anonymous', '{ products(first: 1) { nodes { sku name listPrice } } }', []],
    ['anonymous', '{ products(first: 1) { nodes { sku unitCost } } }', ['UNAUTHENTICATED Product.unitCost products.nodes.unitCost']],
    ['anonymous', '{ customers(first: 1) { totalCount } }', ['UNAUTHENTICATED Query.customers customers']],
    ['viewer', '{ customers(first: 1) { nodes { id country name } } }', ['FORBIDDEN Customer.name customers.nodes.name']],
    ['analystEmea', '{ customers(first: 1) { nodes { id name email birthDate } } }', ['FORBIDDEN Customer.birthDate customers.nodes.birthDate']],
    ['support', '{ customers(first: 1) { nodes { id birthDate } } }', ['FORBIDDEN Customer.birthDate customers.nodes.birthDate']],
    ['steward', '{ customers(first: 1) { nodes { id birthDate } } }', []],
    ['analystEmea', '{ products(first: 1) { nodes { unitCost revenue } } }', ['FORBIDDEN Product.unitCost products.nodes.unitCost']],
    ['finance', '{ products(first: 1) { nodes { unitCost revenue } } }', []],
    ['analystEmea', '{ invoices(first: 1) { nodes { amount payments { amount } } } }', ['FORBIDDEN Invoice.payments invoices.nodes.payments']],
  ];

  it.each(cases)('%s: %s', async (who, query, expected) => {
    const body = await ask(who, query);
    expect(codes(body)).toEqual(expected);
  });

  it('explains a denial: the field, the missing requirement and the rule', async () => {
    const body = await ask('support', '{ customers(first: 1) { nodes { birthDate } } }');
    expect(body.data).toEqual({ customers: { nodes: [{ birthDate: null }] } });
    expect(body.errors![0]).toEqual({
      message:
        'Not allowed to read Customer.birthDate: it requires a declared purpose among customer-support, fraud-prevention, legal-obligation (RESTRICTED default).',
      path: ['customers', 'nodes', 'birthDate'],
      extensions: {
        code: 'FORBIDDEN',
        coordinate: 'Customer.birthDate',
        level: 'RESTRICTED',
        rule: 'RESTRICTED default',
        missing: { purposes: ['customer-support', 'fraud-prevention', 'legal-obligation'] },
        requestId: expect.any(String),
      },
    });
  });

  it('a steward with a declared purpose reads a restricted field, equal to the warehouse', async () => {
    const body = await ask('steward', 'query ($id: ID!) { customer(id: $id) { birthDate } }', { id: americasCustomer });
    const [row] = await mesh.sql<{ birth_date: string }>('customers', 'select birth_date from customers where id = ?', [americasCustomer]);
    expect(body).toEqual({ data: { customer: { birthDate: row!.birth_date } } });
  });
});

describe('row policy: a token for one region never reads another region', () => {
  it('through connections and their totalCount', async () => {
    const body = await ask('analystEmea', `{ customers(first: 500) { totalCount nodes { region } }
      us: customers(filter: {country: ["US"]}) { totalCount }
      orders { totalCount } invoices { totalCount } }`);
    const [customers] = await mesh.sql<{ n: number }>('customers', "select count(*) as n from customers where region = 'EMEA'");
    const [orders] = await mesh.sql<{ n: number }>('finance', "select count(*) as n from orders where region = 'EMEA'");
    const [invoices] = await mesh.sql<{ n: number }>('finance', "select count(*) as n from invoices where region = 'EMEA'");
    expect(body.errors).toBeUndefined();
    expect(body.data.customers.totalCount).toBe(customers!.n);
    expect(new Set(body.data.customers.nodes.map((c: any) => c.region))).toEqual(new Set(['EMEA']));
    expect(body.data.us.totalCount).toBe(0);
    expect(body.data.orders.totalCount).toBe(orders!.n);
    expect(body.data.invoices.totalCount).toBe(invoices!.n);
    expect(customers!.n).toBeGreaterThan(0);
  });

  it('through lookups and entity references', async () => {
    const body = await ask('analystEmea', 'query ($c: ID!, $o: ID!) { customer(id: $c) { name } order(id: $o) { id } }', {
      c: americasCustomer,
      o: americasOrder,
    });
    expect(body.data).toEqual({ customer: null, order: null });
    expect(body.errors).toBeUndefined();
    const own = await ask('analystEmea', 'query ($c: ID!) { customer(id: $c) { name } }', { c: emeaCustomer });
    expect(own.data.customer.name).toEqual(expect.any(String));
  });

  it('through cross-domain fields and aggregates', async () => {
    const body = await ask('analystEmea', '{ orders(first: 200) { nodes { customer { id region } } } products(first: 500, orderBy: {field: SKU}) { nodes { sku revenue unitsSold } } }');
    expect(body.errors).toBeUndefined();
    expect(new Set(body.data.orders.nodes.map((o: any) => o.customer.region))).toEqual(new Set(['EMEA']));
    const sales = await mesh.sql<{ sku: string; revenue: number; units: number }>(
      'finance',
      `select l.sku, sum(l.net_amount) as revenue, sum(l.quantity) as units from order_lines l join orders o on o.id = l.order_id
       where o.region = 'EMEA' and o.status in ('PAID', 'SHIPPED', 'DELIVERED') group by l.sku`,
    );
    const bySku = new Map(sales.map((row) => [row.sku, row]));
    for (const product of body.data.products.nodes) {
      expect(product.revenue).toBeCloseTo(bySku.get(product.sku)?.revenue ?? 0, 2);
      expect(product.unitsSold).toBe(bySku.get(product.sku)?.units ?? 0);
    }
  });

  it('no claim, no rows; a bypass role sees every row of its types only', async () => {
    const none = await ask('analystNoRegion', '{ customers { totalCount } orders { totalCount } }');
    expect(none).toEqual({ data: { customers: { totalCount: 0 }, orders: { totalCount: 0 } } });
    const finance = await ask('finance', '{ customers { totalCount } orders { totalCount } }');
    const [all] = await mesh.sql<{ n: number }>('finance', 'select count(*) as n from orders');
    expect(finance.data).toEqual({ customers: { totalCount: 0 }, orders: { totalCount: all!.n } });
  });

  it('a token for every region reads every row, without the condition; one region short keeps it', async () => {
    const everyRegion = { authorization: `Bearer ${tokenFor({ subject: 'gus', roles: ['analyst'], regions: ['EMEA', 'AMERICAS', 'APAC'] })}` };
    const twoRegions = { authorization: `Bearer ${tokenFor({ subject: 'tess', roles: ['analyst'], regions: ['EMEA', 'AMERICAS'] })}` };
    const QUERY = '{ customers(first: 500, orderBy: {field: ID}) { totalCount nodes { id region } } orders(first: 300) { totalCount nodes { id customer { id } } } }';
    let every: GraphQLResponse<any> = {};
    const everyStatements = await mesh.statementsDuring(async () => void (every = (await mesh.query(QUERY, undefined, everyRegion)).body));
    const [customers] = await mesh.sql<{ n: number }>('customers', 'select count(*) as n from customers');
    const [orders] = await mesh.sql<{ n: number }>('finance', 'select count(*) as n from orders');
    expect(every.errors).toBeUndefined();
    expect([every.data.customers.totalCount, every.data.orders.totalCount]).toEqual([customers!.n, orders!.n]);
    expect(every.data).toEqual((await ask('steward', QUERY)).data);
    // The warehouses are files opened read-only and hold these three regions only: no row fails it.
    expect([...everyStatements.customers, ...everyStatements.finance].filter((statement) => statement.includes('region'))).toEqual([]);
    let two: GraphQLResponse<any> = {};
    const twoStatements = await mesh.statementsDuring(async () => void (two = (await mesh.query(QUERY, undefined, twoRegions)).body));
    expect(new Set(two.data.customers.nodes.map((c: any) => c.region))).toEqual(new Set(['EMEA', 'AMERICAS']));
    const [apac] = await mesh.sql<{ n: number }>('customers', "select count(*) as n from customers where region = 'APAC'");
    expect(two.data.customers.totalCount).toBe(customers!.n - apac!.n);
    expect(twoStatements.customers.every((statement) => statement.includes('"region"'))).toBe(true);
    expect(twoStatements.finance.filter((statement) => statement.includes('"orders"')).every((statement) => statement.includes('"region"'))).toBe(true);
  });
});

describe('attempts to get around the policy', () => {
  const attempts: [string, string, Record<string, unknown> | undefined, string][] = [
    ['an alias', '{ c: customers(first: 1) { nodes { secret: birthDate } } }', undefined, 'c.nodes.secret'],
    ['a fragment', 'query { customers(first: 1) { nodes { ...Secret } } } fragment Secret on Customer { birthDate }', undefined, 'customers.nodes.birthDate'],
    ['an inline fragment', '{ customers(first: 1) { nodes { ... on Customer { birthDate } } } }', undefined, 'customers.nodes.birthDate'],
    ['a variable and @include', 'query ($yes: Boolean!) { customers(first: 1) { nodes { birthDate @include(if: $yes) } } }', { yes: true }, 'customers.nodes.birthDate'],
    ['a nested path through another domain', '{ orders(first: 1) { nodes { customer { birthDate } } } }', undefined, 'orders.nodes.customer.birthDate'],
  ];

  it.each(attempts)('%s', async (_how, query, variables, path) => {
    const body = await ask('analystEmea', query, variables);
    expect(codes(body)).toEqual([`FORBIDDEN Customer.birthDate ${path}`]);
    expect(JSON.stringify(body.data)).not.toMatch(/\d{4}-\d{2}-\d{2}/);
  });

  it('batched requests are refused', async () => {
    const response = await fetch(mesh.gateway.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...as('analystEmea') },
      body: JSON.stringify([{ query: '{ categories { id } }' }, { query: '{ customers { nodes { birthDate } } }' }]),
    });
    expect(response.status).toBe(400);
    expect(await response.text()).not.toMatch(/\d{4}-\d{2}-\d{2}/);
  });

  it('introspection needs a signed-in principal', async () => {
    const anonymous = await ask('anonymous', '{ __schema { queryType { name } } t: __type(name: "Customer") { name } }');
    expect(codes(anonymous)).toEqual(['UNAUTHENTICATED Query.__schema __schema', 'UNAUTHENTICATED Query.__schema t']);
    const signedIn = await ask('viewer', '{ __schema { queryType { name } } }');
    expect(signedIn).toEqual({ data: { __schema: { queryType: { name: 'Query' } } } });
  });

  it('a token that does not verify is a 401 with its reason, never anonymous', async () => {
    const expired = tokenFor({ ...STEWARD, expiresInSeconds: -120 });
    for (const [authorization, reason] of [
      [`Bearer ${expired}`, 'TOKEN_EXPIRED'],
      [`Bearer ${tokens.steward.slice(0, -4)}AAAA`, 'INVALID_SIGNATURE'],
      ['Bearer x.y', 'MALFORMED_TOKEN'],
    ] as const) {
      const response = await fetch(mesh.gateway.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization },
        body: JSON.stringify({ query: '{ products(first: 1) { nodes { sku } } }' }),
      });
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toContain(reason);
      const body = (await response.json()) as GraphQLResponse;
      expect(body.errors?.[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason });
      expect(body).not.toHaveProperty('data');
    }
  });
});

// Callers that hold the signing key (the gateway, a platform tool, or one who stole the key): the
// subgraph still enforces the policy of the token they forward (zero trust, second line).
describe('subgraphs called directly, without the gateway', () => {
  const entities = 'query ($r: [_Any!]!) { _entities(representations: $r) { ... on Customer { id name birthDate } } }';

  it('give an anonymous caller nothing but PUBLIC data, through _entities too', async () => {
    const { body } = await postSubgraph<any>(mesh.subgraphs.customers!.url, entities, { r: [{ __typename: 'Customer', id: emeaCustomer }] });
    expect(body.data._entities).toEqual([null]);
    expect(body.errors?.[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', coordinate: 'Customer.id' });
    const customers = await postSubgraph<any>(mesh.subgraphs.customers!.url, '{ customers { totalCount } }');
    expect(customers.body.data).toEqual({ customers: null });
  });

  it("apply the field and row policies of the caller's own token", async () => {
    const { body } = await postSubgraph<any>(
      mesh.subgraphs.customers!.url,
      entities,
      { r: [{ __typename: 'Customer', id: emeaCustomer }, { __typename: 'Customer', id: americasCustomer }] },
      as('analystEmea'),
    );
    expect(body.data._entities).toEqual([{ id: emeaCustomer, name: expect.any(String), birthDate: null }, null]);
    expect(codes(body)).toEqual(['FORBIDDEN Customer.birthDate _entities.0.birthDate']);
  });

  it("finance gives nothing of another region's customer through its entity fields", async () => {
    const { body } = await postSubgraph<any>(
      mesh.subgraphs.finance!.url,
      'query ($r: [_Any!]!) { _entities(representations: $r) { ... on Customer { orders { totalCount nodes { id } } } } }',
      { r: [{ __typename: 'Customer', id: americasCustomer }] },
      as('analystEmea'),
    );
    expect(body).toEqual({ data: { _entities: [{ orders: { totalCount: 0, nodes: [] } }] } });
  });

  it("customers gives nothing of another region's customer, its lifetime value included (kept from finance's orders), through its entity lookup", async () => {
    const { body } = await postSubgraph<any>(
      mesh.subgraphs.customers!.url,
      'query ($r: [_Any!]!) { _entities(representations: $r) { ... on Customer { id lifetimeValue } } }',
      { r: [{ __typename: 'Customer', id: americasCustomer }] },
      as('analystEmea'),
    );
    expect(body).toEqual({ data: { _entities: [null] } });
    // The steward, whom the row policy does not hold, reads it.
    const steward = await postSubgraph<any>(mesh.subgraphs.customers!.url, 'query ($r: [_Any!]!) { _entities(representations: $r) { ... on Customer { id lifetimeValue } } }', { r: [{ __typename: 'Customer', id: americasCustomer }] }, as('steward'));
    expect(steward.body.data._entities[0]).toMatchObject({ id: americasCustomer, lifetimeValue: expect.any(Number) });
  });

  it('refuse a forged token with 401, even on a signed request', async () => {
    const { status, body } = await postSubgraph(mesh.subgraphs.finance!.url, '{ orders { totalCount } }', undefined, { authorization: `Bearer ${tokens.steward.slice(0, -4)}AAAA` });
    expect(status).toBe(401);
    expect(body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});

describe('the gateway filters before planning', () => {
  /** A real HTTP proxy in front of a subgraph that records the operations the gateway sends. */
  async function recordingProxy(target: string): Promise<{ url: string; seen: string[]; server: Server }> {
    const seen: string[] = [];
    const server = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks).toString();
      seen.push((JSON.parse(body) as { query: string }).query);
      const answer = await fetch(target, {
        method: 'POST',
        // The gateway's signature goes along: the proxy changes nothing it covers.
        headers: { 'content-type': 'application/json', authorization: req.headers.authorization ?? '', [SIGNATURE_HEADER]: String(req.headers[SIGNATURE_HEADER] ?? '') },
        body,
      });
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(await answer.text());
    }).listen(0, '127.0.0.1');
    await once(server, 'listening');
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`, seen, server };
  }

  async function gatewayThrough(proxyUrl: string, mode: PreplanMode, identity = testIdentity): Promise<RunningGateway> {
    const gateway = await startTestGateway(
      testGatewayConfig({
        dataDir: mesh.dataDir,
        name: `${mode}-${Math.random().toString(36).slice(2)}`,
        supergraph: { kind: 'subgraphs', subgraphs: domains.map(({ name }) => ({ name, url: name === 'customers' ? proxyUrl : mesh.subgraphs[name]!.url })) },
        overrides: { composeTimeoutMs: 10_000, identity, policyMode: mode },
      }),
    );
    await gateway.ready;
    return gateway;
  }

  it('does not send a denied field to the subgraph, and answers it as null with an error', async () => {
    const proxy = await recordingProxy(mesh.subgraphs.customers!.url);
    const gateway = await gatewayThrough(proxy.url, 'filter');
    try {
      proxy.seen.length = 0;
      const { body } = await postGraphQL<any>(gateway.url, '{ customers(first: 2) { nodes { id name birthDate } } }', undefined, as('analystEmea'));
      expect(body.data.customers.nodes).toEqual([
        { id: expect.any(String), name: expect.any(String), birthDate: null },
        { id: expect.any(String), name: expect.any(String), birthDate: null },
      ]);
      expect(codes(body)).toEqual(['FORBIDDEN Customer.birthDate customers.nodes.birthDate']);
      expect(proxy.seen).toHaveLength(1);
      expect(proxy.seen[0]).toMatch(/name/);
      expect(proxy.seen[0]).not.toMatch(/birthDate/);
    } finally {
      await gateway.stop();
      proxy.server.close();
    }
  });

  it('in reject mode refuses the whole operation and asks no subgraph', async () => {
    const proxy = await recordingProxy(mesh.subgraphs.customers!.url);
    const gateway = await gatewayThrough(proxy.url, 'reject');
    try {
      proxy.seen.length = 0;
      const { body } = await postGraphQL<any>(gateway.url, '{ customers(first: 2) { nodes { id name birthDate } } }', undefined, as('analystEmea'));
      expect(body.data).toBeUndefined();
      expect(codes(body)).toEqual(['FORBIDDEN Customer.birthDate']);
      expect(proxy.seen).toEqual([]);
      const allowed = await postGraphQL<any>(gateway.url, '{ customers(first: 1) { nodes { name } } }', undefined, as('analystEmea'));
      expect(allowed.body.errors).toBeUndefined();
    } finally {
      await gateway.stop();
      proxy.server.close();
    }
  });

  it('with AUTH_ANONYMOUS=reject refuses a request without a token with 401', async () => {
    const gateway = await gatewayThrough(mesh.subgraphs.customers!.url, 'filter', { ...testIdentity, anonymous: 'reject' });
    try {
      const anonymous = await postGraphQL(gateway.url, '{ products(first: 1) { nodes { sku } } }');
      expect(anonymous.status).toBe(401);
      expect(anonymous.body.errors?.[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'MISSING_TOKEN' });
      const signedIn = await postGraphQL(gateway.url, '{ products(first: 1) { nodes { sku } } }', undefined, as('viewer'));
      expect(signedIn.status).toBe(200);
    } finally {
      await gateway.stop();
    }
  });
});
