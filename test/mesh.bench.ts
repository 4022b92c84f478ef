/**
 * `npm run bench`: the mesh on the default data set (scale 1: 10k customers, 100k orders), each
 * figure a ratio against a baseline measured in the same run (Vitest prints "N times faster than").
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, bench, describe } from 'vitest';
import { parseLimitsConfig } from '../gateway/request-stages/allowances.js';
import { checkSubgraphSignature, DEV_SIGNING_KEY, signSubgraphRequest } from '../policy/subgraph-signature.js';
import { ANALYST, answered, runAnalystMix, subgraphSet, subgraphsAt } from './harness/analyst-mix.js';
import { cachedGatewayConfig, postGraphQL, startTestGateway, startTestMesh, testGatewayConfig, tokenFor, postSubgraph } from './harness/mesh.js';

const mesh = await startTestMesh({ scale: 1 });
afterAll(() => mesh.stop());

/** Long enough for a few hundred samples per case on a shared 2-core machine. */
const options = { time: 3_000, warmupTime: 500 };

// The subgraph verifies the same token the gateway forwards: both paths do the same policy work.
const authorization = `Bearer ${tokenFor()}`;

const CUSTOMERS_PAGE = '{ customers(first: 50, orderBy: {field: NAME}) { nodes { id name email country } } }';

describe('gateway overhead: a page of 50 customers', () => {
  bench('customers subgraph, called directly (baseline)', async () => {
    await answered(postSubgraph(mesh.subgraphs.customers!.url, CUSTOMERS_PAGE, undefined, { authorization }));
  }, options);
  bench('through the gateway', async () => {
    await answered(mesh.query(CUSTOMERS_PAGE));
  }, options);
});

describe('cross-domain joins: 100 orders', () => {
  bench('orders only, one domain (baseline)', async () => {
    await answered(mesh.query('{ orders(first: 100) { nodes { id total status } } }'));
  }, options);
  bench('with their customers, lines and products, three domains', async () => {
    await answered(mesh.query('{ orders(first: 100) { nodes { id total customer { name } lines { quantity product { name } } } } }'));
  }, options);
});

// A cursor 90,000 orders into the list, taken once: keyset paging costs the same at any depth.
const deep = await mesh.sql<{ id: string }>('finance', 'select id from orders order by id limit 1 offset 90000');
const deepCursor = Buffer.from(JSON.stringify(['orders.ID.ASC', deep[0]!.id])).toString('base64url');

describe('keyset paging: 100 orders by id', () => {
  bench('first page (baseline)', async () => {
    await answered(mesh.query('{ orders(first: 100) { nodes { id } } }'));
  }, options);
  bench('a page 90,000 rows in', async () => {
    await answered(mesh.query('query ($after: String) { orders(first: 100, after: $after) { nodes { id } } }', { after: deepCursor }));
  }, options);
});

// The same mesh without the policy layer: the same warehouses served again by subgraphs and a
// gateway with it off (no decisions, masks, row policies, pre-plan filter or audit).
const offSubgraphs = await subgraphSet(mesh, { enforcePolicy: false });
const offGateway = await startTestGateway(testGatewayConfig({ dataDir: mesh.dataDir, name: 'off', supergraph: subgraphsAt(offSubgraphs) }), { enforcePolicy: false });
await offGateway.ready;
afterAll(async () => {
  await offGateway.stop();
  for (const server of offSubgraphs) await server.stop();
});

describe('policy layer: an analyst query mix (customers, a cross-domain join, aggregates)', () => {
  bench('policy layer off (baseline)', () => runAnalystMix(offGateway.url), options);
  bench('policy layer on: decisions, masks, row policies, pre-plan filter, audit', () => runAnalystMix(mesh.gateway.url), options);
});

// Operation safety: two more gateways on the same registry and subgraphs, one with the operation
// limits, the cost analysis and the rate limiter, one without; a rate budget no run of this bench
// spends, so that the limiter counts but never refuses.
const limitsOn = await startTestGateway(
  testGatewayConfig({
    dataDir: mesh.dataDir,
    name: 'limits-on',
    supergraph: { kind: 'registry', registryUrl: mesh.registryUrl, pollMs: 1_000 },
    overrides: { limits: parseLimitsConfig(JSON.stringify({ authenticated: { ratePerWindow: 1_000_000_000 } })) },
  }),
);
const limitsOff = await startTestGateway(
  testGatewayConfig({ dataDir: mesh.dataDir, name: 'limits-off', supergraph: { kind: 'registry', registryUrl: mesh.registryUrl, pollMs: 1_000 } }),
  { enforceLimits: false },
);
await Promise.all([limitsOn.ready, limitsOff.ready]);
afterAll(async () => {
  await limitsOn.stop();
  await limitsOff.stop();
});

