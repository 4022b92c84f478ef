/**
 * Domains consume each other's changes (issue 27, part 3), on a real mesh: three subgraphs on DuckDB
 * files, the gateway, the embedded change feed, real signed tokens. The customers domain keeps each
 * customer's lifetime value from the finance domain's orders: it follows finance.orders' change feed,
 * reads the changed orders through the gateway under its own token, and merges them with its
 * pipeline's increment machinery; the lifetime values are then a column, not a sum per request.
 */
import { appendFile, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import jwt from 'jsonwebtoken';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openJetStreamFeed } from '../policy/events/jetstream-feed.js';
import { startChangePublisher } from '../subgraphs/kit/events/publisher.js';
import { openChangeFeed } from '../policy/events/feed-from-env.js';
import { signChangeEvent } from '../policy/events/change-event.js';
import { DEV_SIGNING_KEY } from '../policy/subgraph-signature.js';
import { customers } from '../subgraphs/customers/index.js';
import { followInputs, gatewayInputReader, inputAccessFromEnv, inputPositionIn, inputsOf, writeInputIncrement } from '../subgraphs/kit/events/inputs.js';
import { compareIncrementNames, INCREMENTS_FOLDER } from '../subgraphs/kit/warehouse/increments.js';
import { deliverIncrement } from '../subgraphs/synthetic-sources/live.js';
import { finance } from '../subgraphs/finance/index.js';
import { loadFactsAt } from '../subgraphs/kit/freshness.js';
import { profilesAt } from '../subgraphs/kit/profiles.js';
import { ensureWarehouse, qualityHistoryAt } from '../subgraphs/kit/warehouse/build.js';
import { openWarehouse } from '../subgraphs/kit/warehouse/open.js';
import { deleteStreams, SHARED_NATS, testSubjectPrefix } from './harness/nats.js';
import { postGraphQL, startTestGateway, startTestMesh, testGatewayConfig, tokenFor, type TestMesh } from './harness/mesh.js';

let mesh: TestMesh;
const quiet = pino({ level: 'silent' });
const customersRaw = () => join(mesh.dataDir, 'raw', 'customers');

/** Each customer's lifetime value as finance's orders say it now (revenue orders' totals), and as the customers domain serves it. */
async function valuesBothWays(): Promise<{ finance: Map<string, number>; served: Map<string, number | null> }> {
  const sums = await mesh.sql('finance', "select customer_id, sum(total_amount) as value from orders where status in ('PAID', 'SHIPPED', 'DELIVERED') group by customer_id");
  const served = await mesh.sql('customers', 'select id, lifetime_value from customers');
  return {
    finance: new Map(sums.map((row) => [String(row.customer_id), Math.round(Number(row.value) * 100) / 100])),
    served: new Map(served.map((row) => [String(row.id), row.lifetime_value === null ? null : Number(row.lifetime_value)])),
  };
}

function expectSameValues({ finance: sums, served }: Awaited<ReturnType<typeof valuesBothWays>>): void {
  const differing = [...served].filter(([id, value]) => Math.abs((value ?? Number.NaN) - (sums.get(id) ?? 0)) > 0.005);
  expect(differing).toEqual([]);
}

async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

beforeAll(async () => {
  mesh = await startTestMesh();
}, 120_000);

afterAll(async () => {
  await mesh?.stop();
});

