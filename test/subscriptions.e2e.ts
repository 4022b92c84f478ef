/**
 * GraphQL subscriptions through the gateway (issue 27, part 2), on a real mesh: three subgraphs on
 * DuckDB files, a gateway on the mesh's registry following the embedded change feed, real signed
 * tokens, real HTTP (SSE) and WebSocket subscribers. Events are published to the feed as a
 * subgraph's publisher does (signed, keys only).
 *
 * Three principals (two regions, one steward) subscribed to the same changes over both transports
 * receive exactly what the same query, run by each of them, returns: masked fields masked, rows of
 * another region never delivered, each delivered event audited. Then resuming (Last-Event-ID, `after`)
 * and the misuses the issue lists.
 */
import { appendFile, mkdir } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { connect as connectTcp } from 'node:net';
import { connect } from '@nats-io/transport-node';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from 'graphql-ws';
import { signChangeEvent, type ProductChange } from '../policy/events/change-event.js';
import { openFileFeed } from '../policy/events/file-feed.js';
import type { ChangeFeed } from '../policy/events/change-feed.js';
import type { ChangeFeedSettings } from '../policy/events/feed-from-env.js';
import { openJetStreamFeed } from '../policy/events/jetstream-feed.js';
import { DEV_SIGNING_KEY } from '../policy/subgraph-signature.js';
import { DEFAULT_LIMITS } from '../gateway/request-stages/allowances.js';
import { DEFAULT_LOAD_SHEDDING } from '../gateway/request-stages/load-shedding.js';
import type { RunningGateway } from '../gateway/server.js';
import { openRegistry } from '../gateway/registry/open.js';
import type { AuditSink } from '../policy/audit.js';
import { readAuditRecords, startTestGateway, startTestMesh, testGatewayConfig, testIdentity, tokenFor, type TestMesh } from './harness/mesh.js';
import WebSocket from 'ws';
import { deleteStreams, SHARED_NATS, testSubjectPrefix } from './harness/nats.js';
import { nextsOf, subscribeSse, subscribeWs, wsClient, type SseSubscriber } from './harness/subscribers.js';

let mesh: TestMesh;
let gateway: RunningGateway & { audit: AuditSink };
let feed: ChangeFeed;
let feedDir: string;
let gatewayName = 'subscriptions';
const clients: Client[] = [];
const streams: SseSubscriber[] = [];

const bearer = (claims: Parameters<typeof tokenFor>[0]) => `Bearer ${tokenFor(claims)}`;
const principals = {
  americas: bearer({ subject: 'ana', roles: ['analyst'], regions: ['AMERICAS'] }),
  emea: bearer({ subject: 'eve', roles: ['analyst'], regions: ['EMEA'] }),
  steward: bearer({ subject: 'stu', roles: ['steward'], purpose: 'customer-support' }),
} as const;
type Who = keyof typeof principals;

let published = 0;
async function publish(change: Omit<ProductChange, 'version'> & { version?: string }): Promise<number> {
  published += 1;
  const event = signChangeEvent({ id: `${change.product}@test-${published}`, key: DEV_SIGNING_KEY, change: { version: new Date().toISOString(), ...change } });
  return (await feed.publish(event)).position;
}

async function queryAs(who: Who | string, query: string, variables: Record<string, unknown> = {}) {
  const answer = await mesh.query(query, variables, { authorization: who in principals ? principals[who as Who] : who });
  return answer.body;
}

// Invoice.payments needs the finance, steward or admin role: refused to the analysts, as in their queries.
const ORDER_FIELDS = '{ id status total channel customer { id name email } invoice { id amount payments { method } } }';
const ORDERS = `subscription Orders { orderChanged { operation key position changedFields order ${ORDER_FIELDS} } }`;
const CUSTOMER_FIELDS = '{ id name email region segment }';
const CUSTOMERS = `subscription Customers($id: ID) { customerChanged(id: $id) { __typename operation key customer ${CUSTOMER_FIELDS} } }`;

beforeAll(async () => {
  mesh = await startTestMesh();
  feedDir = join(mesh.dataDir, 'feed');
  await mkdir(feedDir, { recursive: true });
  feed = openFileFeed({ dir: join(feedDir, 'events'), signingKey: DEV_SIGNING_KEY });
  for (const product of ['finance.orders', 'customers.customers', 'products.products']) await feed.declare(product);
  gateway = await startTestGateway(subscriptionGatewayConfig(gatewayName, { dataDir: feedDir, natsUrl: null }));
  await gateway.ready;
}, 120_000);

function subscriptionGatewayConfig(name: string, changeFeed: ChangeFeedSettings) {
  return testGatewayConfig({
      dataDir: mesh.dataDir,
      name,
      supergraph: { kind: 'registry', registryUrl: mesh.registryUrl, pollMs: 100 },
      overrides: {
        changeFeed,
        // No clock tolerance: a token that expires mid-stream does so when the test says.
        identity: { ...testIdentity, clockToleranceSeconds: 0 },
        limits: {
          ...DEFAULT_LIMITS,
          roles: {
            limited: { maxCost: 50 },
            firehose: { subscriptionEventsPerSecond: 100_000, ratePerWindow: 100_000_000 },
            trickle: { subscriptionEventsPerSecond: 2 },
            frugal: { ratePerWindow: 40 },
          },
          clients: { 'flood-app': { maxClientSubscriptions: 4 } },
        },
        subscriptions: { maxQueuedEvents: 20, maxBufferedBytes: 1 << 20 },
        // A small bound on operations in flight: open streams must not count against it.
        loadShedding: { ...DEFAULT_LOAD_SHEDDING, maxInFlight: 4 },
      },
    });
}