describe('operation safety: the analyst query mix', () => {
  bench('no limits, cost analysis or rate limiter (baseline)', () => runAnalystMix(limitsOff.url), options);
  bench('operation limits, cost analysis and rate limiter', () => runAnalystMix(limitsOn.url), options);
});

const CATALOG_SEARCH = `{ dataProducts(filter: { text: "customer" }, first: 100) {
  totalCount
  facets { domain { value count } owner { value count } tag { value count } status { value count } classification { value count } }
  nodes { id title owners { username } sla { property value unit } fields { name classification mask readableBy forYou { access reason } } }
} }`;

// On the gateway with limits and a rate budget no run spends: the catalog is costed as any query.
describe('the data product catalog: a search with facets, and every field with its policy for the caller', () => {
  bench('a page of 20 products (baseline)', async () => {
    await answered(postGraphQL(limitsOn.url, '{ products(first: 20) { nodes { sku name listPrice } } }', undefined, { authorization }));
  }, options);
  bench('dataProducts: text search, five facets, fields with their policy', async () => {
    await answered(postGraphQL(limitsOn.url, CATALOG_SEARCH, undefined, { authorization }));
  }, options);
});

// Signed gateway-to-subgraph calls: two sets of subgraphs over the same warehouses, started alike
// but for the signature check, each behind a gateway of the same configuration, one that signs
// every call and one that does not.
const [unsignedSubgraphs, signedSubgraphs] = [await subgraphSet(mesh, { verifySignatures: false }), await subgraphSet(mesh, { verifySignatures: true })];
const unsignedGateway = await startTestGateway(testGatewayConfig({ dataDir: mesh.dataDir, name: 'unsigned', supergraph: subgraphsAt(unsignedSubgraphs) }), { signSubgraphCalls: false });
const signedGateway = await startTestGateway(testGatewayConfig({ dataDir: mesh.dataDir, name: 'signed', supergraph: subgraphsAt(signedSubgraphs) }));
await Promise.all([unsignedGateway.ready, signedGateway.ready]);
afterAll(async () => {
  await unsignedGateway.stop();
  await signedGateway.stop();
  for (const server of [...unsignedSubgraphs, ...signedSubgraphs]) await server.stop();
});

describe('signed subgraph calls: the analyst query mix', () => {
  bench('unsigned, unchecked (baseline)', () => runAnalystMix(unsignedGateway.url), options);
  bench('every subgraph call signed by the gateway and checked by the subgraph', () => runAnalystMix(signedGateway.url), options);
});

// The two figures above differ by less than this machine's noise, so the signature's own work is
// also measured alone: the subgraph requests of one mix, recorded on their way (a proxy in front
// of the signed subgraphs), signed and checked again, against the whole mix.
const recorded: { body: string; authorization: string | undefined }[] = [];
const proxies = await Promise.all(
  signedSubgraphs.map(async (target) => {
    const proxy = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        recorded.push({ body, authorization: req.headers.authorization });
        const headers = Object.fromEntries(Object.entries(req.headers).filter(([name]) => !['host', 'content-length', 'connection'].includes(name))) as Record<string, string>;
        void fetch(target.url, { method: 'POST', headers, body }).then(async (answer) => {
          res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' });
          res.end(Buffer.from(await answer.arrayBuffer()));
        });
      });
    });
    proxy.listen(0, '127.0.0.1');
    await once(proxy, 'listening');
    return { proxy, url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/graphql` };
  }),
);
const recordingGateway = await startTestGateway(testGatewayConfig({ dataDir: mesh.dataDir, name: 'recording', supergraph: subgraphsAt(proxies) }));
await recordingGateway.ready;
await runAnalystMix(recordingGateway.url);
const mixRequests = recorded.splice(0);
if (mixRequests.length === 0) throw new Error('no subgraph request was recorded');
afterAll(async () => {
  await recordingGateway.stop();
  for (const { proxy } of proxies) proxy.close();
});

describe(`the signature's own work: the ${mixRequests.length} subgraph requests of one analyst mix`, () => {
  bench('the analyst query mix, signed, through the gateway (baseline)', () => runAnalystMix(signedGateway.url), options);
  bench("signing and checking the mix's subgraph requests", () => {
    for (const { body, authorization } of mixRequests) {
      const header = signSubgraphRequest({ key: DEV_SIGNING_KEY, body, authorization });
      if (checkSubgraphSignature({ key: DEV_SIGNING_KEY, header, body, authorization }) !== 'valid') throw new Error('the signature does not check');
    }
  }, options);
});

