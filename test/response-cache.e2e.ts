/**
 * The response cache (issue 15, part 3), on a real mesh: a gateway with `RESPONSE_CACHE=memory`
 * beside the mesh's own gateway (no cache) on the same registry and subgraphs. An answer never
 * crosses policy classes and is byte-identical to the uncached one; principals of one class share
 * entries; a new load of a product invalidates exactly the entries that read it; a publish
 * invalidates; the caller can opt out; hits carry Age and Cache-Control, are audited and counted.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { Redis } from 'ioredis';
import { join } from 'node:path';
import { parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchSubgraphVersions } from '../gateway/catalog/domain-entries.js';
import { openRegistry } from '../gateway/registry/open.js';
import { pollProductVersions, ProductVersions, type ResponseCacheConfig } from '../gateway/cache/response-cache.js';
import { DEV_SIGNING_KEY, SIGNATURE_HEADER } from '../policy/subgraph-signature.js';
import { signChangeEvent } from '../policy/events/change-event.js';
import { openFileFeed } from '../policy/events/file-feed.js';
import { publishSubgraph } from '../gateway/registry/publish.js';
import type { RunningGateway } from '../gateway/server.js';
import { DEV_HASH_KEY } from '../policy/masking.js';
import type { AuditSink } from '../policy/audit.js';
import { customers } from '../subgraphs/customers/index.js';
import { products } from '../subgraphs/products/index.js';
import { printDomainSdl } from '../subgraphs/kit/domain-schema.js';
import { loadFactsAt } from '../subgraphs/kit/freshness.js';
import { startSubgraphServer, type RunningServer } from '../subgraphs/kit/subgraph-server.js';
import { ensureWarehouse } from '../subgraphs/kit/warehouse/build.js';
import { openWarehouse } from '../subgraphs/kit/warehouse/open.js';
import { nextsOf, subscribeSse } from './harness/subscribers.js';
import { cachedGatewayConfig, freePort, readAuditRecords, startTestGateway, startTestMesh, testIdentity, testLog, tokenFor, type TestMesh } from './harness/mesh.js';

let mesh: TestMesh;
let cached: RunningGateway & { audit: AuditSink };
let reloadedProducts: RunningServer | undefined;

const principals = {
  americas: `Bearer ${tokenFor({ subject: 'ana', roles: ['analyst'], regions: ['AMERICAS'] })}`,
  emea: `Bearer ${tokenFor({ subject: 'eve', roles: ['analyst'], regions: ['EMEA'] })}`,
  emeaToo: `Bearer ${tokenFor({ subject: 'bob', roles: ['analyst'], regions: ['EMEA'] })}`,
  steward: `Bearer ${tokenFor({ subject: 'stu', roles: ['steward'], purpose: 'customer-support' })}`,
  anonymous: null,
} as const;

/** POSTs a query and returns the raw answer, as a client receives it. */
async function ask(url: string, query: string, authorization: string | null, headers: Record<string, string> = {}): Promise<{ status: number; text: string; headers: Headers }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}), ...headers },
    body: JSON.stringify({ query }),
  });
  return { status: response.status, text: await response.text(), headers: response.headers };
}

const verdict = async (query: string, authorization: string | null, headers: Record<string, string> = {}) =>
  (JSON.parse((await ask(cached.url, query, authorization, { 'x-include-cache': 'true', ...headers })).text) as { extensions?: { cache?: { outcome: string; age?: number } } }).extensions?.cache;

const CUSTOMERS = '{ customers(first: 5, orderBy: {field: ID}) { nodes { id name email region lifetimeValue } } }';

beforeAll(async () => {
  mesh = await startTestMesh();
  cached = await startTestGateway(cachedGatewayConfig(mesh, { name: 'cached' }));
  await cached.ready;
}, 120_000);

afterAll(async () => {
  await cached?.stop();
  await cached?.audit.close();
  await reloadedProducts?.stop();
  await mesh?.stop();
});