const NATS = SHARED_NATS;
const NATS_PREFIX = testSubjectPrefix();
const clearStreams = () => deleteStreams(NATS_PREFIX);

afterAll(async () => {
  for (const stream of streams) stream.close();
  await Promise.all(clients.map((client) => client.dispose()));
  await gateway?.stop();
  await feed?.close();
  await mesh?.stop();
});

const track = <T extends SseSubscriber>(stream: T) => {
  streams.push(stream);
  return stream;
};
const client = (authorization: string | null, onClosed?: (event: { code: number; reason: string }) => void) => {
  const created = wsClient(gateway.url, authorization, onClosed ? { onClosed } : {});
  clients.push(created);
  return created;
};

/** Keys of rows one analyst sees and the other does not, from the queries themselves. */
async function keysByRegion(list: string): Promise<Record<'americas' | 'emea', string[]>> {
  const ids = async (who: Who) => ((await queryAs(who, `{ ${list} }`)).data as Record<string, { id: string }[]>)[list.split('(')[0]!]!.map((row) => row.id);
  return { americas: (await ids('americas')).slice(0, 2), emea: (await ids('emea')).slice(0, 2) };
}

/** Waits for a stream to hold `count` next results. */
const nexts = async (stream: SseSubscriber, count: number) => {
  await expect.poll(() => nextsOf(stream).length, { timeout: 15_000 }).toBeGreaterThanOrEqual(count);
  return nextsOf(stream);
};