describe("the customers domain keeps lifetime values from finance's orders", () => {
  it('reads the orders whole at first (a snapshot through the gateway): every lifetime value is what finance sums', async () => {
    expectSameValues(await valuesBothWays());
    const kept = await mesh.sql('customers', 'select count(*) as n from customer_orders');
    const orders = await mesh.sql('finance', 'select count(*) as n from orders');
    expect(Number(kept[0]!.n)).toBe(Number(orders[0]!.n));
    // The snapshot's increment names the input and the feed position it holds values up to.
    expect(await inputPositionIn(customersRaw(), 'finance.orders')).toBe(0);
  });

  it("follows finance's loads: new, paid, shipped and withdrawn orders change exactly the lifetime values they should, and customers' change events say so", async () => {
    const before = await valuesBothWays();
    await mesh.publish('customers'); // what the first read changed (every lifetime value) is not this test's
    const customerFeed = await openChangeFeed({ dataDir: mesh.dataDir, natsUrl: null }, DEV_SIGNING_KEY);
    const customersBefore = (await customerFeed.bounds('customers.customers')).last;
    await deliverIncrement({ rawDir: join(mesh.dataDir, 'raw'), orders: 30, changes: 0 });
    await mesh.load('finance');
    await mesh.publish('finance');
    const after = await until(valuesBothWays, (values) => [...values.served].every(([id, value]) => Math.abs((value ?? Number.NaN) - (values.finance.get(id) ?? 0)) <= 0.005));
    expectSameValues(after);
    const changed = [...after.served].filter(([id, value]) => value !== before.served.get(id)).map(([id]) => id);
    expect(changed.length).toBeGreaterThan(0);
    // Through the gateway, as a steward reads them.
    const [one] = changed;
    const { body } = await mesh.query<any>('query ($id: ID!) { customer(id: $id) { id lifetimeValue } }', { id: one });
    expect(body.data.customer.lifetimeValue).toBeCloseTo(after.finance.get(one!) ?? 0, 2);
    // The customers domain's own events say which customers' lifetime value changed: those, and no other.
    await mesh.publish('customers');
    const announced = new Set<string>();
    const stop = new AbortController();
    const seen = until(async () => announced.size, (size) => size >= changed.length, 15_000).finally(() => stop.abort());
    for await (const { event } of customerFeed.follow('customers.customers', { after: customersBefore, signal: stop.signal })) {
      if (event.data.changedFields.includes('lifetimeValue')) for (const key of event.data.keys) announced.add(key);
      if (announced.size >= changed.length) stop.abort();
    }
    await seen;
    expect([...announced].sort()).toEqual([...changed].sort());
    await customerFeed.close();
  }, 60_000);

  it('is in the catalog: finance.orders is an input port of customers.customers and its lineage both ways, and its freshness says how far it is read', async () => {
    const { body } = await mesh.query<any>(`{
      customers: dataProduct(id: "customers.customers") { inputPorts { name contractId } freshness { status inputs { product position behind error status } } lineage { upstream { kind name fields description } } }
      orders: dataProduct(id: "finance.orders") { lineage { downstream { kind name fields } } }
    }`);
    expect(body.errors).toBeUndefined();
    expect(body.data.customers.inputPorts).toContainEqual({ name: 'finance.orders', contractId: 'finance.orders.contract' });
    expect(body.data.customers.lineage.upstream).toContainEqual({ kind: 'PRODUCT', name: 'finance.orders', fields: ['Customer.lifetimeValue'], description: expect.stringContaining('change feed') });
    expect(body.data.orders.lineage.downstream).toContainEqual({ kind: 'PRODUCT', name: 'customers.customers', fields: ['Customer.lifetimeValue'] });
    const [input] = body.data.customers.freshness.inputs;
    expect(input).toMatchObject({ product: 'finance.orders', behind: 0, error: null, status: 'FRESH' });
    expect(body.data.customers.freshness.status).toBe('FRESH');
    expect(input.position).toBeGreaterThan(0);
  });

  it("is as fresh as its input: finance's orders loaded longer ago than their SLA make the customers stale too, and say why", async () => {
    // Finance's orders loaded again, as three days ago (the same data: no event).
    const url = `duckdb:${join(mesh.dataDir, 'warehouses', 'finance.duckdb')}`;
    const threeDaysAgo = new Date(Date.now() - 3 * 86_400_000);
    const build = await ensureWarehouse({ domain: finance, url, rawDir: join(mesh.dataDir, 'raw', 'finance'), sourceFingerprint: mesh.manifest.fingerprint, sourceExtractedAt: mesh.manifest.extractedAt, force: true, now: () => threeDaysAgo });
    expect(build.built).toBe(true);
    const next = openWarehouse(url);
    await mesh.subgraphs.finance!.swap({ warehouse: next, qualityHistory: await qualityHistoryAt(url), loadFacts: await loadFactsAt(url, finance), profiles: await profilesAt(url) });
    mesh.warehouses.finance = next;
    // A gateway of its own: the first one keeps the catalog's entries for a while.
    const other = await startTestGateway(testGatewayConfig({ dataDir: mesh.dataDir, name: 'stale', supergraph: { kind: 'registry', registryUrl: mesh.registryUrl, pollMs: 100 } }));
    try {
      await other.ready;
      const { body } = await postGraphQL<any>(other.url, '{ customers: dataProduct(id: "customers.customers") { freshness { status inputs { product status error } } } orders: dataProduct(id: "finance.orders") { freshness { status } } }', undefined, { authorization: `Bearer ${tokenFor()}` });
      expect(body.errors).toBeUndefined();
      expect(body.data.orders.freshness.status).toBe('STALE');
      expect(body.data.customers.freshness).toEqual({ status: 'STALE', inputs: [{ product: 'finance.orders', status: 'STALE', error: null }] });
    } finally {
      await other.stop();
    }
  });

  it('a restarted follower resumes where its increments say: no snapshot again, nothing written for what it already read', async () => {
    const folder = join(customersRaw(), INCREMENTS_FOLDER);
    const written = (await readdir(folder)).length;
    let snapshots = 0;
    const follower = followInputs({
      domain: customers,
      rawDir: customersRaw(),
      openFeed: () => openChangeFeed({ dataDir: mesh.dataDir, natsUrl: null }, DEV_SIGNING_KEY),
      reader: {
        all: async function* () {
          snapshots += 1;
          yield [];
        },
        byKeys: async () => [],
      },
      load: async () => undefined,
      servingKeys: async () => [],
      log: quiet,
    });
    await follower.caughtUp(20_000);
    await follower.stop();
    expect(snapshots).toBe(0);
    expect((await readdir(folder)).length).toBe(written);
  });
});

