/**
 * The tests every change feed must pass, whatever carries it: NATS JetStream and the embedded
 * log per product run the same suite (policy/events/*.test.ts).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { signChangeEvent, type ChangeEvent, type ProductChange } from '../../policy/events/change-event.js';
import type { ChangeFeed, StoredChange } from '../../policy/events/change-feed.js';

export const FEED_TEST_KEY = 'change-feed-contract-test-signing-key-0123456789';

export interface FeedUnderTest {
  /** A feed on the test's own streams or folder; another call is another process's feed on the same ones. */
  open(options?: { signingKey?: string; previousSigningKey?: string }): Promise<ChangeFeed>;
  /**
   * Writes a message to a product's stream as anyone with access to it could, bypassing the feed
   * (no signature check), with `id` as the message's deduplication id where the carrier has one.
   */
  injectRaw(product: string, text: string, id?: string): Promise<void>;
  /** A retention short enough to expire in a test, and how long to wait for it. */
  readonly shortRetention: { maxAgeMs: number; waitMs: number };
  cleanup(): Promise<void>;
}

/** A change of `product` with keys `k<n>…`, its id derived from `n` (the same n: the same event). */
export function testEvent(product: string, n: number, key = FEED_TEST_KEY, change: Partial<ProductChange> = {}): ChangeEvent {
  return signChangeEvent({
    id: `${product}:v1:${n}`,
    key,
    time: new Date(Date.UTC(2026, 11, 7, 0, 0, n)),
    change: { product, operation: 'upsert', keys: [`k${n}`], version: '2026-12-07T00:00:00.000Z', changedFields: ['status'], ...change },
  });
}

/** Reads a feed until `count` events came or `ms` passed, then stops following. */
export async function readFeed(feed: ChangeFeed, product: string, after: number, count: number, ms = 10_000, onIgnored?: (position: number) => void): Promise<StoredChange[]> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), ms);
  const seen: StoredChange[] = [];
  try {
    for await (const change of feed.follow(product, { after, signal: controller.signal, ...(onIgnored ? { onIgnored } : {}) })) {
      seen.push(change);
      if (seen.length >= count) break;
    }
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  return seen;
}

