/**
 * A subgraph's change events end to end (issue 27, part 1), on each change feed: the embedded log
 * in DATA_DIR (no EVENTS_NATS_URL), and the machine's NATS JetStream on subjects of the test's own.
 * `npm run subgraph -- finance` merges a delivery in a pipeline run and publishes what it changed,
 * as its new version's outbox says it, signed; then the process is killed and a merge is committed
 * while nothing publishes (a process that died between the commit and the publish): started
 * again, the subgraph publishes those events, each once, after the others.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, millis } from '@nats-io/transport-node';
import { afterAll, describe, expect, it } from 'vitest';
import type { ChangeFeed, StoredChange } from '../policy/events/change-feed.js';
import { openFileFeed } from '../policy/events/file-feed.js';
import { openJetStreamFeed } from '../policy/events/jetstream-feed.js';
import { DEV_SIGNING_KEY, SIGNATURE_HEADER, signSubgraphRequest } from '../policy/subgraph-signature.js';
import { finance } from '../subgraphs/finance/index.js';
import { eventIdOf, readOutbox } from '../subgraphs/kit/events/outbox.js';
import type { PipelineRunRecord } from '../subgraphs/kit/pipelines/run-log.js';
import { ensureWarehouse } from '../subgraphs/kit/warehouse/build.js';
import { readWarehouseAt } from '../subgraphs/kit/warehouse/open.js';
import { deliverIncrement } from '../subgraphs/synthetic-sources/live.js';
import { readRawManifest } from '../subgraphs/synthetic-sources/manifest.js';
import { freePort } from './harness/mesh.js';
import { npmService, stop, type Started } from './harness/npm-start.js';
import { deleteStreams, SHARED_NATS, testSubjectPrefix } from './harness/nats.js';

const NATS = SHARED_NATS;
const prefix = testSubjectPrefix();

afterAll(() => deleteStreams(prefix));

const feeds: Record<string, { env: NodeJS.ProcessEnv; open(dataDir: string): Promise<ChangeFeed>; retentionMs(dataDir: string, product: string): Promise<number> }> = {
  embedded: {
    env: {},
    open: async (dataDir) => openFileFeed({ dir: join(dataDir, 'events'), signingKey: DEV_SIGNING_KEY, pollMs: 20 }),
    retentionMs: async (dataDir, product) => (JSON.parse(await readFile(join(dataDir, 'events', product, 'retention.json'), 'utf8')) as { maxAgeMs: number }).maxAgeMs,
  },
  jetstream: {
    env: { EVENTS_NATS_URL: NATS, EVENTS_SUBJECT_PREFIX: prefix },
    open: (_dataDir) => openJetStreamFeed({ servers: NATS, prefix, signingKey: DEV_SIGNING_KEY }),
    async retentionMs(_dataDir, product) {
      const nc = await connect({ servers: NATS });
      try {
        return millis((await (await jetstreamManager(nc)).streams.info(`${prefix}.${product}`.replaceAll('.', '_'))).config.max_age);
      } finally {
        await nc.close();
      }
    },
  },
};

/** Every event of a product the feed holds now. */
async function eventsOf(feed: ChangeFeed, product: string): Promise<StoredChange[]> {
  const { last } = await feed.bounds(product);
  const seen: StoredChange[] = [];
  if (last === 0) return seen;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 10_000);
  for await (const change of feed.follow(product, { after: 0, signal: controller.signal })) {
    seen.push(change);
    if (change.position >= last) break;
  }
  clearTimeout(timer);
  controller.abort();
  return seen;
}

