/**
 * The change publisher on a warehouse's outbox and the embedded feed: it publishes what the feed
 * lacks, in order, resumes after the feed's last event, and while the feed cannot be opened or
 * written it tries again, losing nothing.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import type { ChangeFeed } from '../../../policy/events/change-feed.js';
import { openFileFeed } from '../../../policy/events/file-feed.js';
import { FEED_TEST_KEY, readFeed } from '../../../test/harness/change-feed-contract.js';
import { finance } from '../../finance/index.js';
import type { Domain } from '../domain.js';
import { openWarehouse } from '../warehouse/open.js';
import { createOutbox, writeOutbox } from './outbox.js';
import { eventRetentionsOf, startChangePublisher } from './publisher.js';
import { sql, type Kysely } from 'kysely';

const dir = await mkdtemp(join(tmpdir(), 'publisher-'));
afterAll(() => rm(dir, { recursive: true, force: true }));
const log = pino({ level: 'silent' });

/** A warehouse whose outbox holds the new orders `ids` (as a merge would have written them). */
async function warehouseWithOrders(name: string, batches: readonly (readonly string[])[]): Promise<string> {
  const url = `duckdb:${join(dir, `${name}.duckdb`)}`;
  const warehouse = openWarehouse(url, { readOnly: false });
  const db = warehouse.db as Kysely<any>;
  await sql`CREATE TABLE orders (id VARCHAR, customer_id VARCHAR, ordered_at TIMESTAMP, status VARCHAR, channel VARCHAR, region VARCHAR, total_amount DECIMAL(14, 2))`.execute(db);
  await createOutbox(db);
  for (const [i, ids] of batches.entries()) {
    await sql`CREATE TABLE _changed_orders AS SELECT id FROM orders WHERE false`.execute(db);
    for (const id of ids) {
      await sql`INSERT INTO orders VALUES (${id}, 'C1', '2026-12-07 09:00:00', 'PAID', 'WEB', 'EMEA', 10)`.execute(db);
      await sql`INSERT INTO _changed_orders VALUES (${id})`.execute(db);
    }
    await sql`CREATE TABLE _before_orders AS SELECT *, id AS "__key", false AS "__present" FROM orders WHERE false`.execute(db);
    await writeOutbox(db, finance, [{ table: 'orders', before: sql`_before_orders`, changed: sql`select id from _changed_orders` }], { version: `2026-12-07T0${i}:00:00.000Z`, now: new Date(`2026-12-07T0${i}:00:00Z`) });
    await sql`DROP TABLE _changed_orders`.execute(db);
  }
  await warehouse.close();
  return url;
}

describe('the change publisher', () => {
  it('publishes the outbox the feed lacks, in order, and resumes after the feed\'s last event', async () => {
    const url = await warehouseWithOrders('resume', [['O1', 'O2'], ['O3']]);
    const feed = openFileFeed({ dir: join(dir, 'events-resume'), signingKey: FEED_TEST_KEY, pollMs: 20 });
    const published: number[] = [];
    const publisher = startChangePublisher({ openFeed: async () => feed, domain: finance, url, signingKey: FEED_TEST_KEY, log, onPublished: (entry) => published.push(entry.seq) });
    await publisher.publish();
    expect(published).toEqual([1, 2]);
    expect(publisher.publishedThrough()).toBe(2);
    const events = await readFeed(feed, 'finance.orders', 0, 2);
    expect(events.map(({ event }) => [event.id, event.data.keys, event.data.changedFields.length])).toEqual([
      ['finance.orders@1', ['O1', 'O2'], 6],
      ['finance.orders@2', ['O3'], 6],
    ]);
    // Another process's publisher (a restart): nothing is published again.
    const again: number[] = [];
    const restarted = startChangePublisher({ openFeed: async () => openFileFeed({ dir: join(dir, 'events-resume'), signingKey: FEED_TEST_KEY }), domain: finance, url, signingKey: FEED_TEST_KEY, log, onPublished: (entry) => again.push(entry.seq) });
    await restarted.publish();
    expect(again).toEqual([]);
    expect(restarted.publishedThrough()).toBe(2);
    await restarted.stop();
    await publisher.stop();
  });

  it('tries again while the feed cannot be opened or written, and then publishes every entry once', async () => {
    const url = await warehouseWithOrders('retry', [['O1'], ['O2'], ['O3']]);
    const real = openFileFeed({ dir: join(dir, 'events-retry'), signingKey: FEED_TEST_KEY, pollMs: 20 });
    let opens = 0;
    let writes = 0;
    // Down at first, then up but failing its second write, then well.
    const flaky: ChangeFeed = { ...real, publish: async (event) => (++writes === 2 ? Promise.reject(Object.assign(new Error('down'), { code: 'EVENTS_UNAVAILABLE' })) : real.publish(event)) };
    const publisher = startChangePublisher({
      openFeed: async () => (++opens < 3 ? Promise.reject(new Error('NATS does not answer')) : flaky),
      domain: finance,
      url,
      signingKey: FEED_TEST_KEY,
      log,
      retryMs: 10,
    });
    await publisher.publish();
    await expect.poll(() => publisher.publishedThrough(), { timeout: 5_000, interval: 20 }).toBe(3);
    expect(opens).toBe(3);
    expect((await readFeed(real, 'finance.orders', 0, 3)).map(({ position, event }) => [position, event.id])).toEqual([
      [1, 'finance.orders@1'],
      [2, 'finance.orders@2'],
      [3, 'finance.orders@3'],
    ]);
    await publisher.stop();
  });

  it('declares each product\'s retention as it says it, refusing one out of bounds', () => {
    const retentions = eventRetentionsOf(finance);
    expect(retentions.get('finance.orders')).toEqual({ maxAgeMs: 14 * 86_400_000 });
    expect(retentions.get('finance.invoices')).toEqual({ maxAgeMs: 7 * 86_400_000 });
    const withRetention = (retention: unknown) => ({ ...finance, dataProducts: [{ ...finance.dataProducts[0]!, spec: { ...finance.dataProducts[0]!.spec, events: { retention } } }] }) as Domain<any, any>;
    for (const bad of [{ value: 30, unit: 'm' }, { value: 0.5, unit: 'h' }, { value: 53, unit: 'w' }, { value: 'x', unit: 'd' }]) {
      expect(() => eventRetentionsOf(withRetention(bad))).toThrow(/events\.retention is from 1 hour to 365 days/);
    }
  });
});
