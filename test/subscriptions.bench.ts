/**
 * `npm run bench` (with the others): subscriptions on a mesh started with `npm start` (SCALE 0.02,
 * the embedded change feed), every subscriber an analyst of its own (a subject each, the EMEA row
 * policy and the PII masks apply) over WebSocket.
 *
 * 1. An event fanned out to 100 and to 1,000 subscribers: one order changed (a signed event, as the
 *    finance subgraph publishes it), until every subscriber has it; against the baseline of the
 *    same query (`order(id)` with the subscribers' selection) sent once per subscriber over HTTP,
 *    all at once, as polling apps would.
 * 2. From a load to the first and the last subscriber's event: a delivery of orders, merged by a
 *    pipeline run of the finance subgraph (its process), committed, served, then published; 1,000
 *    stewards subscribed (each its own subject; every row, so each has every changed order). The
 *    bench sees the events arrive in the feed (the publish, shortly after the commit and the swap)
 *    and each subscriber's first event of the load. Printed after the cases, in milliseconds: the
 *    load's start (its version's time) → published, published → the first and the last subscriber.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from 'graphql-ws';
import { afterAll, bench, describe } from 'vitest';
import { signChangeEvent } from '../policy/events/change-event.js';
import { openFileFeed } from '../policy/events/file-feed.js';
import { DEV_SIGNING_KEY, SIGNATURE_HEADER, signSubgraphRequest } from '../policy/subgraph-signature.js';
import { deliverIncrement } from '../subgraphs/synthetic-sources/live.js';
import { freePort, postGraphQL, tokenFor } from './harness/mesh.js';
import { npmStart, stop } from './harness/npm-start.js';
import { subscribeWs, wsClient, type WsSubscription } from './harness/subscribers.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const work = await mkdtemp(join(tmpdir(), 'subscriptions-bench-'));
const [port, ...ports] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
const gateway = `http://127.0.0.1:${port}/graphql`;
const financePort = ports[2]!;
const domains = ['customers', 'products', 'finance'].map((name, i) => ({ name, module: join(root, `subgraphs/${name}/index.js`), url: `http://127.0.0.1:${ports[i]}/graphql` }));
await writeFile(join(work, 'mesh.json'), JSON.stringify({ domains }));
const dataDir = join(work, 'data');
const env = { MESH_MANIFEST: join(work, 'mesh.json'), DATA_DIR: dataDir, PORT: String(port), SUBGRAPHS: '', SCALE: '0.02', SEED: '', LOG_LEVEL: 'warn', PIPELINES_EVERY: '' };
const mesh = await npmStart(env);
const feed = openFileFeed({ dir: join(dataDir, 'events'), signingKey: DEV_SIGNING_KEY });
const clients: Client[] = [];
afterAll(async () => {
  await Promise.all(clients.map((client) => client.dispose()));
  await feed.close();
  await stop(mesh);
  await rm(work, { recursive: true, force: true });
});

const SELECTION = '{ id status total channel customer { name email } }';
const tokens: string[] = [];
const subscriptions: WsSubscription[] = [];
const tokenOf = (i: number) => (tokens[i] ??= `Bearer ${tokenFor({ subject: `bench-analyst-${i}`, roles: ['analyst'], regions: ['EMEA'] })}`);
/** For the load: stewards (every row), so that every subscriber has each changed order, whatever its region. */
let stewards = false;