describe('on NATS JetStream (streams of the test\'s own on the machine\'s server)', () => {
  const prefix = testSubjectPrefix();
  const jetstream = () => openJetStreamFeed({ servers: SHARED_NATS, prefix, signingKey: DEV_SIGNING_KEY });
  afterAll(() => deleteStreams(prefix));

  it("follows finance's events there as on the embedded feed: each read through the gateway, written with its stream position, merged", async () => {
    // Finance publishes its outbox to the stream (the whole history the test mesh's outbox keeps), then a change.
    const publishFinance = async () => {
      const publisher = startChangePublisher({ openFeed: jetstream, domain: finance, url: `duckdb:${join(mesh.dataDir, 'warehouses', 'finance.duckdb')}`, signingKey: DEV_SIGNING_KEY, log: quiet });
      await publisher.publish();
      await publisher.stop();
    };
    await publishFinance();
    const rawDir = join(mesh.dataDir, 'raw', 'jetstream');
    const merges: number[] = [];
    const follower = followInputs({
      domain: customers,
      rawDir,
      openFeed: jetstream,
      reader: gatewayInputReader({ url: mesh.gateway.url, token: () => tokenFor({ subject: 'customers-inputs', roles: ['steward'], regions: [] }) }),
      load: async () => void merges.push(Date.now()),
      servingKeys: async () => [],
      log: quiet,
    });
    try {
      await follower.caughtUp(30_000);
      const snapshot = await inputPositionIn(rawDir, 'finance.orders');
      expect(snapshot).toBeGreaterThan(0);
      // A delivery merged by finance, published to the stream: read from the stream, by key, through the gateway.
      await deliverIncrement({ rawDir: join(mesh.dataDir, 'raw'), orders: 10, changes: 0 });
      await mesh.load('finance');
      await publishFinance();
      await follower.caughtUp(30_000);
      const feed = await jetstream();
      const { last } = await feed.bounds('finance.orders');
      await feed.close();
      expect(last).toBeGreaterThan(snapshot!);
      expect(await inputPositionIn(rawDir, 'finance.orders')).toBe(last);
      expect(follower.status()[0]).toMatchObject({ position: last, last, merged: true, error: null });
      // What the last event's increment holds is what finance serves for those orders now.
      const folder = (await readdir(join(rawDir, INCREMENTS_FOLDER))).sort(compareIncrementNames).at(-1)!;
      const rows = (await readFile(join(rawDir, INCREMENTS_FOLDER, folder, 'customer_orders.csv'), 'utf8')).trim().split('\n').slice(1).map((line) => line.split(','));
      expect(rows.length).toBeGreaterThan(0);
      for (const [id, customer, status, total, deleted] of rows) {
        const [order] = await mesh.sql('finance', 'select customer_id, status, total_amount from orders where id = ?', [id]);
        if (deleted === 'true') expect(order).toBeUndefined();
        else expect([customer, status, Number(total)]).toEqual([order!.customer_id, order!.status, Number(order!.total_amount)]);
      }
      expect(merges.length).toBeGreaterThanOrEqual(2);
    } finally {
      await follower.stop();
    }
  }, 90_000);
});

