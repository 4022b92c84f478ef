/**
 * The JetStream change feed through a broker outage: a NATS server of the test's own
 * (`nats-server -p <port> -js`, its store in a folder of the test's) stopped mid-stream and started
 * again on the same store. While it is down a publish fails, coded, within its timeout (the
 * publisher keeps the event to publish again); once it is back, the publisher's retry and the
 * reader's ordered consumer go on by themselves: every event is read once, in order. Through the
 * gateway too: an open subscription gets every event once across the outage, and a subscriber that
 * reconnects with its Last-Event-ID gets what it missed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { afterAll, expect, it } from 'vitest';
import type { StoredChange } from '../policy/events/change-feed.js';
import { openJetStreamFeed } from '../policy/events/jetstream-feed.js';
import { FEED_TEST_KEY, testEvent } from './harness/change-feed-contract.js';
import { signChangeEvent } from '../policy/events/change-event.js';
import { DEV_SIGNING_KEY } from '../policy/subgraph-signature.js';
import { freePort, startTestGateway, startTestMesh, testGatewayConfig, tokenFor } from './harness/mesh.js';
import { nextsOf, subscribeSse } from './harness/subscribers.js';

const store = await mkdtemp(join(tmpdir(), 'nats-outage-'));
const port = await freePort();
const servers = `nats://127.0.0.1:${port}`;
let server: ChildProcess | undefined;

async function startNats(): Promise<void> {
  server = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', store], { stdio: 'ignore' });
  for (let i = 0; i < 100; i += 1) {
    const up = await connect({ servers, timeout: 500, reconnect: false }).then(
      async (probe) => (await probe.close(), true),
      () => false,
    );
    if (up) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('the test NATS server did not start');
}

async function stopNats(): Promise<void> {
  const stopping = server!;
  const exited = new Promise((resolve) => stopping.once('exit', resolve));
  stopping.kill('SIGKILL');
  await exited;
}

afterAll(async () => {
  server?.kill('SIGKILL');
  await rm(store, { recursive: true, force: true });
});

it('loses and duplicates nothing across a broker outage: publishes refused while it is down are published again, the reader resumes', async () => {
  await startNats();
  const product = 'outage.orders';
  const publisher = await openJetStreamFeed({ servers, signingKey: FEED_TEST_KEY, timeoutMs: 1_000 });
  // The publisher's short timeout is the point (a publish refused fast while the server is down);
  // the reader's requests get the default, as a reader under load needs.
  const reader = await openJetStreamFeed({ servers, signingKey: FEED_TEST_KEY });
  await publisher.declare(product);
  const seen: StoredChange[] = [];
  const controller = new AbortController();
  const reading = (async () => {
    for await (const change of reader.follow(product, { after: 0, signal: controller.signal })) {
      seen.push(change);
      if (seen.length === 12) controller.abort();
    }
  })();
  for (let n = 1; n <= 4; n += 1) await publisher.publish(testEvent(product, n));

  await stopNats();
  // Down: each publish is refused, coded, and kept by its publisher (as an outbox keeps it).
  const pending = [5, 6, 7, 8].map((n) => testEvent(product, n));
  for (const event of pending) await expect(publisher.publish(event)).rejects.toMatchObject({ code: 'EVENTS_UNAVAILABLE' });

  await startNats();
  // Back: the kept events published again, one of them twice (a retry whose first answer was lost), then new ones.
  for (const event of [...pending, pending[1]!]) {
    for (let attempt = 0; ; attempt += 1) {
      const done = await publisher.publish(event).then(() => true, () => false);
      if (done) break;
      if (attempt > 50) throw new Error(`${event.id} could not be published after the restart`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  for (let n = 9; n <= 12; n += 1) await publisher.publish(testEvent(product, n));
  const timer = setTimeout(() => controller.abort(), 20_000);
  await reading;
  clearTimeout(timer);
  expect(seen.map(({ position, event }) => [position, event.data.keys[0]])).toEqual(Array.from({ length: 12 }, (_, i) => [i + 1, `k${i + 1}`]));
  expect(await reader.bounds(product)).toEqual({ first: 1, last: 12 });
  await publisher.close();
  await reader.close();
}, 60_000);

it('keeps a subscription through the gateway across the outage: every event delivered once, in order, and a reconnect with Last-Event-ID gets what it missed', async () => {
  if (!server || server.exitCode !== null) await startNats();
  const mesh = await startTestMesh();
  const gateway = await startTestGateway(testGatewayConfig({ dataDir: mesh.dataDir, name: 'outage', supergraph: { kind: 'registry', registryUrl: mesh.registryUrl, pollMs: 100 }, overrides: { changeFeed: { dataDir: mesh.dataDir, natsUrl: servers } } }));
  const publisher = await openJetStreamFeed({ servers, signingKey: DEV_SIGNING_KEY, timeoutMs: 1_000 });
  const steward = `Bearer ${tokenFor()}`;
  try {
    await gateway.ready;
    await publisher.declare('finance.orders');
    const keys = ((await mesh.query<any>('{ orderList(limit: 6) { id } }')).body.data.orderList as { id: string }[]).map((o) => o.id);
    const subscriber = await subscribeSse(gateway.url, { query: 'subscription { orderChanged { key } }', authorization: steward });
    expect(subscriber.status).toBe(200);
    const keysSeen = () => nextsOf(subscriber).map((r) => r.data.orderChanged.key as string);
    const publishUntilStored = async (n: number) => {
      const event = signChangeEvent({ id: `finance.orders@outage-${n}`, key: DEV_SIGNING_KEY, change: { product: 'finance.orders', operation: 'upsert', keys: [keys[n]!], version: new Date().toISOString(), changedFields: ['status'] } });
      for (let attempt = 0; !(await publisher.publish(event).then(() => true, () => false)); attempt += 1) {
        if (attempt > 50) throw new Error(`event ${n} could not be published`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    };
    for (const n of [0, 1]) await publishUntilStored(n);
    await expect.poll(keysSeen, { timeout: 15_000 }).toEqual(keys.slice(0, 2));
    const before = subscriber.events.filter((e) => e.event === 'next').at(-1)!.id!;

    await stopNats();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await startNats();
    for (const n of [2, 3]) await publishUntilStored(n);
    // The gateway's reader went on by itself: the open subscription gets the rest, once, in order.
    await expect.poll(keysSeen, { timeout: 30_000 }).toEqual(keys.slice(0, 4));
    // A subscriber that dropped after the second event reconnects with its last id: the two it missed.
    const resumed = await subscribeSse(gateway.url, { query: 'subscription { orderChanged { key } }', authorization: steward, lastEventId: before });
    await expect.poll(() => nextsOf(resumed).map((r) => r.data.orderChanged.key), { timeout: 15_000 }).toEqual(keys.slice(2, 4));
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(keysSeen()).toEqual(keys.slice(0, 4));
    subscriber.close();
    resumed.close();
  } finally {
    await publisher.close();
    await gateway.stop();
    await mesh.stop();
  }
}, 120_000);
