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
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from 'graphql-ws';
import { signChangeEvent, type ProductChange } from '../policy/events/change-event.js';
import { openFileFeed } from '../policy/events/file-feed.js';
import type { ChangeFeed } from '../policy/events/change-feed.js';
import { DEV_SIGNING_KEY } from '../policy/subgraph-signature.js';
import { DEFAULT_LIMITS } from '../gateway/request-stages/allowances.js';
import type { RunningGateway } from '../gateway/server.js';
import type { AuditSink } from '../policy/audit.js';
import { readAuditRecords, startTestGateway, startTestMesh, testGatewayConfig, testIdentity, tokenFor, type TestMesh } from './harness/mesh.js';
import { nextsOf, subscribeSse, subscribeWs, wsClient, type SseSubscriber } from './harness/subscribers.js';

let mesh: TestMesh;
let gateway: RunningGateway & { audit: AuditSink };
let feed: ChangeFeed;
let feedDir: string;
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
  gateway = await startTestGateway(
    testGatewayConfig({
      dataDir: mesh.dataDir,
      name: 'subscriptions',
      supergraph: { kind: 'registry', registryUrl: mesh.registryUrl, pollMs: 100 },
      overrides: {
        changeFeed: { dataDir: feedDir, natsUrl: null },
        // No clock tolerance: a token that expires mid-stream does so when the test says.
        identity: { ...testIdentity, clockToleranceSeconds: 0 },
        limits: { ...DEFAULT_LIMITS, roles: { ...DEFAULT_LIMITS.roles, limited: { maxSubscriptions: 3, subscriptionEventsPerSecond: 2 } } },
      },
    }),
  );
  await gateway.ready;
}, 120_000);

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
    const records = (await readAuditRecords(join(mesh.dataDir, 'audit', 'gateway-subscriptions.jsonl'))) as any[];
    const audited = records.filter((r) => r.subscriptionEvent?.field === 'orderChanged' && r.subject === 'eve').map((r) => r.subscriptionEvent.position);
    for (const event of nextsOf(sse.emea!.orders)) expect(audited).toContain(event.data.orderChanged.position);
  }, 90_000);
});