export function changeFeedContract(name: string, sut: FeedUnderTest): void {
  describe(`the ${name} change feed`, () => {
    const product = () => `contract.p${randomUUID().slice(0, 8)}`;
    const feeds: ChangeFeed[] = [];
    const open = async (options?: Parameters<FeedUnderTest['open']>[0]) => {
      const feed = await sut.open(options);
      feeds.push(feed);
      return feed;
    };
    afterAll(async () => {
      for (const feed of feeds) await feed.close();
      await sut.cleanup();
    });

    it('keeps a product\'s events in order, by position, and follows from any position: then the new ones as they come', async () => {
      const feed = await open();
      const p = product();
      await feed.declare(p);
      expect(await feed.bounds(p)).toEqual({ first: 1, last: 0 });
      for (let n = 1; n <= 5; n += 1) expect(await feed.publish(testEvent(p, n))).toEqual({ position: n, duplicate: false });
      expect(await feed.bounds(p)).toEqual({ first: 1, last: 5 });
      const all = await readFeed(feed, p, 0, 5);
      expect(all.map(({ position, event }) => [position, event.data.keys[0]])).toEqual([[1, 'k1'], [2, 'k2'], [3, 'k3'], [4, 'k4'], [5, 'k5']]);
      expect(all[0]!.event).toEqual(testEvent(p, 1)); // as published: CloudEvents attributes, the change, the signature
      // From position 3, and live: another process's reader sees an event published after it started.
      const reader = await open();
      const following = readFeed(reader, p, 3, 3);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await feed.publish(testEvent(p, 6));
      expect((await following).map(({ position }) => position)).toEqual([4, 5, 6]);
    });

    it('stores a retried publish once, from this process or another, and keeps every event of concurrent publishers', async () => {
      const first = await open();
      const second = await open();
      const p = product();
      await first.declare(p);
      expect(await first.publish(testEvent(p, 1))).toEqual({ position: 1, duplicate: false });
      expect(await first.publish(testEvent(p, 1))).toEqual({ position: 1, duplicate: true });
      expect(await second.publish(testEvent(p, 1))).toEqual({ position: 1, duplicate: true });
      // Two publishers at once, each also retrying the other's events.
      const published = await Promise.all([
        ...Array.from({ length: 20 }, (_, i) => first.publish(testEvent(p, 2 + i))),
        ...Array.from({ length: 20 }, (_, i) => second.publish(testEvent(p, 2 + i))),
      ]);
      expect(published.filter(({ duplicate }) => !duplicate)).toHaveLength(20);
      const events = await readFeed(second, p, 0, 21);
      expect(events.map(({ position }) => position)).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
      expect(new Set(events.map(({ event }) => event.id)).size).toBe(21);
      expect(await first.bounds(p)).toEqual({ first: 1, last: 21 });
    });

    it('names the last event signed for a product, past what others wrote after it', async () => {
      const feed = await open();
      const p = product();
      await feed.declare(p);
      expect(await feed.lastEvent(p)).toBeNull();
      await feed.publish(testEvent(p, 1));
      await feed.publish(testEvent(p, 2));
      await sut.injectRaw(p, JSON.stringify(testEvent(p, 3, 'a-key-that-is-not-the-mesh-signing-key-at-all')));
      await sut.injectRaw(p, 'not json');
      expect(await feed.lastEvent(p)).toEqual({ position: 2, event: testEvent(p, 2) });
    });

    it('skips what is not an event signed for the product: unsigned, forged, altered, another product\'s, not JSON', async () => {
      const feed = await open();
      const p = product();
      await feed.declare(p);
      await feed.publish(testEvent(p, 1));
      const { meshsignature: _signature, ...unsigned } = testEvent(p, 2);
      await sut.injectRaw(p, JSON.stringify(unsigned));
      await sut.injectRaw(p, JSON.stringify(testEvent(p, 3, 'a-key-that-is-not-the-mesh-signing-key-at-all')));
      const altered = testEvent(p, 4);
      await sut.injectRaw(p, JSON.stringify({ ...altered, data: { ...altered.data, keys: ['someone-else'] } }));
      await sut.injectRaw(p, JSON.stringify(testEvent('contract.elsewhere', 5)));
      await sut.injectRaw(p, 'not json {');
      await feed.publish(testEvent(p, 7));
      const ignored: number[] = [];
      const events = await readFeed(feed, p, 0, 2, 10_000, (position) => ignored.push(position));
      expect(events.map(({ position, event }) => [position, event.data.keys[0]])).toEqual([[1, 'k1'], [7, 'k7']]);
      expect(ignored).toEqual([2, 3, 4, 5, 6]);
    });

    it('lets no one who can write to the stream but holds no key make a real event a duplicate', async () => {
      const feed = await open();
      const p = product();
      await feed.declare(p);
      // The ids of the events to come are guessable (product, version, batch): an outsider writes them first.
      const coming = testEvent(p, 1);
      const { meshsignature: _signature, ...unsigned } = coming;
      for (const id of [coming.id, `${coming.id}/`, `${coming.id}/${'0'.repeat(64)}`]) await sut.injectRaw(p, JSON.stringify(unsigned), id);
      await sut.injectRaw(p, JSON.stringify(testEvent(p, 1, 'a-key-that-is-not-the-mesh-signing-key-at-all')));
      expect(await feed.publish(coming)).toEqual({ position: 5, duplicate: false });
      expect(await feed.publish(coming)).toEqual({ position: 5, duplicate: true });
      expect((await readFeed(feed, p, 0, 1)).map(({ position, event }) => [position, event.id])).toEqual([[5, coming.id]]);
    });

    it('reads events signed with the previous key during a rotation, and not once it is dropped', async () => {
      const old = 'the-previous-mesh-signing-key-during-a-rotation-000';
      const p = product();
      const before = await open({ signingKey: old });
      await before.declare(p);
      await before.publish(testEvent(p, 1, old));
      const rotating = await open({ signingKey: FEED_TEST_KEY, previousSigningKey: old });
      await rotating.publish(testEvent(p, 2));
      expect((await readFeed(rotating, p, 0, 2)).map(({ position }) => position)).toEqual([1, 2]);
      const ignored: number[] = [];
      expect((await readFeed(await open(), p, 0, 1, 10_000, (position) => ignored.push(position))).map(({ position }) => position)).toEqual([2]);
      expect(ignored).toEqual([1]);
    });

    it('refuses a position it never had, and one whose next events its retention removed', async () => {
      const feed = await open();
      const p = product();
      await feed.declare(p);
      for (let n = 1; n <= 3; n += 1) await feed.publish(testEvent(p, n));
      for (const after of [-1, 1.5, 4, Number.MAX_SAFE_INTEGER + 1]) {
        await expect(readFeed(feed, p, after, 1, 500)).rejects.toMatchObject({ code: 'EVENT_POSITION_INVALID' });
      }
      // A short retention: the first events expire; the last is kept.
      const q = product();
      await feed.declare(q, { maxAgeMs: sut.shortRetention.maxAgeMs });
      for (let n = 1; n <= 3; n += 1) await feed.publish(testEvent(q, n));
      await new Promise((resolve) => setTimeout(resolve, sut.shortRetention.waitMs));
      await feed.publish(testEvent(q, 4));
      const { first, last } = await feed.bounds(q);
      expect(last).toBe(4);
      expect(first).toBeGreaterThan(1);
      await expect(readFeed(feed, q, 0, 1, 500)).rejects.toMatchObject({ code: 'EVENT_POSITION_EXPIRED' });
      expect((await readFeed(feed, q, 3, 1)).map(({ position }) => position)).toEqual([4]);
    });

    it('refuses a product name that is not <domain>.<product> wherever it takes one (it would name a subject, a stream or a folder)', async () => {
      const feed = await open();
      const signal = new AbortController().signal;
      for (const name of ['contract.>', 'contract.*', 'contract', '../contract.p', 'contract.p q', 'Contract.P', 'contract.p.q']) {
        await expect(feed.declare(name)).rejects.toMatchObject({ code: 'EVENT_INVALID' });
        await expect(feed.bounds(name)).rejects.toMatchObject({ code: 'EVENT_INVALID' });
        await expect(feed.lastEvent(name)).rejects.toMatchObject({ code: 'EVENT_INVALID' });
        await expect(feed.follow(name, { after: 0, signal })[Symbol.asyncIterator]().next()).rejects.toMatchObject({ code: 'EVENT_INVALID' });
      }
      // An event naming such a product cannot be made, so none is published.
      expect(() => testEvent('contract.>', 1)).toThrow(expect.objectContaining({ code: 'EVENT_INVALID' }));
    });

    it('ends a follow when its signal aborts, whether events are coming or not', async () => {
      const feed = await open();
      const p = product();
      await feed.declare(p);
      await feed.publish(testEvent(p, 1));
      const controller = new AbortController();
      const seen: number[] = [];
      const done = (async () => {
        for await (const { position } of feed.follow(p, { after: 0, signal: controller.signal })) seen.push(position);
      })();
      await new Promise((resolve) => setTimeout(resolve, 300));
      controller.abort();
      await expect(done).resolves.toBeUndefined();
      expect(seen).toEqual([1]);
    });
  });
}
