/**
 * `npm run bench` (with the others): subscriptions on a mesh started with `npm start` (SCALE 0.02,
 * the embedded change feed), every subscriber an analyst of its own (a subject each, the EMEA row
 * policy and the PII masks apply) over WebSocket.
 *
 * 1. An event fanned out to 100 and to 1,000 subscribers: one order changed (a signed event, as the
 *    finance subgraph publishes it), until every subscriber has it; against the baseline of the
 *    same query (`order(id)` with the subscribers' selection) sent once per subscriber over HTTP,
 *    all at once, as polling apps would.
 * 2. From a load's commit to the first and the last subscriber's event: a delivery of new orders,
 *    merged by a pipeline run of the finance subgraph (its process), published once its version is
 *    served, resolved and delivered; the commit is the run's end as its run log says (`endedAt`:
 *    the version committed and served). Printed after the cases, in milliseconds.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
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

/** Opens subscribers up to `count`, each on its own connection, and waits until the gateway counts them. */
async function subscribers(count: number): Promise<void> {
  while (subscriptions.length < count) {
    const client = wsClient(gateway, tokenOf(subscriptions.length));
    clients.push(client);
    subscriptions.push(subscribeWs(client, `subscription { orderChanged { key order ${SELECTION} } }`));
  }
  const metrics = gateway.replace('/graphql', '/metrics');
  for (;;) {
    const open = Number(/mesh_subscriptions\{transport="ws"[^}]*\} (\d+)/.exec(await (await fetch(metrics)).text())?.[1] ?? 0);
    if (open >= count) return;
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

describe('a load\'s commit to its subscribers (finance, a delivery of 5 new orders merged by a pipeline run; 1,000 subscribers)', () => {
  const latencies: { toFeed: number; toFirst: number; toLast: number }[] = [];
  bench('commit → the event in the feed; → the first subscriber; → the last (printed below)', async () => {
    await subscribers(LATENCY_SUBSCRIBERS);
    const seen = subscriptions.map((subscription) => subscription.results.length);
    const { last } = await feed.bounds('finance.orders');
    await deliverIncrement({ rawDir: join(dataDir, 'raw'), orders: 5, now: new Date() });
    const body = JSON.stringify({ action: 'run', pipeline: 'finance.orders' });
    const asked = await fetch(`http://127.0.0.1:${financePort}/pipelines`, { method: 'POST', headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signSubgraphRequest({ key: DEV_SIGNING_KEY, body }) }, body });
    if (asked.status !== 200) throw new Error(`the run was not queued: ${asked.status}`);
    const { runId } = (await asked.json()) as { runId: string };
    // Each subscriber's first event of the load: when it arrived.
    const arrived: number[] = new Array(subscriptions.length).fill(0);
    let inFeed = 0;
    const deadline = Date.now() + 120_000;
    while (arrived.some((at) => at === 0)) {
      if (Date.now() > deadline) {
        const ended = subscriptions.filter((subscription) => subscription.error || subscription.completed);
        throw new Error(`${arrived.filter((at) => at === 0).length} subscribers got nothing; ${ended.length} ended (${JSON.stringify(ended[0]?.error)}); one that did: ${JSON.stringify(subscriptions.find((s, i) => arrived[i])?.results.slice(seen[0]))}`);
      }
      const now = Date.now();
      for (const [i, subscription] of subscriptions.entries()) if (arrived[i] === 0 && subscription.results.length > seen[i]!) arrived[i] = now;
      if (!inFeed && (await feed.bounds('finance.orders')).last > last) inFeed = now;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    // The commit: the run's end, once its version is committed and served (the run log's endedAt).
    type Run = { runId: string; endedAt: string; outcome: string };
    const runOf = async () => (await readFile(join(dataDir, 'pipelines', 'finance.jsonl'), 'utf8')).split('\n').filter(Boolean).map((line) => JSON.parse(line) as Run).find((record) => record.runId === runId);
    let run: Run | undefined;
    // The run's record is written as it ends, which may be after its events were delivered.
    for (const until = Date.now() + 30_000; !(run = await runOf()) && Date.now() < until; ) await new Promise((resolve) => setTimeout(resolve, 50));
    if (run?.outcome !== 'succeeded') throw new Error(`run ${runId} did not succeed: ${JSON.stringify(run)}`);
    const committed = Date.parse(run.endedAt);
    latencies.push({ toFeed: inFeed - committed, toFirst: Math.min(...arrived) - committed, toLast: Math.max(...arrived) - committed });
  }, { iterations: 3, warmupIterations: 0, time: 0, warmupTime: 0, teardown: () => {
    if (latencies.length < 3) return;
    const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    const toFeed = median(latencies.map((l) => l.toFeed));
    console.log(`commit → event in the feed: ${toFeed} ms; → first subscriber: ${median(latencies.map((l) => l.toFirst))} ms; → last of 1,000: ${median(latencies.map((l) => l.toLast))} ms (median of ${latencies.length}; from the run's end in its log; the feed's time is when the bench saw the event there, polling)`);
  } });
});