describe('a feed that no longer holds where the input is', () => {
  it('is read whole again (a snapshot), then followed from where the feed is: a feed started anew, or one whose retention passed', async () => {
    const rawDir = join(mesh.dataDir, 'raw', 'reset');
    // Where an earlier feed was: beyond anything this one holds.
    await writeInputIncrement({ rawDir, domain: customers, input: inputsOf(customers)[0]!.input, position: 999_999, rows: [], gone: () => [] });
    let snapshots = 0;
    const follower = followInputs({
      domain: customers,
      rawDir,
      openFeed: () => openChangeFeed({ dataDir: mesh.dataDir, natsUrl: null }, DEV_SIGNING_KEY),
      reader: {
        all: async function* () {
          snapshots += 1;
          yield [{ id: 'O1', customer: { id: 'C1' }, status: 'PAID', total: 1 }];
        },
        byKeys: async () => [],
      },
      load: async () => undefined,
      servingKeys: async () => ['O1', 'O-gone'],
      log: quiet,
    });
    try {
      const feed = await openChangeFeed({ dataDir: mesh.dataDir, natsUrl: null }, DEV_SIGNING_KEY);
      const { last } = await feed.bounds('finance.orders');
      await feed.close();
      const status = await until(async () => follower.status()[0]!, (input) => input.position === last && input.merged, 10_000);
      expect(status).toMatchObject({ position: last, merged: true, error: null });
      expect(snapshots).toBe(1);
      expect(await inputPositionIn(rawDir, 'finance.orders')).toBe(last);
      // The snapshot removes what the input no longer has.
      const folder = (await readdir(join(rawDir, INCREMENTS_FOLDER))).sort().at(-1)!;
      expect(await readFile(join(rawDir, INCREMENTS_FOLDER, folder, 'customer_orders.csv'), 'utf8')).toBe('order_id,customer_id,status,total,_deleted\nO1,C1,PAID,1,false\nO-gone,,,,true\n');
    } finally {
      await follower.stop();
    }
  });
});