/** A new load of the products domain: the subgraph stops, its warehouse is built again, it serves again on its port. */
async function reloadProducts(): Promise<void> {
  const url = mesh.warehouses.products!.location;
  const port = Number(new URL(mesh.subgraphs.products!.url).port);
  if (reloadedProducts) await reloadedProducts.stop();
  else await mesh.stopSubgraph('products');
  await mesh.warehouses.products!.close();
  const build = await ensureWarehouse({ domain: products, url, rawDir: join(mesh.dataDir, 'raw', 'products'), sourceFingerprint: mesh.manifest.fingerprint, sourceExtractedAt: mesh.manifest.extractedAt, force: true, now: () => new Date(Date.now() + 60_000) });
  expect(build.built).toBe(true);
  mesh.warehouses.products = openWarehouse(url);
  reloadedProducts = await startSubgraphServer({ domain: products, warehouse: mesh.warehouses.products, loadFacts: await loadFactsAt(url, products), log: testLog, identity: testIdentity, hashKey: DEV_HASH_KEY, audit: mesh.audits.products!, port });
}

describe('the response cache', () => {
  it('never serves one policy class\'s answer to another: each answer is byte-identical to the uncached one', async () => {
    // Interleaved, twice: the second round is served from the cache where it may be.
    for (let round = 0; round < 2; round++) {
      for (const [who, authorization] of Object.entries(principals)) {
        const fromCache = await ask(cached.url, CUSTOMERS, authorization);
        const uncached = await ask(mesh.gateway.url, CUSTOMERS, authorization);
        expect(fromCache.status, who).toBe(uncached.status);
        // An error carries its request id; everything else is the same.
        const withoutIds = (text: string) => text.replace(/"requestId":"[^"]+"/g, '"requestId":"…"');
        expect(withoutIds(fromCache.text), `${who}, round ${round + 1}`).toBe(withoutIds(uncached.text));
      }
    }
    // The answers do differ by class: other regions' rows, masked emails.
    const rows = async (authorization: string) => (JSON.parse((await ask(cached.url, CUSTOMERS, authorization)).text) as { data: { customers: { nodes: { region: string; email: string }[] } } }).data.customers.nodes;
    expect((await rows(principals.americas)).every((node) => node.region === 'AMERICAS')).toBe(true);
    expect((await rows(principals.emea)).every((node) => node.region === 'EMEA')).toBe(true);
    expect((await rows(principals.steward)).map((node) => node.email)).not.toEqual((await rows(principals.americas)).map((node) => node.email));
    expect(await verdict(CUSTOMERS, principals.americas)).toMatchObject({ outcome: 'hit' });
    expect(await verdict(CUSTOMERS, principals.steward)).toMatchObject({ outcome: 'hit' });
    // The verdict is told only to a caller who asks for it exactly; a hit's answer is otherwise the same as a computed one.
    for (const asked of ['yes', 'TRUE', '1']) expect(JSON.parse((await ask(cached.url, CUSTOMERS, principals.steward, { 'x-include-cache': asked })).text).extensions?.cache).toBeUndefined();
    // An error is never kept.
    expect(await verdict(CUSTOMERS, principals.anonymous)).toEqual({ outcome: 'bypass' });
  });

  it('shares entries within a policy class, whoever the principal', async () => {
    const query = '{ customers(first: 3) { nodes { id country } } }';
    expect(await verdict(query, principals.emea)).toEqual({ outcome: 'miss' });
    // Another analyst of the same roles and regions: the same answer, from the cache.
    expect(await verdict(query, principals.emeaToo)).toMatchObject({ outcome: 'hit' });
    // Another region: another class.
    expect(await verdict(query, principals.americas)).toEqual({ outcome: 'miss' });
  });

  it('answers a hit with Age and a private Cache-Control, audits it with the same facts, and counts it', async () => {
    const query = 'query CachedOrders { orders(first: 2) { nodes { id total } } }';
    const miss = await ask(cached.url, query, principals.steward);
    expect(miss.headers.get('cache-control')).toBe('private, max-age=300');
    const hit = await ask(cached.url, query, principals.steward);
    expect(hit.text).toBe(miss.text);
    expect(hit.headers.get('age')).toMatch(/^\d+$/);
    expect(hit.headers.get('cache-control')).toMatch(/^private, max-age=\d+$/);
    const records = (await readFile(join(mesh.dataDir, 'audit', 'gateway-cached.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((record) => record.operationName === 'CachedOrders');
    expect(records).toHaveLength(2);
    const facts = ({ requestId: _id, at: _at, durationMs: _d, seq: _s, prev: _p, hash: _h, cache, ...rest }: Record<string, unknown>) => ({ rest, cache });
    expect(facts(records[1]!).rest).toEqual(facts(records[0]!).rest);
    expect([facts(records[0]!).cache, facts(records[1]!).cache]).toEqual([undefined, 'hit']);
    const metrics = await (await fetch(new URL('/metrics', cached.url))).text();
    expect(Number(/^mesh_response_cache_requests_total\{outcome="hit"[^}]*\} (\d+)/m.exec(metrics)?.[1])).toBeGreaterThan(0);
    expect(Number(/^mesh_response_cache_bytes\{[^}]*\} (\d+)/m.exec(metrics)?.[1])).toBeGreaterThan(0);
  });

  it('never keeps an answer that held strictly audited values: each read is recorded by its subgraph, and withheld when it cannot be', async () => {
    const stewardToo = `Bearer ${tokenFor({ subject: 'sue', roles: ['steward'], purpose: 'customer-support' })}`;
    const restricted = 'query Birthdays { customers(first: 2, orderBy: {field: ID}) { nodes { id birthDate } } }';
    const plain = 'query Names { customers(first: 2, orderBy: {field: ID}) { nodes { id name } } }';
    // Positive control: the same class's answer without restricted fields is kept and shared.
    expect(await verdict(plain, principals.steward)).toEqual({ outcome: 'miss' });
    expect(await verdict(plain, stewardToo)).toMatchObject({ outcome: 'hit' });
    // With birthDate (RESTRICTED): computed every time, never kept.
    const first = await ask(cached.url, restricted, principals.steward, { 'x-include-cache': 'true' });
    expect(JSON.parse(first.text)).toEqual({ data: { customers: { nodes: [{ id: expect.any(String), birthDate: expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/) }, { id: expect.any(String), birthDate: expect.any(String) }] } }, extensions: { cache: { outcome: 'bypass' } } });
    expect(await verdict(restricted, stewardToo)).toEqual({ outcome: 'bypass' });

    // The customers subgraph's and the cached gateway's audit files give way: the value is withheld.
    const paths = [mesh.auditPath('customers'), join(mesh.dataDir, 'audit', 'gateway-cached.jsonl')];
    for (const path of paths) {
      await rename(path, `${path}.away`);
      await mkdir(path);
    }
    let failing: { data?: any; errors?: { path?: unknown[]; extensions?: { code?: string } }[] };
    try {
      failing = JSON.parse((await ask(cached.url, restricted, stewardToo, { 'x-request-id': 'cache-strict-0001' })).text);
    } finally {
      for (const path of paths) {
        await rm(path, { recursive: true });
        await rename(`${path}.away`, path);
      }
    }
    expect(failing.data.customers.nodes.map((c: { birthDate: unknown }) => c.birthDate)).toEqual([null, null]);
    expect(failing.errors?.map((e) => [e.extensions?.code, e.path])).toEqual([
      ['AUDIT_UNAVAILABLE', ['customers', 'nodes', 0, 'birthDate']],
      ['AUDIT_UNAVAILABLE', ['customers', 'nodes', 1, 'birthDate']],
    ]);
    // Recovered: every read of birthDate has its strict record in the customers log, the withheld one too.
    expect(await verdict(restricted, stewardToo)).toEqual({ outcome: 'bypass' });
    const strictReads = (await readAuditRecords(mesh.auditPath('customers'))).filter((r) => r.kind === 'subgraph-operation' && r.operationName?.startsWith('Birthdays'));
    expect(strictReads.map((r) => r.kind === 'subgraph-operation' && [r.subject, r.strict])).toEqual([['stu', true], ['sue', true], ['sue', true], ['sue', true]]);
  });

  it('lets a caller opt out, and keeps no answer that read the catalog', async () => {
    const query = '{ products(first: 4) { nodes { sku listPrice } } }';
    expect(await verdict(query, principals.steward, { 'cache-control': 'no-store' })).toEqual({ outcome: 'miss' });
    // Nothing was kept: the next request computes again (and keeps it).
    expect(await verdict(query, principals.steward)).toEqual({ outcome: 'miss' });
    expect(await verdict(query, principals.steward, { 'cache-control': 'no-cache' })).toEqual({ outcome: 'miss' });
    expect(await verdict(query, principals.steward)).toMatchObject({ outcome: 'hit' });
    const catalog = '{ dataProducts(first: 2) { nodes { id freshness { ageSeconds } } } }';
    expect(await verdict(catalog, principals.steward)).toEqual({ outcome: 'bypass' });
    expect(await verdict(catalog, principals.steward)).toEqual({ outcome: 'bypass' });
  });

  it('invalidates exactly the entries that read a product when it gets a new load', async () => {
    const productsOnly = '{ products(first: 3, orderBy: {field: SKU}) { nodes { sku name } } }';
    const customersOnly = '{ customers(first: 2, orderBy: {field: NAME}) { nodes { id name } } }';
    for (const query of [productsOnly, customersOnly]) {
      await verdict(query, principals.steward);
      expect(await verdict(query, principals.steward)).toMatchObject({ outcome: 'hit' });
    }
    await reloadProducts();
    // Within a poll of the versions, the products' entries are stale; the customers' are not.
    await expect.poll(() => verdict(productsOnly, principals.steward), { timeout: 10_000, interval: 100 }).toEqual({ outcome: 'miss' });
    expect(await verdict(customersOnly, principals.steward)).toMatchObject({ outcome: 'hit' });
    expect(await verdict(productsOnly, principals.steward)).toMatchObject({ outcome: 'hit' });
  });

  it('invalidates at a product\'s change event, without waiting for the versions poll', async () => {
    const feedDir = join(mesh.dataDir, `feed-${randomUUID().slice(0, 8)}`);
    await mkdir(feedDir, { recursive: true });
    // The versions poll ten minutes away: only the change event can tell this gateway of the new load.
    const eventful = await startTestGateway({ ...cachedGatewayConfig(mesh, { name: 'eventful', cache: { versionsPollMs: 600_000 } }), changeFeed: { dataDir: feedDir, natsUrl: null } });
    try {
      await eventful.ready;
      const productsOnly = '{ products(first: 2, orderBy: {field: SKU}) { nodes { sku name } } }';
      const verdictOf = async () => (JSON.parse((await ask(eventful.url, productsOnly, principals.steward, { 'x-include-cache': 'true' })).text) as { extensions?: { cache?: { outcome: string } } }).extensions?.cache;
      await verdictOf();
      expect(await verdictOf()).toMatchObject({ outcome: 'hit' });
      await new Promise((resolve) => setTimeout(resolve, 1_500)); // it follows the products it learnt of
      await reloadProducts();
      expect(await verdictOf()).toMatchObject({ outcome: 'hit' }); // stale: nothing told it yet
      // The products' subgraph publishes what the load changed.
      const feed = openFileFeed({ dir: join(feedDir, 'events'), signingKey: DEV_SIGNING_KEY });
      await feed.declare('products.products');
      await feed.publish(signChangeEvent({ id: 'products.products@1', key: DEV_SIGNING_KEY, change: { product: 'products.products', operation: 'upsert', keys: ['SKU-1'], version: new Date().toISOString(), changedFields: ['name'] } }));
      await expect.poll(verdictOf, { timeout: 5_000, interval: 100 }).toEqual({ outcome: 'miss' });
      expect(await verdictOf()).toMatchObject({ outcome: 'hit' });
    } finally {
      await eventful.stop();
      await eventful.audit.close();
    }
  });

  it('serves a subscription\'s event from the cache only once it knows the version the event is about', async () => {
    const feedDir = join(mesh.dataDir, `feed-${randomUUID().slice(0, 8)}`);
    await mkdir(feedDir, { recursive: true });
    // The versions poll ten minutes away: the event alone must make the cache look.
    const config = { ...cachedGatewayConfig(mesh, { name: 'subscribed', cache: { versionsPollMs: 600_000 } }), changeFeed: { dataDir: feedDir, natsUrl: null } };
    const subscribed = await startTestGateway(config);
    const feed = openFileFeed({ dir: join(feedDir, 'events'), signingKey: DEV_SIGNING_KEY });
    try {
      await subscribed.ready;
      await feed.declare('products.products');
      const sku = (JSON.parse((await ask(subscribed.url, '{ productList(limit: 1) { sku } }', principals.steward)).text) as any).data.productList[0].sku as string;
      const subscriber = await subscribeSse(subscribed.url, { query: `subscription Watch { productChanged(sku: "${sku}") { position product { sku name } } }`, authorization: principals.steward });
      const positions = () => nextsOf(subscriber).map((r) => r.data.productChanged.position as string);
      const lookups = async (position: string) => (await readAuditRecords(config.auditPath)).filter((r) => r.kind === 'gateway-operation' && r.subscriptionEvent?.position === position);
      const publish = async (n: number) => feed.publish(signChangeEvent({ id: `products.products@watch-${n}`, key: DEV_SIGNING_KEY, change: { product: 'products.products', operation: 'upsert', keys: [sku], version: new Date().toISOString(), changedFields: ['name'] } }));
      const first = await publish(1);
      await expect.poll(positions, { timeout: 10_000 }).toEqual([`${first.position}:0`]);
      // The same event's lookup again would be the cache's (same operation, class and versions) …
      const second = await publish(2);
      await expect.poll(positions, { timeout: 10_000 }).toHaveLength(2);
      expect((await lookups(`${second.position}:0`)).map((r) => r.kind === 'gateway-operation' && r.cache)).toEqual(['hit']);
      // … but not after a new load: the event makes the gateway poll the versions before it looks.
      await reloadProducts();
      const third = await publish(3);
      await expect.poll(positions, { timeout: 10_000 }).toHaveLength(3);
      expect((await lookups(`${third.position}:0`)).map((r) => r.kind === 'gateway-operation' && r.cache)).toEqual([undefined]);
      subscriber.close();
    } finally {
      await feed.close();
      await subscribed.stop();
    }
  });

  it('learns versions only from signed reads of a subgraph\'s /versions, which names no value', async () => {
    const url = new URL('versions', mesh.subgraphs.customers!.url);
    const unsigned = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(unsigned.status).toBe(401);
    expect(((await unsigned.json()) as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code).toBe('SIGNATURE_REQUIRED');
    expect((await fetch(url)).status).toBe(405);
    // A forged signature, and one by another key, are refused as well.
    const forged = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: `t=${Date.now()},v1=${'0'.repeat(64)}` }, body: '{}' });
    expect(forged.status).toBe(401);
    await expect(fetchSubgraphVersions({ name: 'customers', url: mesh.subgraphs.customers!.url }, { signingKey: 'x'.repeat(40), timeoutMs: 2_000 })).rejects.toThrow(/HTTP 401/);
    const signed = await fetchSubgraphVersions({ name: 'customers', url: mesh.subgraphs.customers!.url }, { signingKey: DEV_SIGNING_KEY, timeoutMs: 2_000 });
    expect(signed).toEqual({ domain: 'customers', products: [{ id: 'customers.customers', version: '1.0.0', loadedAt: expect.stringMatching(/^\d{4}-\d{2}-\d{2}/) }] });
    // A subgraph answering for another's products is not believed: the poll keeps each subgraph to its own.
    const versions = new ProductVersions();
    const poll = pollProductVersions({ versions, subgraphs: () => [{ name: 'products', url: 'http://unused' }], fetchVersions: async () => ({ domain: 'products', products: [{ id: 'customers.customers', version: 'x', loadedAt: 'y' }, { id: 'products.products', version: '1', loadedAt: 'z' }] }), intervalMs: 60_000 });
    await poll.poll();
    poll.stop();
    expect(versions.current([['customers.customers', 'x@y']])).toBe(false);
    expect(versions.current([['products.products', '1@z']])).toBe(true);
  });

  it('invalidates every entry when a publish changes the supergraph', async () => {
    const query = '{ customers(first: 2) { nodes { id segment } } }';
    await verdict(query, principals.emea);
    expect(await verdict(query, principals.emea)).toMatchObject({ outcome: 'hit' });
    // A policy change only: Customer.segment becomes CONFIDENTIAL (an analyst still reads it).
    const sdl = printDomainSdl(customers).replace('  segment: CustomerSegment!', '  segment: CustomerSegment! @classify(level: "CONFIDENTIAL")');
    expect(parse(sdl)).toBeTruthy();
    const registry = await openRegistry(mesh.registryUrl);
    try {
      const outcome = await publishSubgraph(registry, { name: 'customers', url: mesh.subgraphs.customers!.url, sdl, publishedBy: 'test' });
      expect(outcome.published).not.toBeNull();
    } finally {
      await registry.close();
    }
    await expect.poll(() => verdict(query, principals.emea), { timeout: 10_000, interval: 100 }).toEqual({ outcome: 'miss' });
  });
});

