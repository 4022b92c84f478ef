/**
 * The federated data product catalog (issue 13, part 4), through the gateway, over real subgraphs:
 * each domain serves its own products' entries, the gateway composes them into
 * `Query.dataProducts` (with facets) and `Query.dataProduct(id)`, with the policy as it applies to
 * the caller and the registry's usage. Governed: signed-in callers only, and nothing in it reveals
 * a value.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kind, parse, print } from 'graphql';
import { CATALOG_SUBGRAPH_NAME, CATALOG_SUBGRAPH_SDL } from '../gateway/catalog/catalog-subgraph.js';
import { catalogUrlOf, createDomainEntries, fetchDomainDocuments } from '../gateway/catalog/domain-entries.js';
import { fetchSubgraphDocuments } from '../gateway/registry/publish.js';
import { openRegistry } from '../gateway/registry/open.js';
import { productVersionsOf } from '../gateway/subgraph-calls/subgraph-data-source.js';
import { composeSupergraph, CompositionFailedError } from '../gateway/supergraph/supergraph.js';
import { DEV_SIGNING_KEY } from '../policy/subgraph-signature.js';
import { domains } from '../subgraphs/domains.js';
import { printDomainSdl } from '../subgraphs/kit/domain-schema.js';
import { freshnessOf } from '../subgraphs/kit/freshness.js';
import { domainProductDocuments } from '../subgraphs/kit/product-documents.js';
import { commonTypeDefs } from '../subgraphs/kit/scalars.js';
import { freePort, postGraphQL, startTestMesh, testLog, tokenFor, type TestMesh } from './harness/mesh.js';

const ENTRY = `
  id name title version status domain tags graphqlType rootFields contractId rowPolicy exampleOperation
  description { purpose limitations usage }
  owners { username name role }
  sla { property value unit element }
  outputPorts { name type version }
  inputPorts { name version contractId }
  fields { name type column classification tags mask readableBy rule policy forYou { access reason } }
  freshness { loadedAt newestRecordAt ageSeconds slaSeconds status }
  lineage { upstream { kind name fields description } downstream { kind name fields description } columns { field column source masking } }
  quality { status lastRun { runId at trigger outcome checks { name dimension severity outcome value threshold unit failedRows } } history(first: 5) { runId outcome } }
`;
const ALL = `query All($filter: DataProductFilter, $first: Int, $after: String) {
  dataProducts(filter: $filter, first: $first, after: $after) {
    totalCount unavailableDomains
    pageInfo { hasNextPage hasPreviousPage endCursor }
    facets { domain { value count } owner { value count } tag { value count } status { value count } classification { value count } }
    nodes { ${ENTRY} }
  }
}`;

const declared = domains.flatMap((domain) => domain.dataProducts.map((product) => ({ domain: domain.name, spec: product.spec, id: `${domain.name}.${product.spec.name}` })));
const analyst = () => `Bearer ${tokenFor({ subject: 'ana', roles: ['analyst'], regions: ['EMEA'] })}`;

describe('the federated data product catalog', () => {
  let mesh: TestMesh;
  let all: any;
  beforeAll(async () => {
    mesh = await startTestMesh();
    const { body } = await mesh.query<any>(ALL, { first: 100 });
    expect(body.errors).toBeUndefined();
    all = body.data.dataProducts;
  });
  afterAll(async () => {
    await mesh?.stop();
  });

  it('lists every declared product of every domain, as declared', () => {
    expect(all.unavailableDomains).toEqual([]);
    expect(all.totalCount).toBe(declared.length);
    expect(all.nodes.map((node: any) => node.id)).toEqual(declared.map((product) => product.id).sort());
    for (const { id, domain, spec } of declared) {
      const node = all.nodes.find((candidate: any) => candidate.id === id);
      const { metadata } = spec;
      expect(node).toMatchObject({ name: spec.name, title: metadata.title, version: metadata.version, status: metadata.status.toUpperCase(), domain, graphqlType: spec.type, contractId: `${id}.contract` });
      expect(node.tags).toEqual(metadata.tags);
      expect(node.owners).toEqual(metadata.owners.map((owner) => ({ username: owner.username, name: owner.name ?? null, role: owner.role })));
      expect(node.description).toEqual({ purpose: metadata.description.purpose, limitations: metadata.description.limitations ?? null, usage: metadata.description.usage ?? null });
      expect(node.sla.map((sla: any) => [sla.property, sla.value, sla.unit])).toEqual(metadata.sla.map((sla) => [sla.property, String(sla.value), sla.unit ?? null]));
      // Its raw sources, then the other domains' products it is fed by (its inputs).
      expect(node.inputPorts.map((port: any) => port.name)).toEqual([...metadata.inputPorts.map((port) => port.name), ...(spec.inputs ?? []).map((input) => input.product)]);
      // Its fields are its type's, each column named where one holds it.
      for (const [field, column] of Object.entries(spec.columns)) expect(node.fields.find((f: any) => f.name === field)?.column).toBe(column);
      expect(node.rootFields.length).toBeGreaterThan(0);
      expect(node.exampleOperation).toContain(spec.type);
    }
  });

  it('reports each product\'s data quality: the load\'s checks, key checks first, passing; the metrics agree', async () => {
    for (const node of all.nodes) {
      expect(node.quality.status, node.id).toBe('PASS');
      expect(node.quality.lastRun).toMatchObject({ trigger: 'load', outcome: 'passed' });
      // One load; customers two: the full load, then the merge of its input (finance's orders, read whole).
      const fed = declared.find((product) => product.id === node.id)!.spec.inputs?.length ? 2 : 1;
      expect(node.quality.history.map((run: any) => run.runId), node.id).toHaveLength(fed);
      expect(node.quality.history[0].runId).toBe(node.quality.lastRun.runId);
      expect(node.quality.history.map((run: any) => run.outcome)).toEqual(Array(fed).fill('passed'));
    }
    const customers = all.nodes.find((n: any) => n.id === 'customers.customers');
    expect(customers.quality.lastRun.checks.slice(0, 2).map((c: any) => c.name)).toEqual(['id_not_null', 'id_unique']);
    expect(customers.quality.lastRun.checks.find((c: any) => c.name === 'email_format')).toMatchObject({ dimension: 'conformity', severity: 'error', outcome: 'pass', value: 0, threshold: 'mustBe 0', unit: 'rows', failedRows: 0 });
    const metrics = await (await fetch(new URL('/metrics', mesh.subgraphs.customers!.url))).text();
    expect(metrics).toMatch(/data_quality_check_status\{product="customers\.customers",check="email_format",dimension="conformity",service="customers"\} 0/);
    expect(metrics).toMatch(/data_quality_failed_rows\{product="customers\.customers",check="id_unique",service="customers"\} 0/);
    const bad = await mesh.query<any>('{ dataProduct(id: "customers.customers") { quality { history(first: 21) { runId } } } }');
    expect(bad.body.errors?.[0]?.extensions?.code).toBe('INVALID_ARGUMENT');
  });

  it('says how fresh each product is against its SLA, and the metrics carry what an alert needs', async () => {
    const customers = all.nodes.find((n: any) => n.id === 'customers.customers');
    const loadedAt = Date.parse(customers.freshness.loadedAt);
    expect(Date.now() - loadedAt).toBeLessThan(10 * 60_000);
    expect(customers.freshness).toMatchObject({ slaSeconds: 86_400, status: 'FRESH' });
    expect(customers.freshness.ageSeconds).toBeLessThan(600);
    const [{ newest }] = (await mesh.sql<{ newest: string }>('customers', 'select max(signup_date) as newest from customers')) as [{ newest: string }];
    expect(customers.freshness.newestRecordAt).toBe(newest);
    // Categories promise no latency: their update frequency (1 d) is the threshold.
    expect(all.nodes.find((n: any) => n.id === 'products.categories').freshness).toMatchObject({ slaSeconds: 86_400, newestRecordAt: null });

    // The stale-product alert (time() - last_updated > sla), evaluated at moved clocks: stale after the SLA, not before.
    const metrics = await (await fetch(new URL('/metrics', mesh.subgraphs.customers!.url))).text();
    const gauge = (name: string) => Number(new RegExp(`${name}\\{product="customers\\.customers",service="customers"\\} (\\S+)`).exec(metrics)?.[1]);
    const lastUpdated = gauge('data_product_last_updated_timestamp_seconds');
    const sla = gauge('data_product_freshness_sla_seconds');
    expect(lastUpdated).toBeCloseTo(loadedAt / 1000, 0);
    expect(sla).toBe(86_400);
    const staleAt = (time: number) => time - lastUpdated > sla;
    expect(staleAt(lastUpdated + sla)).toBe(false);
    expect(staleAt(lastUpdated + sla + 1)).toBe(true);
    // The subgraph's own measure agrees at the same moments.
    const facts = { loadedAt: customers.freshness.loadedAt, newest: {} };
    const sla24h = domains.find((d) => d.name === 'customers')!.dataProducts[0]!.spec.metadata.sla;
    expect(freshnessOf(facts, 'customers.customers', sla24h, new Date(loadedAt + 86_400_000)).status).toBe('fresh');
    expect(freshnessOf(facts, 'customers.customers', sla24h, new Date(loadedAt + 86_401_000)).status).toBe('stale');
  });

  it('traces each product\'s lineage: raw sources, the other domains on its type, the products it feeds, each field\'s column and source', async () => {
    const node = (id: string) => all.nodes.find((n: any) => n.id === id).lineage;
    const products = node('products.products');
    // Product.revenue comes from finance's orders (their lines, joined through the product key), as the orders' contract says.
    expect(products.upstream).toEqual([
      { kind: 'SOURCE', name: 'pim.products', fields: [], description: null },
      { kind: 'PRODUCT', name: 'finance.orders', fields: ['Product.unitsSold', 'Product.revenue'], description: expect.stringContaining('order_lines.sku = Product.sku') },
    ]);
    // Finance's orders feed the products' revenue and the customers' orders (finance resolves them on their types), and the
    // customers' lifetime value (the customers domain keeps it from the orders' change feed: an input); its invoices feed nothing.
    expect(node('finance.orders').downstream).toEqual([
      { kind: 'PRODUCT', name: 'customers.customers', fields: ['Customer.lifetimeValue'], description: expect.stringContaining('change feed') },
      { kind: 'PRODUCT', name: 'customers.customers', fields: ['Customer.orders'], description: expect.stringContaining('orders.customer_id = Customer.id') },
      { kind: 'PRODUCT', name: 'products.products', fields: ['Product.unitsSold', 'Product.revenue'], description: expect.stringContaining('order_lines.sku = Product.sku') },
    ]);
    expect(node('customers.customers').upstream).toEqual([
      { kind: 'SOURCE', name: 'crm.customers', fields: [], description: null },
      { kind: 'SOURCE', name: 'crm.addresses', fields: [], description: null },
      { kind: 'PRODUCT', name: 'finance.orders', fields: ['Customer.lifetimeValue'], description: expect.stringContaining('change feed') },
      { kind: 'PRODUCT', name: 'finance.orders', fields: ['Customer.orders'], description: expect.stringContaining('orders.customer_id = Customer.id') },
    ]);
    expect(node('finance.invoices').downstream).toEqual([]);
    const columns = Object.fromEntries(node('customers.customers').columns.map((c: any) => [c.field, c]));
    expect(columns.email).toEqual({ field: 'email', column: 'email', source: 'customers/customers.csv#email', masking: true });
    expect(columns.country).toMatchObject({ source: 'customers/customers.csv#country', masking: false });
    // Kept from an input, computed in the warehouse: a column, no raw source.
    expect(columns.lifetimeValue).toEqual({ field: 'lifetimeValue', column: 'lifetime_value', source: null, masking: false });
    // A column computed at load has no raw source.
    expect(Object.fromEntries(node('finance.orders').columns.map((c: any) => [c.field, c])).total).toMatchObject({ column: 'total_amount', source: null });
  });

  it('says in an answer which data products, of which version and load, it was computed from, when asked', async () => {
    const asked = { 'x-include-data-products': 'true' };
    const { body } = await mesh.query<any>('{ orders(first: 2) { nodes { id customer { name } lines { product { name } } } } }', undefined, asked);
    expect(body.errors).toBeUndefined();
    const loadedAt = (id: string) => all.nodes.find((n: any) => n.id === id).freshness.loadedAt;
    expect(body.extensions!.dataProducts).toEqual(
      ['customers.customers', 'finance.orders', 'products.products'].map((id) => ({ id, version: '1.0.0', loadedAt: loadedAt(id) })),
    );
    // The same data, the same provenance; an answer that read no product says none.
    expect((await mesh.query<any>('{ orders(first: 2) { nodes { id customer { name } lines { product { name } } } } }', undefined, asked)).body.extensions!.dataProducts).toEqual(body.extensions!.dataProducts);
    expect((await mesh.query<any>('{ __typename }', undefined, asked)).body.extensions?.dataProducts).toBeUndefined();
    // Not asked: the answer is as it always was.
    expect((await mesh.query<any>('{ orders(first: 2) { nodes { id } } }')).body.extensions?.dataProducts).toBeUndefined();
    // A domain's own measures read its products too (revenue over the orders' lines).
    const measured = await mesh.query<any>('{ products(first: 1) { nodes { revenue } } }', undefined, asked);
    expect(measured.body.extensions!.dataProducts.map((p: any) => p.id)).toEqual(['finance.orders', 'products.products']);
    // A value kept from an input is the product's own column (its lineage names the input).
    const kept = await mesh.query<any>('{ customers(first: 1) { nodes { lifetimeValue } } }', undefined, asked);
    expect(kept.body.extensions!.dataProducts.map((p: any) => p.id)).toEqual(['customers.customers']);
  });

  it('is what the registry keeps with each published version (publish-running reads each domain\'s /catalog)', async () => {
    const registry = await openRegistry(mesh.registryUrl);
    try {
      const state = (await registry.state())!;
      for (const domain of domains) {
        const served = await fetchDomainDocuments({ name: domain.name, url: mesh.subgraphs[domain.name]!.url }, { signingKey: DEV_SIGNING_KEY, timeoutMs: 2_000 });
        const kept = state.subgraphs.find((s) => s.name === domain.name)!.dataProducts;
        // A domain fed by another's product loaded once more after it was published (its input read whole):
        // its documents are the same, its column profiles those of the version it served then.
        const fed = domain.dataProducts.some(({ spec }) => spec.inputs?.length);
        const withoutProfile = (products: readonly unknown[] | null) => (products ?? []).map((product) => ({ ...(product as object), profile: undefined }));
        if (fed) expect(withoutProfile(kept)).toEqual(withoutProfile(served.products));
        else expect(kept).toEqual(served.products);
      }
    } finally {
      await registry.close();
    }
  });

  it('counts facets over the products that match, and each count is what that filter returns', async () => {
    for (const [name, filterOf] of [
      ['domain', (value: string) => ({ domain: value })],
      ['owner', (value: string) => ({ owner: value })],
      ['tag', (value: string) => ({ tag: value })],
      ['status', (value: string) => ({ status: value })],
      ['classification', (value: string) => ({ classification: value })],
    ] as const) {
      const facet = all.facets[name] as { value: string; count: number }[];
      expect(facet.length, name).toBeGreaterThan(0);
      for (const { value, count } of facet) {
        const { body } = await mesh.query<any>(ALL, { filter: filterOf(value), first: 100 });
        expect(body.errors).toBeUndefined();
        expect(body.data.dataProducts.totalCount, `${name} ${value}`).toBe(count);
        expect(body.data.dataProducts.nodes).toHaveLength(count);
      }
    }
    expect(all.facets.domain.map((f: any) => f.value).sort()).toEqual(domains.map((domain) => domain.name).sort());
    expect(all.facets.domain.reduce((sum: number, f: any) => sum + f.count, 0)).toBe(all.totalCount);
  });

  it('combines filters (every one must hold), and recounts the facets for what matches', async () => {
    const tag = all.facets.tag.find((f: any) => f.count > 1 && f.count < all.totalCount)?.value ?? all.facets.tag[0].value;
    const expected = all.nodes.filter((node: any) => node.domain === 'finance' && node.tags.includes(tag) && node.fields.some((f: any) => f.classification === 'CONFIDENTIAL'));
    const { body } = await mesh.query<any>(ALL, { filter: { domain: 'finance', tag, classification: 'confidential' } });
    expect(body.errors).toBeUndefined();
    expect(body.data.dataProducts.nodes.map((n: any) => n.id)).toEqual(expected.map((n: any) => n.id));
    expect(body.data.dataProducts.facets.domain).toEqual(expected.length > 0 ? [{ value: 'finance', count: expected.length }] : []);

    // Text: every word, anywhere in the id, title, description, tags or field names, in any case.
    const { body: text } = await mesh.query<any>(ALL, { filter: { text: 'LIFETIMEVALUE customers' } });
    expect(text.data.dataProducts.nodes.map((n: any) => n.id)).toEqual(['customers.customers']);
    const { body: none } = await mesh.query<any>(ALL, { filter: { text: 'no-such-word-anywhere' } });
    expect(none.data.dataProducts).toMatchObject({ totalCount: 0, nodes: [], facets: { domain: [] } });
  });

  it('pages exactly: every product once, in id order, and refuses a forged cursor or page size', async () => {
    const seen: string[] = [];
    let after: string | null = null;
    for (let page = 0; page < 20; page++) {
      const answer: any = await mesh.query<any>(ALL, { first: 2, after });
      expect(answer.body.errors).toBeUndefined();
      const { nodes, pageInfo, totalCount } = answer.body.data.dataProducts as { nodes: any[]; pageInfo: any; totalCount: number };
      expect(totalCount).toBe(declared.length);
      expect(pageInfo.hasPreviousPage).toBe(after !== null);
      seen.push(...nodes.map((n: any) => n.id));
      if (!pageInfo.hasNextPage) break;
      after = pageInfo.endCursor;
    }
    expect(seen).toEqual(all.nodes.map((n: any) => n.id));

    const forged = await mesh.query<any>('{ dataProducts(after: "bm90LWEtY3Vyc29y") { totalCount } }');
    expect(forged.body.errors?.[0]?.extensions?.code).toBe('INVALID_CURSOR');
    const tooMany = await mesh.query<any>('{ dataProducts(first: 101) { totalCount } }');
    expect(tooMany.body.errors?.[0]?.extensions?.code).toBe('PAGE_SIZE_OUT_OF_RANGE');
    const negative = await mesh.query<any>('{ dataProducts(first: -1) { totalCount } }');
    expect(negative.body.errors?.[0]?.extensions?.code).toBe('PAGE_SIZE_OUT_OF_RANGE');
    const long = await mesh.query<any>(ALL, { filter: { text: 'x'.repeat(201) } });
    expect(long.body.errors?.[0]?.extensions).toMatchObject({ code: 'INVALID_ARGUMENT', argument: 'filter.text' });
  });

  it('finds one product by id, and null for an id that is none', async () => {
    const { body } = await mesh.query<any>(`query ($a: ID!, $b: ID!) { a: dataProduct(id: $a) { ${ENTRY} } b: dataProduct(id: $b) { id } }`, { a: 'finance.orders', b: 'finance.nothing' });
    expect(body.errors).toBeUndefined();
    // The same entry (the age, measured at each request, aside).
    const withoutAge = (entry: any) => ({ ...entry, freshness: { ...entry.freshness, ageSeconds: undefined } });
    expect(withoutAge(body.data.a)).toEqual(withoutAge(all.nodes.find((n: any) => n.id === 'finance.orders')));
    expect(body.data.b).toBeNull();
  });

  it('refuses an anonymous caller, alone or beside a public field', async () => {
    const alone = await postGraphQL<any>(mesh.gateway.url, '{ dataProducts { totalCount } }');
    expect(alone.body.data ?? null).toBeNull();
    expect(alone.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const beside = await postGraphQL<any>(mesh.gateway.url, '{ products(first: 1) { totalCount } dataProduct(id: "products.products") { id fields { name } } }');
    expect(beside.body.data?.products?.totalCount).toBeGreaterThan(0);
    expect(beside.body.data?.dataProduct ?? null).toBeNull();
    expect(beside.body.errors?.map((e: any) => e.extensions?.code)).toContain('UNAUTHENTICATED');
  });

  it('shows each caller the policy that applies to them', async () => {
    const query = '{ dataProduct(id: "customers.customers") { fields { name classification mask readableBy forYou { access reason } } } }';
    const fieldsAs = async (authorization: string) => {
      const { body } = await mesh.query<any>(query, undefined, { authorization });
      expect(body.errors).toBeUndefined();
      return Object.fromEntries(body.data.dataProduct.fields.map((f: any) => [f.name, f]));
    };
    const asAnalyst = await fieldsAs(analyst());
    expect(asAnalyst.email).toMatchObject({ classification: 'CONFIDENTIAL', mask: 'HASH', forYou: { access: 'MASKED' } });
    expect(asAnalyst.birthDate.forYou.access).toBe('DENIED');
    expect(asAnalyst.birthDate.forYou.reason).toContain('steward');
    expect(asAnalyst.country.forYou.access).toBe('READABLE');
    const asSteward = await fieldsAs(`Bearer ${tokenFor({ subject: 'stu', roles: ['steward'], purpose: 'customer-support' })}`);
    expect(asSteward.email.forYou).toEqual({ access: 'READABLE', reason: null });
    expect(asSteward.birthDate.forYou.access).toBe('READABLE');
    // A role the rules do not name reads the catalog, and is told what it lacks.
    const asGuest = await fieldsAs(`Bearer ${tokenFor({ subject: 'gus', roles: ['viewer'] })}`);
    expect(asGuest.email.forYou).toMatchObject({ access: 'DENIED', reason: expect.stringContaining('analyst') });
    expect(asGuest.email.readableBy).toBe(asAnalyst.email.readableBy);
    expect(asGuest.country.forYou.access).toBe('READABLE');
  });

  it('reveals no value of any product', async () => {
    const { body } = await mesh.query<any>(ALL, { first: 100 }, { authorization: analyst() });
    const text = JSON.stringify(body);
    const [customer] = await mesh.sql<{ id: string; name: string; email: string; phone: string }>('customers', 'select id, name, email, phone from customers order by id limit 1');
    const [order] = await mesh.sql<{ id: string }>('finance', 'select id from orders order by id limit 1');
    for (const value of [customer!.id, customer!.name, customer!.email, customer!.phone, order!.id]) expect(text).not.toContain(value);
  });

  it('names the clients that used a product recently, from the registry\'s usage records', async () => {
    const used = await postGraphQL<any>(mesh.gateway.url, '{ categories { id name } }', undefined, { authorization: analyst(), 'apollographql-client-name': 'catalog-test-dashboard' });
    expect(used.body.errors).toBeUndefined();
    const usageOf = async (id: string) => (await mesh.query<any>(`{ dataProduct(id: "${id}") { usage { client registered reads lastSeen } } }`)).body.data.dataProduct.usage as any[];
    // A name sent in the header alone is the caller's claim, and is listed as such.
    await expect
      .poll(async () => (await usageOf('products.categories')).find((u) => u.client === 'claimed:catalog-test-dashboard'), { timeout: 10_000, interval: 100 })
      .toMatchObject({ reads: expect.any(Number), registered: false });
    const usage = await usageOf('products.categories');
    expect(Date.parse(usage[0].lastSeen)).toBeGreaterThan(Date.now() - 60_000);
    expect((await usageOf('finance.invoices')).map((u) => u.client)).not.toContain('claimed:catalog-test-dashboard');

    // An app that registered its documents, asking with its verified token (azp), is marked registered.
    const body = '{ categories { id } }';
    const registry = await openRegistry(mesh.registryUrl);
    try {
      await registry.registerDocuments([{ client: 'catalog-test-app', name: `sha256:${createHash('sha256').update(body).digest('hex')}`, body, registeredBy: 'test' }]);
    } finally {
      await registry.close();
    }
    const appToken = `Bearer ${tokenFor({ subject: 'catalog-app-service', roles: ['analyst'], regions: ['EMEA'], client: 'catalog-test-app' })}`;
    await expect
      .poll(async () => {
        const response = await fetch(mesh.gateway.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: appToken }, body: JSON.stringify({ documentId: `sha256:${createHash('sha256').update(body).digest('hex')}` }) });
        return response.status;
      }, { timeout: 10_000, interval: 200 })
      .toBe(200);
    // A caller without that token who names the app in its header is not counted as the app.
    await postGraphQL<any>(mesh.gateway.url, body, undefined, { authorization: analyst(), 'apollographql-client-name': 'catalog-test-app' });
    await expect
      .poll(async () => (await usageOf('products.categories')).filter((u) => u.client.endsWith('catalog-test-app')).map((u) => [u.client, u.registered]).sort(), { timeout: 10_000, interval: 100 })
      .toEqual([['catalog-test-app', true], ['claimed:catalog-test-app', false]]);
    const bad = await mesh.query<any>('{ dataProduct(id: "products.categories") { usage(days: 0) { client } } }');
    expect(bad.body.errors?.[0]?.extensions?.code).toBe('INVALID_ARGUMENT');
  });

  it('gives each caller an example operation that runs as it is for them', async () => {
    for (const node of all.nodes) {
      const { body } = await mesh.query<any>(node.exampleOperation);
      expect(body.errors, node.id).toBeUndefined();
    }
    expect(all.nodes.find((n: any) => n.id === 'customers.customers').exampleOperation).toContain('birthDate');
    // An analyst's examples leave out the fields denied to them (and say so).
    const { body } = await mesh.query<any>(ALL, { first: 100 }, { authorization: analyst() });
    for (const node of body.data.dataProducts.nodes) {
      const run = await mesh.query<any>(node.exampleOperation, undefined, { authorization: analyst() });
      expect(run.body.errors, node.id).toBeUndefined();
    }
    const customers = body.data.dataProducts.nodes.find((n: any) => n.id === 'customers.customers').exampleOperation;
    expect(customers).not.toMatch(/^\s+birthDate$/m);
    expect(customers).toContain('# Left out, as you may not read them: birthDate.');
  });

  it('lets only signed platform callers read a domain\'s entries at the subgraph', async () => {
    const url = catalogUrlOf(mesh.subgraphs.customers!.url);
    const unsigned = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(unsigned.status).toBe(401);
    expect(((await unsigned.json()) as any).errors[0].extensions.code).toBe('SIGNATURE_REQUIRED');
    const get = await fetch(url);
    expect(get.status).toBe(405);
    const wrongKey = await fetchDomainDocuments({ name: 'customers', url: mesh.subgraphs.customers!.url }, { signingKey: 'x'.repeat(40), timeoutMs: 2_000 }).catch((error: Error) => error);
    expect(String(wrongKey)).toContain('HTTP 401');
    const signed = await fetchDomainDocuments({ name: 'customers', url: mesh.subgraphs.customers!.url }, { signingKey: DEV_SIGNING_KEY, timeoutMs: 2_000 });
    expect(signed.products.map((product) => product.id)).toEqual(['customers.customers']);
  });

  it('keeps a domain\'s last entries when it stops answering', async () => {
    await mesh.stopSubgraph('finance');
    const { body } = await mesh.query<any>('{ dataProducts(filter: { domain: "finance" }) { totalCount unavailableDomains } }');
    expect(body.errors).toBeUndefined();
    expect(body.data.dataProducts.totalCount).toBe(declared.filter((product) => product.domain === 'finance').length);
  });
});

describe('the catalog at composition and at the domains\' edge', () => {
  const sdls = domains.map((domain) => ({ name: domain.name, url: `http://${domain.name}`, sdl: printDomainSdl(domain) }));

  it('is composed into every supergraph, and no domain may take its name', () => {
    const composed = composeSupergraph(sdls);
    expect(composed.apiSchemaSdl).toContain('dataProducts(filter: DataProductFilter, first: Int, after: String): DataProductConnection!');
    let refused: unknown;
    try {
      composeSupergraph([...sdls, { name: CATALOG_SUBGRAPH_NAME, url: 'http://rogue', sdl: sdls[0]!.sdl }]);
    } catch (error) {
      refused = error;
    }
    expect(refused).toBeInstanceOf(CompositionFailedError);
    expect(String(refused)).toContain('reserved');
  });

  it('defines PageInfo exactly as the domains do (a @shareable type)', () => {
    const pageInfo = (sdl: string) => print(parse(sdl).definitions.find((d) => d.kind === Kind.OBJECT_TYPE_DEFINITION && d.name.value === 'PageInfo')!);
    expect(pageInfo(CATALOG_SUBGRAPH_SDL)).toBe(pageInfo(print(commonTypeDefs)));
  });

  it('takes from a subgraph\'s extensions.dataProducts only its own, well-formed products', () => {
    const forged = {
      dataProducts: [
        { id: 'finance.orders', version: '1.0.0', loadedAt: '2026-01-01T00:00:00.000Z' },
        { id: 'customers.customers', version: '9.9.9', loadedAt: null },
        { id: 'financeX.orders', version: '1.0.0' },
        { id: 42 },
        'finance.invoices',
        { id: 'finance.invoices', version: { $gt: '' }, loadedAt: 7 },
      ],
    };
    expect(productVersionsOf('finance', forged)).toEqual([
      { id: 'finance.orders', version: '1.0.0', loadedAt: '2026-01-01T00:00:00.000Z' },
      { id: 'finance.invoices', version: null, loadedAt: null },
    ]);
    expect(productVersionsOf('finance', { dataProducts: 'all' })).toEqual([]);
    expect(productVersionsOf('finance', undefined)).toEqual([]);
  });

  it('drops entries a domain serves under another domain\'s address, and leaves malformed ones out of the catalog', async () => {
    // A domain answering for someone else's products, and with a broken entry of its own.
    const [good] = JSON.parse(JSON.stringify(domainProductDocuments(domains.find((d) => d.name === 'products')!, { type: 'duckdb', database: 'p.duckdb' })));
    const forged = {
      domain: 'products',
      products: [good, { id: 'customers.customers', odps: { domain: 'customers' } }, { id: 'products.fake', odps: { domain: 'customers' } }, { id: 'products.broken', odps: { id: 'products.broken', domain: 'products' } }],
    };
    const server = createServer((_req, res) => res.setHeader('content-type', 'application/json').end(JSON.stringify(forged))).listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
      const read = await fetchDomainDocuments({ name: 'products', url }, { signingKey: DEV_SIGNING_KEY, timeoutMs: 2_000 });
      expect(read.products.map((product) => product.id)).toEqual(['products.products', 'products.broken']);
      const other = await fetchDomainDocuments({ name: 'finance', url }, { signingKey: DEV_SIGNING_KEY, timeoutMs: 2_000 }).catch((error: Error) => error);
      expect(String(other)).toContain('not a catalog of its own products');
      // The catalog serves the well-formed entry; the broken one is left out, not a failing catalog.
      const entries = createDomainEntries({ signingKey: DEV_SIGNING_KEY, timeoutMs: 2_000, log: testLog });
      const { documents, unavailable } = await entries.read([{ name: 'products', url }], 'v1');
      expect(unavailable).toEqual([]);
      expect(documents[0]!.products.map((product) => product.id)).toEqual(['products.products']);
      // A domain never read (nothing answers there) is listed as unavailable, beside those that answered.
      const down = { name: 'finance', url: `http://127.0.0.1:${await freePort()}/graphql` };
      const partial = await entries.read([{ name: 'products', url }, down], 'v1');
      expect(partial.unavailable).toEqual(['finance']);
      expect(partial.documents.map((d) => d.domain)).toEqual(['products']);
      // The registry refuses to publish it instead.
      const refused = await fetchSubgraphDocuments({ name: 'products', url }, DEV_SIGNING_KEY).catch((error: Error) => error);
      expect(refused).toMatchObject({ code: 'REGISTRY_DOCUMENTS_UNAVAILABLE', message: expect.stringContaining('products.broken') });
    } finally {
      server.close();
    }
  });

});