describe('misuse', () => {
  it('an event forged on finance.orders (unsigned, or signed with another key) is never read: no read, no increment', async () => {
    const feed = await openChangeFeed({ dataDir: mesh.dataDir, natsUrl: null }, DEV_SIGNING_KEY);
    const position = await inputPositionIn(customersRaw(), 'finance.orders');
    const { last } = await feed.bounds('finance.orders');
    // Someone with write access to the feed but not the mesh's key: a forged signature, and none.
    const forged = signChangeEvent({ id: `finance.orders@forged-${last}`, key: 'an-attacker-key-that-is-not-the-mesh-signing-key', change: { product: 'finance.orders', operation: 'delete', keys: ['O00000001'], changedFields: [], version: new Date().toISOString() } });
    const unsigned = { ...forged, id: `finance.orders@unsigned-${last}`, meshsignature: undefined };
    const segment = (await readdir(join(mesh.dataDir, 'events', 'finance.orders'))).filter((name) => name.endsWith('.log')).sort().at(-1)!;
    await appendFile(join(mesh.dataDir, 'events', 'finance.orders', segment), `${last + 1}\t${JSON.stringify(forged)}\n${last + 2}\t${JSON.stringify(unsigned)}\n`);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(await inputPositionIn(customersRaw(), 'finance.orders')).toBe(position);
    const kept = await mesh.sql('customers', "select count(*) as n from customer_orders where order_id = 'O00000001'");
    const orders = await mesh.sql('finance', "select count(*) as n from orders where id = 'O00000001'");
    expect(Number(kept[0]!.n)).toBe(Number(orders[0]!.n));
    await feed.close();
  });

  it('a reader the gateway refuses writes nothing: its reads fail with the codes the gateway gave', async () => {
    const rawDir = join(mesh.dataDir, 'raw', 'elsewhere');
    const follower = followInputs({
      domain: customers,
      rawDir,
      openFeed: () => openChangeFeed({ dataDir: mesh.dataDir, natsUrl: null }, DEV_SIGNING_KEY),
      // A steward's claims under a key the mesh does not trust.
      reader: gatewayInputReader({ url: mesh.gateway.url, token: () => jwt.sign({ roles: ['steward'] }, 'not-the-issuer-secret', { algorithm: 'HS256', subject: 'intruder', expiresIn: 600 }) }),
      load: async () => undefined,
      servingKeys: async () => [],
      log: quiet,
      retryMs: 60_000,
    });
    const status = await until(async () => follower.status()[0]!, (input) => input.error !== null, 10_000);
    await follower.stop();
    expect(status.position).toBeNull();
    expect(status.error?.codes).toEqual(['UNAUTHENTICATED']);
    expect(await inputPositionIn(rawDir, 'finance.orders')).toBeNull();
  });

  it("/health/inputs says how far each input is, never a value, and takes nothing but GET", async () => {
    const url = new URL('/health/inputs', mesh.subgraphs.customers!.url);
    const answer = await fetch(url);
    expect(answer.status).toBe(200);
    const body = (await answer.json()) as { status: string; inputs: Record<string, unknown>[] };
    expect(body.status).toBe('ready');
    expect(body.inputs.map((input) => Object.keys(input).sort())).toEqual([['error', 'feeds', 'merged', 'position', 'product']]);
    expect(body.inputs[0]).toMatchObject({ feeds: 'customers.customers', product: 'finance.orders', merged: true, error: null });
    for (const method of ['POST', 'PUT', 'DELETE']) expect((await fetch(url, { method, headers: { 'content-type': 'application/json' }, body: method === 'DELETE' ? null : '{"position":0}' })).status, method).toBe(404);
    // A domain with no inputs has nothing to read: it is ready at once.
    expect(await (await fetch(new URL('/health/inputs', mesh.subgraphs.products!.url))).json()).toEqual({ status: 'ready', service: 'products', inputs: [] });
  });

  it('production refuses to read inputs without a token of its own, and GATEWAY_URL must be http(s)', () => {
    expect(() => inputAccessFromEnv('customers', { NODE_ENV: 'production' })).toThrow(/MESH_TOKEN_FILE/);
    expect(() => inputAccessFromEnv('customers', { GATEWAY_URL: 'file:///etc/passwd' })).toThrow(/GATEWAY_URL/);
  });
});