describe.each(Object.keys(feeds))('on the %s feed', (name) => {
  const { env: feedEnv, open, retentionMs } = feeds[name]!;
  let dataDir: string;
  let service: Started | undefined;
  afterAll(async () => {
    await stop(service);
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('publishes what each new version changed, signed, and after a death between commit and publish, at the next start, once', async () => {
    dataDir = await mkdtemp(join(tmpdir(), `change-events-${name}-`));
    const port = await freePort();
    const env = { DATA_DIR: dataDir, SCALE: '0.02', PORT: String(port), LOG_LEVEL: 'info', ...feedEnv };
    service = await npmService('subgraph', ['finance'], env, /subgraph finance serving/);
    const url = `duckdb:${join(dataDir, 'warehouses', 'finance.duckdb')}`;
    const feed = await open(dataDir);
    const outbox = () => readWarehouseAt(url, (db) => readOutbox(db), []);
    // The first load made no event (nobody followed anything yet).
    expect(await outbox()).toEqual([]);

    // A delivery, merged by a run asked for: its events published once the version is served.
    await deliverIncrement({ rawDir: join(dataDir, 'raw'), orders: 30, now: new Date('2026-12-07T09:00:00Z') });
    const body = JSON.stringify({ action: 'run', pipeline: 'finance.orders' });
    const asked = await fetch(`http://127.0.0.1:${port}/pipelines`, { method: 'POST', headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signSubgraphRequest({ key: DEV_SIGNING_KEY, body }) }, body });
    expect(asked.status).toBe(200);
    const { runId } = (await asked.json()) as { runId: string };
    const ran = async () => (await readFile(join(dataDir, 'pipelines', 'finance.jsonl'), 'utf8').catch(() => '')).split('\n').filter(Boolean).map((line) => JSON.parse(line) as PipelineRunRecord).find((run) => run.runId === runId);
    await expect.poll(ran, { timeout: 60_000, interval: 500 }).toMatchObject({ outcome: 'succeeded' });
    const first = await outbox();
    expect(first.length).toBeGreaterThan(0);
    const published = async () => [...(await eventsOf(feed, 'finance.orders')), ...(await eventsOf(feed, 'finance.invoices'))].map(({ event }) => event);
    const asEvents = (entries: typeof first) => entries.map((entry) => expect.objectContaining({ id: eventIdOf(entry), subject: entry.change.product, source: 'urn:mesh:domain:finance', time: entry.at, data: entry.change }));
    await expect.poll(published, { timeout: 30_000, interval: 200 }).toEqual(expect.arrayContaining(asEvents(first)));
    expect(await published()).toHaveLength(first.length);
    // Each product's stream keeps its events as long as it declares (finance.orders: 14 days; the others the default 7).
    expect(await retentionMs(dataDir, 'finance.orders')).toBe(14 * 86_400_000);
    expect(await retentionMs(dataDir, 'finance.invoices')).toBe(7 * 86_400_000);
    // New orders: every field; keys only, never a value.
    const newOrders = first.find(({ change }) => change.product === 'finance.orders' && change.changedFields.length === 6)!;
    expect(newOrders.change).toMatchObject({ operation: 'upsert', changedFields: ['id', 'customer', 'orderedAt', 'status', 'channel', 'total'] });
    expect(Object.keys(newOrders.change).sort()).toEqual(['changedFields', 'keys', 'operation', 'product', 'version']);

    // Killed; a delivery merged and committed while nothing publishes (as if the process died right after its commit).
    process.kill(-service.child.pid!, 'SIGKILL');
    service = undefined;
    await deliverIncrement({ rawDir: join(dataDir, 'raw'), orders: 30, now: new Date('2026-12-07T10:00:00Z') });
    const manifest = (await readRawManifest(join(dataDir, 'raw')))!;
    const merged = await ensureWarehouse({ domain: finance, url, rawDir: join(dataDir, 'raw', 'finance'), sourceFingerprint: manifest.fingerprint, sourceExtractedAt: manifest.extractedAt });
    expect(merged.incremental?.increments).toHaveLength(1);
    const pending = (await outbox()).filter((entry) => entry.seq > first.at(-1)!.seq);
    expect(pending.length).toBeGreaterThan(0);
    expect(await published()).toHaveLength(first.length);

    // Started again: it publishes them, after the others, each once.
    service = await npmService('subgraph', ['finance'], env, /subgraph finance serving/);
    await expect.poll(async () => (await published()).length, { timeout: 30_000, interval: 200 }).toBe(first.length + pending.length);
    const all = await published();
    expect(all).toEqual(expect.arrayContaining(asEvents([...first, ...pending])));
    expect(new Set(all.map(({ id }) => id)).size).toBe(all.length);
    await feed.close();
  }, 240_000);
});