describe.each([
  ['the embedded log', 'file'],
  ['NATS JetStream (streams of the test\'s own)', 'jetstream'],
] as const)('on %s', (_name, kind) => {
  // The misuse tests below run on the embedded log; these run on both feeds.
  let saved: { gateway: typeof gateway; feed: ChangeFeed } | undefined;
  beforeAll(async () => {
    if (kind === 'file') return;
    saved = { gateway, feed };
    await clearStreams();
    feed = await openJetStreamFeed({ servers: NATS, prefix: NATS_PREFIX, signingKey: DEV_SIGNING_KEY });
    for (const product of ['finance.orders', 'customers.customers', 'products.products']) await feed.declare(product);
    gatewayName = 'subscriptions-nats';
    gateway = await startTestGateway(subscriptionGatewayConfig(gatewayName, { dataDir: feedDir, natsUrl: NATS, subjectPrefix: NATS_PREFIX }));
    await gateway.ready;
  }, 120_000);
  afterAll(async () => {
    if (!saved) return;
    await gateway.stop();
    await feed.close();
    await clearStreams();
    ({ gateway, feed } = saved);
    gatewayName = 'subscriptions';
  });

  describe('three principals subscribed to the same changes', () => {
    it('receive, over SSE and WebSocket, exactly what the same query returns to each of them; each delivered event is audited', async () => {
      const orders = await keysByRegion('orderList(limit: 10) { id }');
      const customers = await keysByRegion('customerList(limit: 10) { id }');
      expect(orders.americas).toHaveLength(2);
      expect(orders.emea).toHaveLength(2);
      const who: Who[] = ['americas', 'emea', 'steward'];
      const sse = Object.fromEntries(await Promise.all(who.map(async (w) => [w, { orders: track(await subscribeSse(gateway.url, { query: ORDERS, authorization: principals[w] })), customers: track(await subscribeSse(gateway.url, { query: CUSTOMERS, authorization: principals[w] })) }] as const)));
      const ws = Object.fromEntries(who.map((w) => {
        const c = client(principals[w]);
        return [w, { orders: subscribeWs(c, ORDERS), customers: subscribeWs(c, CUSTOMERS) }] as const;
      }));
      for (const w of who) expect(sse[w]!.orders.status).toBe(200);
      // The WebSocket subscriptions are open once the gateway counts them.
      await expect.poll(async () => (await (await fetch(gateway.url.replace('/graphql', '/metrics'))).text()).match(/mesh_subscriptions\{transport="ws"[^}]*\} (\d+)/)?.[1], { timeout: 10_000 }).toBe('6');

      const orderKeys = [orders.americas[0]!, orders.emea[0]!, orders.americas[1]!, orders.emea[1]!];
      const orderPosition = await publish({ product: 'finance.orders', operation: 'upsert', keys: orderKeys, changedFields: ['status'] });
      const customerKeys = [customers.emea[0]!, customers.americas[0]!];
      await publish({ product: 'customers.customers', operation: 'upsert', keys: customerKeys, changedFields: ['email', 'segment'] });

      for (const w of who) {
        // What each one's query returns now, key by key: the events they must receive, in order.
        const expectedOrders: { key: string; order: unknown; errors: unknown; masked: unknown }[] = [];
        for (const key of orderKeys) {
          const answer = await queryAs(w, `query($id: ID!) { order(id: $id) ${ORDER_FIELDS} }`, { id: key });
          if (answer.data?.order) expectedOrders.push({ key, order: answer.data.order, errors: answer.errors?.map((e: any) => ({ message: e.message, path: ['orderChanged', ...e.path], code: e.extensions.code })), masked: answer.extensions?.policy?.masked?.map((m: any) => ({ ...m, path: ['orderChanged', ...m.path] })) });
        }
        const expectedCustomers: { key: string; customer: unknown }[] = [];
        for (const key of customerKeys) {
          const answer = await queryAs(w, `query($id: ID!) { customer(id: $id) ${CUSTOMER_FIELDS} }`, { id: key });
          if (answer.data?.customer) expectedCustomers.push({ key, customer: answer.data.customer });
        }
        const seesAll = w === 'steward';
        expect(expectedOrders).toHaveLength(seesAll ? 4 : 2);
        // The analysts are refused the payments (an error per field, as in their queries); the steward is not.
        expect(expectedOrders.every((e) => (e.errors === undefined) === seesAll)).toBe(true);
        await expect.poll(() => nextsOf(sse[w]!.orders).length, { timeout: 15_000 }).toBe(expectedOrders.length);
        await expect.poll(() => ws[w]!.orders.results.length, { timeout: 15_000 }).toBe(expectedOrders.length);
        await expect.poll(() => nextsOf(sse[w]!.customers).length, { timeout: 15_000 }).toBe(expectedCustomers.length);
        await expect.poll(() => ws[w]!.customers.results.length, { timeout: 15_000 }).toBe(expectedCustomers.length);
        for (const results of [nextsOf(sse[w]!.orders), ws[w]!.orders.results]) {
          expect(results.map((r) => r.data.orderChanged.order)).toEqual(expectedOrders.map((e) => e.order));
          expect(results.map((r) => r.data.orderChanged.key)).toEqual(expectedOrders.map((e) => e.key));
          expect(results.map((r) => r.data.orderChanged.operation)).toEqual(expectedOrders.map(() => 'UPSERT'));
          expect(results.map((r) => r.data.orderChanged.changedFields)).toEqual(expectedOrders.map(() => ['status']));
          expect(results.map((r) => r.errors?.map((e: any) => ({ message: e.message, path: e.path, code: e.extensions.code })))).toEqual(expectedOrders.map((e) => e.errors));
          expect(results.map((r) => r.extensions.policy?.masked)).toEqual(expectedOrders.map((e) => e.masked));
          // The position names the event and the key within it.
          expect(results.map((r) => r.data.orderChanged.position)).toEqual(expectedOrders.map((e) => `${orderPosition}:${orderKeys.indexOf(e.key)}`));
        }
        // SSE carries the position as the event id too (what Last-Event-ID resumes after); both in extensions.
        const positions = expectedOrders.map((e) => `${orderPosition}:${orderKeys.indexOf(e.key)}`);
        expect(sse[w]!.orders.events.filter((e) => e.event === 'next').map((e) => e.id)).toEqual(positions);
        for (const results of [nextsOf(sse[w]!.orders), ws[w]!.orders.results]) expect(results.map((r) => r.extensions.position)).toEqual(positions);
        for (const results of [nextsOf(sse[w]!.customers), ws[w]!.customers.results]) {
          expect(results.map((r) => r.data.customerChanged)).toEqual(expectedCustomers.map((e) => ({ __typename: 'CustomerChange', operation: 'UPSERT', key: e.key, customer: e.customer })));
        }
      }
      // The analysts never received a row of the other region; masks differ from the steward's.
      const emeaCustomers = nextsOf(sse.emea!.customers).map((r) => r.data.customerChanged.customer);
      expect(emeaCustomers.map((c) => c.region)).toEqual(['EMEA']);
      const stewardCustomer = nextsOf(sse.steward!.customers).map((r) => r.data.customerChanged.customer).find((c) => c.id === emeaCustomers[0].id);
      expect(stewardCustomer.email).not.toEqual(emeaCustomers[0].email);

      // Each delivered event has its audit record, with the subscription and the position.
      const records = (await readAuditRecords(join(mesh.dataDir, 'audit', `gateway-${gatewayName}.jsonl`))) as any[];
      const audited = records.filter((r) => r.subscriptionEvent?.field === 'orderChanged' && r.subject === 'eve').map((r) => r.subscriptionEvent.position);
      for (const event of nextsOf(sse.emea!.orders)) expect(audited).toContain(event.data.orderChanged.position);
    }, 90_000);
  });

  describe('resuming', () => {
    it('over SSE, Last-Event-ID gets what the subscriber missed, once, in order', async () => {
      const keys = (await keysByRegion('orderList(limit: 10) { id }')).americas;
      const first = track(await subscribeSse(gateway.url, { query: 'subscription { orderChanged { key position } }', authorization: principals.steward }));
      const e1 = await publish({ product: 'finance.orders', operation: 'upsert', keys: [keys[0]!, keys[1]!, keys[0]!.replace(/\d$/, '9')], changedFields: ['status'] });
      await nexts(first, 1);
      // The connection drops after the first event.
      first.close();
      const seen = first.events.filter((e) => e.event === 'next').map((e) => e.id!);
      const e2 = await publish({ product: 'finance.orders', operation: 'upsert', keys: [keys[1]!], changedFields: ['total'] });
      const resumed = track(await subscribeSse(gateway.url, { query: 'subscription { orderChanged { key position } }', authorization: principals.steward, lastEventId: seen.at(-1)! }));
      expect(resumed.status).toBe(200);
      // Every position after the last seen (whose rows exist), once: the rest of e1, then e2.
      const all = [`${e1}:0`, `${e1}:1`, `${e1}:2`, `${e2}:0`];
      const missing = all.slice(all.indexOf(seen.at(-1)!) + 1);
      const steward = (k: string) => queryAs('steward', 'query($id: ID!) { order(id: $id) { id } }', { id: k });
      const exists = await Promise.all([keys[0]!, keys[1]!, keys[0]!.replace(/\d$/, '9'), keys[1]!].map(async (k) => Boolean((await steward(k)).data!.order)));
      const expected = missing.filter((position) => exists[all.indexOf(position)]);
      await nexts(resumed, expected.length);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(resumed.events.filter((e) => e.event === 'next').map((e) => e.id)).toEqual(expected);
      expect(nextsOf(resumed).map((r) => r.data.orderChanged.position)).toEqual(expected);
    });

    it('over WebSocket, `after` resumes after a position; a whole event by its number', async () => {
      const keys = (await keysByRegion('orderList(limit: 10) { id }')).emea;
      const e1 = await publish({ product: 'finance.orders', operation: 'upsert', keys: [keys[0]!, keys[1]!], changedFields: ['status'] });
      const e2 = await publish({ product: 'finance.orders', operation: 'upsert', keys: [keys[1]!], changedFields: ['total'] });
      const c = client(principals.emea);
      const query = 'subscription($after: String) { orderChanged(after: $after) { key position } }';
      const withinEvent = subscribeWs(c, query, { after: `${e1}:0` });
      const afterEvent = subscribeWs(c, query, { after: String(e1) });
      await expect.poll(() => withinEvent.results.length, { timeout: 15_000 }).toBe(2);
      await expect.poll(() => afterEvent.results.length, { timeout: 15_000 }).toBe(1);
      expect(withinEvent.results.map((r) => r.data.orderChanged.position)).toEqual([`${e1}:1`, `${e2}:0`]);
      expect(afterEvent.results.map((r) => r.data.orderChanged.position)).toEqual([`${e2}:0`]);
      withinEvent.unsubscribe();
      afterEvent.unsubscribe();
    });

    it('never delivers what was written to the product\'s feed without the mesh\'s signature', async () => {
      const keys = (await keysByRegion('orderList(limit: 10) { id }')).americas;
      const subscriber = track(await subscribeSse(gateway.url, { query: 'subscription { orderChanged { key } }', authorization: principals.steward }));
      const { last } = await feed.bounds('finance.orders');
      // Someone with write access to the feed but not the key: a forged signature, and none.
      const forged = signChangeEvent({ id: `finance.orders@forged-${last}`, key: 'an-attacker-key-that-is-not-the-mesh-signing-key', change: { product: 'finance.orders', operation: 'upsert', keys: [keys[0]!], version: new Date().toISOString(), changedFields: ['status'] } });
      const unsigned = { ...forged, id: `finance.orders@unsigned-${last}`, meshsignature: undefined };
      if (kind === 'file') {
        const log = join(feedDir, 'events', 'finance.orders', '000000000001.log');
        await appendFile(log, `${last + 1}\t${JSON.stringify(forged)}\n${last + 2}\t${JSON.stringify(unsigned)}\n`);
      } else {
        // Published straight to the product's subject, as any NATS client with publish rights could.
        const nc = await connect({ servers: NATS });
        for (const event of [forged, unsigned]) await nc.request(`${NATS_PREFIX}.finance.orders`, JSON.stringify(event));
        await nc.close();
      }
      expect((await feed.bounds('finance.orders')).last).toBe(last + 2);
      await publish({ product: 'finance.orders', operation: 'upsert', keys: [keys[1]!], changedFields: ['status'] });
      await nexts(subscriber, 1);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(nextsOf(subscriber).map((r) => r.data.orderChanged.key)).toEqual([keys[1]]);
      subscriber.close();
    });
  });
});