/** `orders { nodes { customer { orders { … } } } }` 600 levels deep (9 KB): the shape that took the mesh down. */
let nested = 'id';
for (let i = 0; i < 200; i++) nested = `orders(first: 2) { nodes { id customer { id ${nested} } } }`;
const HOSTILE = JSON.stringify({ query: `{ customer(id: "C-000001") { ${nested} } }` });

async function refused(body: string): Promise<void> {
  const response = await fetch(limitsOn.url, { method: 'POST', headers: { 'content-type': 'application/json', ...ANALYST }, body });
  await response.arrayBuffer();
  if (response.status !== 400) throw new Error(`expected a refusal, got ${response.status}`);
}

describe('a refused hostile operation', () => {
  bench('one product by SKU, answered (baseline)', async () => {
    await answered(postGraphQL(limitsOn.url, '{ product(sku: "SKU-000001") { sku name } }', undefined, ANALYST));
  }, options);
  bench('orders and customers nested 600 deep, refused', () => refused(HOSTILE), options);
});

// What the hostile corpus's callers cost a well-behaved one (test/hostile-operations.e2e.ts asserts
// the refusals and their codes; the time they take is measured here, never asserted in a test).
const WELL_BEHAVED = '{ customers(first: 5) { nodes { id name } } products(first: 5) { nodes { sku name } } }';
describe('a well-behaved query while hostile operations arrive', () => {
  bench('alone (baseline)', async () => {
    await answered(postGraphQL(limitsOn.url, WELL_BEHAVED, undefined, ANALYST));
  }, options);
  bench('beside four hostile operations refused at once', async () => {
    await Promise.all([answered(postGraphQL(limitsOn.url, WELL_BEHAVED, undefined, ANALYST)), refused(HOSTILE), refused(HOSTILE), refused(HOSTILE), refused(HOSTILE)]);
  }, options);
});

// The response cache: a dashboard replayed by ten principals of three policy classes (four EMEA
// analysts, three AMERICAS analysts, three stewards), twenty distinct operations each, through a
// gateway with the cache and through the mesh's own (no cache), on the same registry and subgraphs.
const cachedGateway = await startTestGateway(cachedGatewayConfig(mesh, { name: 'cached', pollMs: 1_000, cache: { maxBytes: 64 * 1024 * 1024 } }));
await cachedGateway.ready;
afterAll(async () => {
  await cachedGateway.stop();
  await cachedGateway.audit.close();
});
const dashboardPrincipals = [
  ...['a1', 'a2', 'a3', 'a4'].map((subject) => ({ subject, roles: ['analyst'], regions: ['EMEA'] })),
  ...['b1', 'b2', 'b3'].map((subject) => ({ subject, roles: ['analyst'], regions: ['AMERICAS'] })),
  ...['s1', 's2', 's3'].map((subject) => ({ subject, roles: ['steward'], purpose: 'customer-support' })),
].map((claims) => ({ authorization: `Bearer ${tokenFor(claims)}` }));
const DASHBOARD = [
  ...[5, 10, 20, 50].map((first) => `{ customers(first: ${first}, orderBy: {field: ID}) { nodes { id country segment region lifetimeValue } } }`),
  ...[10, 25, 50, 100].map((first) => `{ orders(first: ${first}) { nodes { id total status channel customer { country } } } }`),
  ...['DAY', 'WEEK', 'MONTH'].map((bucket) => `{ salesAggregate(bucket: ${bucket}, groupBy: [REGION], limit: 200) { period region revenue orders } }`),
  ...['CATEGORY', 'CHANNEL', 'STATUS'].map((dimension) => `{ salesAggregate(bucket: MONTH, groupBy: [${dimension}], limit: 200) { period revenue orders } }`),
  ...[5, 10, 20].map((first) => `{ products(first: ${first}, orderBy: {field: SKU}) { nodes { sku name listPrice unitsSold revenue } } }`),
  ...[10, 20, 40].map((first) => `{ invoices(first: ${first}) { nodes { id amount status } } }`),
];
const replay = async (url: string) => {
  for (const principal of dashboardPrincipals) for (const query of DASHBOARD) await answered(postGraphQL(url, query, undefined, principal));
};
// Filled once: the bench measures a dashboard that was opened before.
await replay(cachedGateway.url);

describe(`response cache: a dashboard of ${DASHBOARD.length} operations replayed by ${dashboardPrincipals.length} principals of 3 policy classes`, () => {
  const few = { iterations: 3, warmupIterations: 1, time: 0, warmupTime: 0 };
  bench('without the cache (baseline)', () => replay(mesh.gateway.url), few);
  bench('with the cache', () => replay(cachedGateway.url), few);
});