describe('the response cache in Redis, and its bounds', () => {
  const prefix = `test-cache-${randomUUID().slice(0, 8)}`;
  const gateways: (RunningGateway & { audit: AuditSink })[] = [];
  const start = async (name: string, cache: Partial<ResponseCacheConfig>) => {
    const gateway = await startTestGateway(cachedGatewayConfig(mesh, { name, cache }));
    gateways.push(gateway);
    await gateway.ready;
    return gateway;
  };
  const outcomeAt = async (gateway: RunningGateway, query: string, authorization: string) =>
    (JSON.parse((await ask(gateway.url, query, authorization, { 'x-include-cache': 'true' })).text) as { extensions?: { cache?: { outcome: string } } }).extensions?.cache?.outcome;

  afterAll(async () => {
    for (const gateway of gateways) {
      await gateway.stop();
      await gateway.audit.close();
    }
    // The test's own keys, and nothing else.
    const redis = new Redis('redis://127.0.0.1:6379');
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it('shares entries between replicas through Redis, still per policy class', async () => {
    const one = await start('redis-one', { store: 'redis', redisUrl: 'redis://127.0.0.1:6379', redisPrefix: prefix });
    const two = await start('redis-two', { store: 'redis', redisUrl: 'redis://127.0.0.1:6379', redisPrefix: prefix });
    const query = '{ customers(first: 4, orderBy: {field: ID}) { nodes { id email region } } }';
    expect(await outcomeAt(one, query, principals.emea)).toBe('miss');
    // Kept by one replica, served by the other, to the same class only.
    await expect.poll(() => outcomeAt(two, query, principals.emeaToo), { timeout: 5_000, interval: 100 }).toBe('hit');
    expect(await outcomeAt(two, query, principals.americas)).toBe('miss');
    const fromTwo = await ask(two.url, query, principals.emea);
    expect(fromTwo.text).toBe((await ask(mesh.gateway.url, query, principals.emea)).text);
    const redis = new Redis('redis://127.0.0.1:6379');
    try {
      const keys = await redis.keys(`${prefix}:*`);
      expect(keys.length).toBeGreaterThanOrEqual(2);
      // The entry holds the answer's data and versions, never the caller's token.
      for (const key of keys) expect(await redis.get(key)).not.toContain('Bearer');
    } finally {
      await redis.quit();
    }
  });

  it('keeps answering when its Redis stops, computing every answer', async () => {
    const port = await freePort();
    const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    try {
      await expect.poll(async () => {
        const probe = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
        probe.on('error', () => undefined);
        const up = await probe.connect().then(() => true, () => false);
        probe.disconnect();
        return up;
      }, { timeout: 5_000, interval: 100 }).toBe(true);
      const gateway = await start('redis-outage', { store: 'redis', redisUrl: `redis://127.0.0.1:${port}`, redisPrefix: prefix });
      const query = '{ products(first: 2, orderBy: {field: SKU}) { nodes { sku } } }';
      await expect.poll(() => outcomeAt(gateway, query, principals.steward), { timeout: 5_000, interval: 100 }).toBe('hit');
      server.kill('SIGKILL');
      await once(server, 'exit');
      for (let i = 0; i < 3; i++) {
        const answer = await ask(gateway.url, query, principals.steward, { 'x-include-cache': 'true' });
        expect(answer.status).toBe(200);
        const body = JSON.parse(answer.text) as { data: unknown; errors?: unknown; extensions: { cache: { outcome: string } } };
        expect(body.errors).toBeUndefined();
        expect(body.extensions.cache.outcome).toBe('miss');
      }
    } finally {
      if (server.exitCode === null) server.kill('SIGKILL');
    }
  });

  it('bounds an entry by its TTL as well', async () => {
    const gateway = await start('short-ttl', { ttlSeconds: 1 });
    const query = '{ customers(first: 1, orderBy: {field: ID}) { nodes { id } } }';
    expect(await outcomeAt(gateway, query, principals.steward)).toBe('miss');
    expect(await outcomeAt(gateway, query, principals.steward)).toBe('hit');
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    expect(await outcomeAt(gateway, query, principals.steward)).toBe('miss');
  });
});