describe('deletes and filters', () => {
  it('a delete reaches a subscriber the row policy does not restrict, and an analyst only for a row it was delivered', async () => {
    const orders = await keysByRegion('orderList(limit: 10) { id }');
    const query = 'subscription { orderChanged { operation key order { id } } }';
    const analyst = track(await subscribeSse(gateway.url, { query, authorization: principals.americas }));
    const steward = track(await subscribeSse(gateway.url, { query, authorization: principals.steward }));
    await publish({ product: 'finance.orders', operation: 'upsert', keys: [orders.americas[0]!], changedFields: ['status'] });
    await nexts(analyst, 1);
    await publish({ product: 'finance.orders', operation: 'delete', keys: [orders.americas[0]!, orders.emea[0]!, orders.americas[1]!], changedFields: [] });
    await nexts(steward, 4);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(nextsOf(steward).map((r) => r.data.orderChanged)).toEqual([
      { operation: 'UPSERT', key: orders.americas[0], order: { id: orders.americas[0] } },
      { operation: 'DELETE', key: orders.americas[0], order: null },
      { operation: 'DELETE', key: orders.emea[0], order: null },
      { operation: 'DELETE', key: orders.americas[1], order: null },
    ]);
    // Not the EMEA key (never visible to it), nor an AMERICAS key it was never delivered: it cannot know it was visible.
    expect(nextsOf(analyst).map((r) => r.data.orderChanged)).toEqual([
      { operation: 'UPSERT', key: orders.americas[0], order: { id: orders.americas[0] } },
      { operation: 'DELETE', key: orders.americas[0], order: null },
    ]);
  });

  it('keeps the entities whose field equals a filter argument now, and one key by its key argument', async () => {
    const rows = (await queryAs('steward', '{ orderList(limit: 100) { id status } }')).data!.orderList as { id: string; status: string }[];
    const status = rows.find((row) => rows.filter((r) => r.status === row.status).length >= 2)!.status;
    const same = rows.filter((row) => row.status === status).map((row) => row.id);
    const other = rows.filter((row) => row.status !== status).map((row) => row.id);
    const byStatus = track(await subscribeSse(gateway.url, { query: 'subscription($s: OrderStatus) { orderChanged(status: $s) { key order { status } } }', variables: { s: status }, authorization: principals.steward }));
    const products = (await queryAs('steward', '{ productList(limit: 3) { sku } }')).data!.productList as { sku: string }[];
    const bySku = track(await subscribeSse(gateway.url, { query: `subscription { productChanged(sku: "${products[1]!.sku}") { key product { sku name } } }`, authorization: principals.americas, method: 'GET' }));
    expect(bySku.status).toBe(200);
    await publish({ product: 'finance.orders', operation: 'upsert', keys: [other[0]!, same[0]!, other[1]!, same[1]!], changedFields: ['status'] });
    await publish({ product: 'products.products', operation: 'upsert', keys: products.map((p) => p.sku), changedFields: ['name'] });
    await nexts(byStatus, 2);
    await nexts(bySku, 1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(nextsOf(byStatus).map((r) => r.data.orderChanged)).toEqual([{ key: same[0], order: { status } }, { key: same[1], order: { status } }]);
    expect(nextsOf(bySku).map((r) => r.data.productChanged.key)).toEqual([products[1]!.sku]);
  });
});

const metricsText = async () => (await fetch(gateway.url.replace('/graphql', '/metrics'))).text();
const metric = async (name: string, labels: string) => Number((await metricsText()).split('\n').find((line) => line.startsWith(`${name}{`) && labels.split(',').every((label) => line.includes(label)))?.split(' ').at(-1) ?? 0);
const wsError = (subscription: { error: unknown }) => (subscription.error as { extensions?: { code?: string } }[] | undefined)?.[0]?.extensions?.code;

describe('misuse', () => {
  const query = 'subscription { orderChanged { key } }';

  it('refuses a subscription without a token, or with an expired one, coded, on both transports', async () => {
    const anonymous = await subscribeSse(gateway.url, { query, authorization: null });
    expect(anonymous.status).toBe(401);
    expect(anonymous.refusal.errors[0].extensions.code).toBe('UNAUTHENTICATED');
    const expired = bearer({ subject: 'old', roles: ['steward'], expiresInSeconds: -5 });
    const late = await subscribeSse(gateway.url, { query, authorization: expired });
    expect(late.status).toBe(401);
    expect(late.refusal.errors[0].extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'TOKEN_EXPIRED' });
    for (const [authorization, reason] of [[null, 'UNAUTHENTICATED: MISSING_TOKEN'], [expired, 'UNAUTHENTICATED: TOKEN_EXPIRED'], ['Bearer not-a-token', 'UNAUTHENTICATED: MALFORMED_TOKEN']] as const) {
      const closed: { code: number; reason: string }[] = [];
      const subscription = subscribeWs(client(authorization, (event) => closed.push(event)), query);
      await subscription.done;
      expect(closed[0]).toMatchObject({ code: 4401, reason });
      expect(subscription.results).toEqual([]);
    }
  });

  it('refuses a WebSocket upgrade from a page of another origin, or for another host, as every HTTP route', async () => {
    const statusOf = (headers: Record<string, string>) =>
      new Promise<number>((resolve, reject) => {
        const socket = new WebSocket(gateway.url.replace(/^http/, 'ws'), 'graphql-transport-ws', { headers });
        socket.on('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0));
        socket.on('open', () => (socket.close(), resolve(101)));
        socket.on('error', reject);
      });
    expect(await statusOf({ origin: 'http://evil.example' })).toBe(403);
    expect(await statusOf({ host: 'evil.example' })).toBe(403);
    expect(await statusOf({ origin: new URL(gateway.url).origin })).toBe(101);
  });

  it('never lets open streams count as operations in flight: queries are answered beside more streams than the bound', async () => {
    // This gateway sheds beyond 4 operations in flight; 6 streams stay open.
    const open = await Promise.all(Array.from({ length: 6 }, (_, i) => subscribeSse(gateway.url, { query, authorization: bearer({ subject: `streamer-${i}`, roles: ['steward'] }) }).then(track)));
    expect(open.map((s) => s.status)).toEqual([200, 200, 200, 200, 200, 200]);
    const answered = await mesh.query('{ orderList(limit: 1) { id } }');
    const viaGateway = await fetch(gateway.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: principals.steward }, body: JSON.stringify({ query: '{ orderList(limit: 1) { id } }' }) });
    expect([answered.status, viaGateway.status]).toEqual([200, 200]);
    for (const stream of open) stream.close();
  });

  it('ends a subscription whose token expires during the stream, with a coded error, on both transports', async () => {
    const shortLived = bearer({ subject: 'brief', roles: ['steward'], expiresInSeconds: 2 });
    const sse = track(await subscribeSse(gateway.url, { query, authorization: shortLived }));
    const ws = subscribeWs(client(shortLived), query);
    expect(sse.status).toBe(200);
    await sse.ended;
    await ws.done;
    const last = sse.events.filter((e) => e.event === 'next').at(-1)!;
    expect(last.data.errors[0].extensions.code).toBe('SUBSCRIPTION_TOKEN_EXPIRED');
    expect(sse.events.at(-1)!.event).toBe('complete');
    expect(wsError(ws)).toBe('SUBSCRIPTION_TOKEN_EXPIRED');
    expect(await metric('mesh_subscriptions_ended_total', 'code="SUBSCRIPTION_TOKEN_EXPIRED"')).toBeGreaterThanOrEqual(2);
  }, 20_000);

  it('bounds the subscriptions of one subject (thousands from one client) and of one client, and frees them when they end', async () => {
    const flood = bearer({ subject: 'flooder', roles: ['analyst'], regions: ['EMEA'] });
    const c = client(flood);
    const subscriptions = Array.from({ length: 1_000 }, () => subscribeWs(c, query));
    await expect.poll(() => subscriptions.filter((s) => s.error).length, { timeout: 30_000 }).toBe(900);
    expect(new Set(subscriptions.filter((s) => s.error).map(wsError))).toEqual(new Set(['SUBSCRIPTION_LIMIT']));
    // Another subject is not affected; over SSE the flooder is refused too (429).
    const other = track(await subscribeSse(gateway.url, { query, authorization: principals.emea }));
    expect(other.status).toBe(200);
    const more = await subscribeSse(gateway.url, { query, authorization: flood });
    expect(more.status).toBe(429);
    expect(more.refusal.errors[0].extensions).toMatchObject({ code: 'SUBSCRIPTION_LIMIT', bucket: 'subject', limit: 100 });
    // Each refusal is audited, as an HTTP refusal is.
    await expect.poll(async () => ((await readAuditRecords(join(mesh.dataDir, 'audit', 'gateway-subscriptions.jsonl'))) as any[]).filter((r) => r.subject === 'flooder' && r.refusal === 'SUBSCRIPTION_LIMIT').length, { timeout: 10_000 }).toBe(901);
    for (const subscription of subscriptions) subscription.unsubscribe();
    await expect.poll(async () => (await subscribeSse(gateway.url, { query, authorization: flood }).then((s) => track(s))).status, { timeout: 10_000 }).toBe(200);
    // A client's subscriptions, all its users together.
    const users = ['u1', 'u2', 'u3'].map((subject) => bearer({ subject, roles: ['analyst'], regions: ['EMEA'], client: 'flood-app' }));
    const statuses: number[] = [];
    for (const user of users) for (let i = 0; i < 2; i += 1) statuses.push(track(await subscribeSse(gateway.url, { query, authorization: user })).status);
    expect(statuses).toEqual([200, 200, 200, 200, 429, 429]);
  }, 60_000);

  it('delivers at most the events per second a subscriber may have, and the rest after, none lost', async () => {
    const keys = ((await queryAs('steward', '{ orderList(limit: 8) { id } }')).data!.orderList as { id: string }[]).map((o) => o.id);
    const trickle = track(await subscribeSse(gateway.url, { query, authorization: bearer({ subject: 'trickle', roles: ['trickle', 'steward'] }) }));
    await publish({ product: 'finance.orders', operation: 'upsert', keys, changedFields: ['status'] });
    await nexts(trickle, 1);
    // Two at once (the bucket), then two a second: a second after the first, four at most (a slower machine delivers fewer).
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(nextsOf(trickle).length).toBeLessThanOrEqual(4);
    await expect.poll(() => nextsOf(trickle).map((r) => r.data.orderChanged.key), { timeout: 15_000 }).toEqual(keys);
  }, 30_000);

  it('ends a subscription whose events spend its rate budget, coded, with the position to resume after', async () => {
    const keys = ((await queryAs('steward', '{ orderList(limit: 40) { id } }')).data!.orderList as { id: string }[]).map((o) => o.id);
    const frugal = track(await subscribeSse(gateway.url, { query: 'subscription { orderChanged { key order { id status } } }', authorization: bearer({ subject: 'frugal', roles: ['frugal', 'steward'] }) }));
    expect(frugal.status).toBe(200);
    await publish({ product: 'finance.orders', operation: 'upsert', keys, changedFields: ['status'] });
    await frugal.ended;
    const results = nextsOf(frugal);
    const last = results.at(-1)!;
    expect(last.errors[0].extensions).toMatchObject({ code: 'RATE_LIMITED', bucket: 'subject', budget: 40 });
    // Each delivered key spent its cost: fewer than the 40 keys were delivered before the end.
    const delivered = results.filter((r) => r.data);
    expect(delivered.length).toBeGreaterThan(0);
    expect(delivered.length).toBeLessThan(keys.length);
    expect(last.errors[0].message).toMatch(new RegExp(`at position \\d+:${delivered.length}`));
    expect(frugal.events.at(-1)!.event).toBe('complete');
  }, 30_000);

  it('refuses a selection whose cost per event is over the budget, and operation limits, as for a query', async () => {
    const limited = bearer({ subject: 'lim', roles: ['limited'] });
    const costly = 'subscription { customerChanged { customer { orders(first: 100) { nodes { id } } } } }';
    const sse = await subscribeSse(gateway.url, { query: costly, authorization: limited });
    expect(sse.status).toBe(400);
    expect(sse.refusal.errors[0].extensions).toMatchObject({ code: 'COST_LIMIT_EXCEEDED', budget: 50 });
    const ws = subscribeWs(client(limited), costly);
    await ws.done;
    expect(wsError(ws)).toBe('COST_LIMIT_EXCEEDED');
    const deep = `subscription { customerChanged { customer { ${'orders(first: 1) { nodes { customer { '.repeat(5)}id${' } } }'.repeat(5)} } } }`;
    expect((await subscribeSse(gateway.url, { query: deep, authorization: principals.steward })).refusal.errors[0].extensions.code).toBe('MAX_DEPTH_EXCEEDED');
    // Not a subscription, or not one the gateway serves: coded.
    expect((await subscribeSse(gateway.url, { query: '{ orderList(limit: 1) { id } }', authorization: principals.steward })).refusal.errors[0].extensions.code).toBe('SUBSCRIPTION_INVALID');
    expect((await subscribeSse(gateway.url, { query: 'subscription($meshEventKey: String) { orderChanged(after: $meshEventKey) { key } }', authorization: principals.steward })).refusal.errors[0].extensions.code).toBe('SUBSCRIPTION_INVALID');
    expect((await subscribeSse(gateway.url, { query: 'subscription { orderChanged { nope } }', authorization: principals.steward })).refusal.errors[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  it('holds an app registered for trusted documents to them: ad-hoc subscriptions refused, its registered one by documentId', async () => {
    const body = 'subscription AppOrders { orderChanged { key } }';
    const documentId = `sha256:${createHash('sha256').update(body).digest('hex')}`;
    const registry = await openRegistry(mesh.registryUrl);
    await registry.registerDocuments([{ client: 'subscribing-app', name: documentId, body, registeredBy: 'test' }]);
    await registry.close();
    const app = bearer({ subject: 'svc-sub', roles: ['steward'], client: 'subscribing-app' });
    // The gateway rereads registered documents every few polls: until then the app is not held.
    await expect.poll(async () => (await subscribeSse(gateway.url, { query: body, authorization: app }).then(track)).status, { timeout: 15_000 }).toBe(400);
    const adHoc = await subscribeSse(gateway.url, { query: body, authorization: app });
    expect(adHoc.refusal.errors[0].extensions.code).toBe('TRUSTED_DOCUMENT_REQUIRED');
    const ws = subscribeWs(client(app), body);
    await ws.done;
    expect(wsError(ws)).toBe('TRUSTED_DOCUMENT_REQUIRED');
    const byId = track(await subscribeSse(gateway.url, { documentId, authorization: app }));
    expect(byId.status).toBe(200);
    const unknown = await subscribeSse(gateway.url, { documentId: `sha256:${'0'.repeat(64)}`, authorization: app });
    expect(unknown.refusal.errors[0].extensions.code).toBe('PERSISTED_DOCUMENT_NOT_FOUND');
  });

  it('refuses a malformed stream request, coded: variables or extensions that are not JSON, a body that is no object', async () => {
    const stream = gateway.url.replace(/\/graphql$/, '/graphql/stream');
    const headers = { accept: 'text/event-stream', authorization: principals.steward };
    for (const search of [`query=${encodeURIComponent(query)}&variables=%7Bnot-json`, `query=${encodeURIComponent(query)}&extensions=x`, `query=${encodeURIComponent(query)}&variables=%7B%7D&variables=%7B%7D`]) {
      const response = await fetch(`${stream}?${search}`, { headers });
      expect(response.status, search).toBe(400);
      expect(((await response.json()) as any).errors[0].extensions.code, search).toBe('BAD_REQUEST');
    }
    for (const body of ['[1, 2]', '"subscription"', '{"query": 42}', '{"query": "subscription { orderChanged { key } }", "variables": [1]}']) {
      const response = await fetch(stream, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body });
      expect(response.status, body).toBe(400);
      expect(((await response.json()) as any).errors[0].extensions.code, body).toBe('BAD_REQUEST');
    }
    expect((await fetch(stream, { method: 'PUT', headers })).status).toBe(405);
  });

  it('refuses a forged Last-Event-ID or `after`: not a position, or beyond the feed', async () => {
    const { last } = await feed.bounds('finance.orders');
    for (const forged of ['x; DROP TABLE', '-1', '1:2:3', `${last + 10}`, '9'.repeat(40)]) {
      const refused = await subscribeSse(gateway.url, { query, authorization: principals.steward, lastEventId: forged });
      expect(refused.status).toBe(400);
      expect(refused.refusal.errors[0].extensions.code).toBe('EVENT_POSITION_INVALID');
    }
    const ws = subscribeWs(client(principals.steward), 'subscription($after: String) { orderChanged(after: $after) { key } }', { after: `${last + 1}` });
    await ws.done;
    expect(wsError(ws)).toBe('EVENT_POSITION_INVALID');
  });

  it('ends a subscriber that never reads, coded, and lets go of it', async () => {
    const firehose = bearer({ subject: 'slow', roles: ['firehose', 'steward'] });
    // The earlier tests' subscribers leave first: under this burst, with this gateway's queue of 20, they could fall behind too.
    for (const stream of streams) stream.close();
    await Promise.all(clients.map((c) => c.dispose()));
    await expect.poll(async () => (await metric('mesh_subscriptions', 'transport="sse"')) + (await metric('mesh_subscriptions', 'transport="ws"')), { timeout: 10_000 }).toBe(0);
    const before = await metric('mesh_subscriptions_ended_total', 'code="SUBSCRIPTION_SLOW_CONSUMER"');
    const open = await metric('mesh_subscriptions', 'transport="sse"');
    // A raw connection that sends its subscription and never reads a byte of the answer.
    const { port } = new URL(gateway.url);
    const body = JSON.stringify({ query: `subscription { customerChanged { customer { ${Array.from({ length: 25 }, (_, i) => `a${i}: orders(first: 100) { nodes { id orderedAt status channel total lines { lineNumber quantity unitPrice } } }`).join(' ')} } } }` });
    const socket = connectTcp(Number(port), '127.0.0.1');
    socket.write(`POST /graphql/stream HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: ${firehose}\r\naccept: text/event-stream\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    socket.pause();
    await expect.poll(() => metric('mesh_subscriptions', 'transport="sse"'), { timeout: 10_000 }).toBe(open + 1);
    const customers = ((await queryAs('steward', '{ customerList(limit: 100) { id } }')).data!.customerList as { id: string }[]).map((c) => c.id);
    // Events of 50 customers each until the gateway gives up on it (the kernel takes a few MB first).
    const ended = async () => (await metric('mesh_subscriptions_ended_total', 'code="SUBSCRIPTION_SLOW_CONSUMER"')) > before;
    for (let i = 0, deadline = Date.now() + 90_000; !(await ended()) && Date.now() < deadline; i += 1) {
      await publish({ product: 'customers.customers', operation: 'upsert', keys: customers.slice(0, 50), changedFields: ['email'] });
      if (i % 10 === 9) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(await metric('mesh_subscriptions_ended_total', 'code="SUBSCRIPTION_SLOW_CONSUMER"')).toBe(before + 1);
    // What waited for it was dropped, and counted (it resumes to get them).
    expect(await metric('mesh_subscription_events_total', 'outcome="dropped"')).toBeGreaterThanOrEqual(20);
    // Let go of: no longer counted, though the subscriber still holds its end of the connection.
    await expect.poll(() => metric('mesh_subscriptions', 'transport="sse"'), { timeout: 10_000 }).toBe(open);
    socket.destroy();
  }, 120_000);
});

describe('a gateway that stops', () => {
  it('cuts its subscribers\' streams without a `complete`, so that they reconnect with their position elsewhere', async () => {
    const stopping = await startTestGateway(subscriptionGatewayConfig('stopping', { dataDir: feedDir, natsUrl: null }));
    await stopping.ready;
    const sse = await subscribeSse(stopping.url, { query: 'subscription { orderChanged { key } }', authorization: principals.steward });
    expect(sse.status).toBe(200);
    const closed: { code: number; reason: string }[] = [];
    const c = wsClient(stopping.url, principals.steward, { onClosed: (event) => closed.push(event) });
    const ws = subscribeWs(c, 'subscription { orderChanged { key } }');
    await expect.poll(async () => /mesh_subscriptions\{transport="ws"[^}]*\} 1/.test(await (await fetch(stopping.url.replace('/graphql', '/metrics'))).text()), { timeout: 10_000 }).toBe(true);
    await stopping.stop();
    await sse.ended;
    expect(sse.events.map((e) => e.event)).toEqual([]);
    await expect.poll(() => closed.map((event) => event.code), { timeout: 5_000 }).toEqual([1001]);
    expect(ws.completed).toBe(false);
    await c.dispose();
  }, 60_000);
});