/** Opens subscribers up to `count`, each on its own connection, and waits until the gateway counts them. */
async function subscribers(count: number): Promise<void> {
  while (subscriptions.length < count) {
    const i = subscriptions.length;
    const client = wsClient(gateway, stewards ? `Bearer ${tokenFor({ subject: `bench-steward-${i}`, roles: ['steward'], purpose: 'customer-support' })}` : tokenOf(i));
    clients.push(client);
    subscriptions.push(subscribeWs(client, `subscription { orderChanged { key order ${SELECTION} } }`));
  }
  const metrics = gateway.replace('/graphql', '/metrics');
  for (;;) {
    const open = Number(/mesh_subscriptions\{transport="ws"[^}]*\} (\d+)/.exec(await (await fetch(metrics)).text())?.[1] ?? 0);
    if (open === count) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const emeaOrder = ((await postGraphQL<any>(gateway, '{ orderList(limit: 1) { id } }', undefined, { authorization: tokenOf(0) })).body.data.orderList as { id: string }[])[0]!.id;
let published = 0;

/** One order changed: published as the subgraph does, then waited for at every open subscriber. */
async function fanOut(count: number): Promise<void> {
  const before = subscriptions.slice(0, count).map((subscription) => subscription.results.length);
  published += 1;
  await feed.publish(signChangeEvent({ id: `finance.orders@bench-${published}`, key: DEV_SIGNING_KEY, change: { product: 'finance.orders', operation: 'upsert', keys: [emeaOrder], version: new Date().toISOString(), changedFields: ['status'] } }));
  for (;;) {
    if (subscriptions.slice(0, count).every((subscription, i) => subscription.results.length > before[i]!)) return;
    const failed = subscriptions.find((subscription) => subscription.error);
    if (failed) throw new Error(`a subscription ended: ${JSON.stringify(failed.error)}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** The same query, once per subscriber, all at once. */
async function queryEach(count: number): Promise<void> {
  const answers = await Promise.all(Array.from({ length: count }, (_, i) => postGraphQL<any>(gateway, `query($id: ID!) { order(id: $id) ${SELECTION} }`, { id: emeaOrder }, { authorization: tokenOf(i) })));
  if (answers.some((answer) => !answer.body.data?.order)) throw new Error('a query did not answer the order');
}

const LATENCY_SUBSCRIBERS = Number(process.env.BENCH_LATENCY_SUBSCRIBERS ?? 1_000);
const options = { iterations: 5, warmupIterations: 1, time: 0, warmupTime: 0 };
for (const count of [100, 1_000]) {
  describe(`one changed order, ${count.toLocaleString('en')} subscribers (analysts, each its own subject, over WebSocket)`, () => {
    bench(`the same query sent once per subscriber over HTTP, all at once (baseline)`, () => queryEach(count), { ...options, setup: () => subscribers(count) });
    bench('the event resolved and delivered to every subscriber', () => fanOut(count), { ...options, setup: () => subscribers(count) });
  });
}

describe(`a load's commit to its subscribers (finance: a delivery of 5 orders merged by a pipeline run; ${LATENCY_SUBSCRIBERS.toLocaleString('en')} subscribers)`, () => {
  const latencies: { toPublish: number; toFirst: number; toLast: number }[] = [];
  bench('published → the first subscriber, → the last; the load\'s start → published (printed below)', async () => {
    if (!stewards) {
      // The analysts leave; as many stewards subscribe.
      await Promise.all(clients.splice(0).map((client) => client.dispose()));
      subscriptions.length = 0;
      stewards = true;
    }
    await subscribers(LATENCY_SUBSCRIBERS);
    const { last } = await feed.bounds('finance.orders');
    // A subscriber's first result of this load: one whose position is an event after `last`.
    const ofThisLoad = (result: any) => Number(String(result?.extensions?.position ?? '0').split(':')[0]) > last;
    await deliverIncrement({ rawDir: join(dataDir, 'raw'), orders: 5, now: new Date() });
    const body = JSON.stringify({ action: 'run', pipeline: 'finance.orders' });
    const asked = await fetch(`http://127.0.0.1:${financePort}/pipelines`, { method: 'POST', headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signSubgraphRequest({ key: DEV_SIGNING_KEY, body }) }, body });
    if (asked.status !== 200) throw new Error(`the run was not queued: ${asked.status}`);
    const arrived: number[] = new Array(LATENCY_SUBSCRIBERS).fill(0);
    let published = 0;
    let loadStarted = 0;
    const deadline = Date.now() + 120_000;
    while (arrived.some((at) => at === 0)) {
      const now = Date.now();
      if (now > deadline) {
        const ended = subscriptions.filter((subscription) => subscription.error || subscription.completed);
        const { last: newest } = await feed.bounds('finance.orders');
        throw new Error(`${arrived.filter((at) => at === 0).length} subscribers got nothing of the load; ${ended.length} had ended (${JSON.stringify(ended[0]?.error)}); the feed went from ${last} to ${newest}; a subscriber's last result: ${JSON.stringify(subscriptions[0]!.results.at(-1))}`);
      }
      for (let i = 0; i < LATENCY_SUBSCRIBERS; i += 1) if (arrived[i] === 0 && subscriptions[i]!.results.some(ofThisLoad)) arrived[i] = now;
      if (!published && (await feed.bounds('finance.orders')).last > last) {
        published = now;
        const lastEvent = await feed.lastEvent('finance.orders');
        // The merge's version: its time is when the load began (the outbox entry's).
        loadStarted = Date.parse(lastEvent!.event.data.version);
      }
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    latencies.push({ toPublish: published - loadStarted, toFirst: Math.min(...arrived) - published, toLast: Math.max(...arrived) - published });
  }, { iterations: 3, warmupIterations: 0, time: 0, warmupTime: 0, teardown: () => {
    if (latencies.length < 3) return;
    const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    console.log(`the load's start → its events published: ${median(latencies.map((l) => l.toPublish))} ms; published → the first subscriber's event: ${median(latencies.map((l) => l.toFirst))} ms; → the last of ${LATENCY_SUBSCRIBERS.toLocaleString('en')}: ${median(latencies.map((l) => l.toLast))} ms (median of ${latencies.length}; the bench polls the feed and the subscribers every 2 ms)`);
  } });
});
