/**
 * The response cache's change-event follower, on the embedded feed: an event of a product it
 * follows makes the versions poll run at once; a product learnt later is followed from its newest
 * event; what is not a signed event changes nothing; a feed that cannot be opened is tried again.
 */
import { appendFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, expect, it } from 'vitest';
import { openFileFeed } from '../../policy/events/file-feed.js';
import { FEED_TEST_KEY, testEvent } from '../../test/harness/change-feed-contract.js';
import { createProductHub } from '../events/product-hub.js';
import { invalidateOnChangeEvents } from './change-events.js';

const dir = await mkdtemp(join(tmpdir(), 'cache-events-'));
afterAll(() => rm(dir, { recursive: true, force: true }));
const warnings: string[] = [];
const log = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
const open = () => openFileFeed({ dir, signingKey: FEED_TEST_KEY, pollMs: 20 });

it('polls the versions at once on a change event of a product it follows, from the events after it started', async () => {
  const publisher = open();
  for (const product of ['cache.orders', 'cache.invoices']) await publisher.declare(product);
  await publisher.publish(testEvent('cache.orders', 1)); // before the gateway looked: in the versions it polls
  // A name no feed could hold (learnt from an answer) is left to the poll, never followed.
  const products = new Set(['cache.orders', 'cache.>']);
  const changed: string[] = [];
  let opens = 0;
  // Down at first: tried again.
  const hub = createProductHub({ openFeed: async () => (++opens === 1 ? Promise.reject(new Error('NATS does not answer')) : open()), log, retryMs: 20 });
  const follower = invalidateOnChangeEvents({ hub, products: () => products, onChange: (product) => changed.push(product), log, scanMs: 20 });
  await expect.poll(() => opens, { timeout: 5_000 }).toBeGreaterThanOrEqual(2);
  expect(warnings.filter((line) => line.includes('cache.>'))).toEqual([]);
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect(changed).toEqual([]);
  await publisher.publish(testEvent('cache.orders', 2));
  await expect.poll(() => changed, { timeout: 5_000 }).toEqual(['cache.orders']);
  // Written by someone without the key: nothing.
  await appendFile(join(dir, 'cache.orders', '000000000001.log'), `3\t${JSON.stringify(testEvent('cache.orders', 3, 'a-key-that-is-not-the-mesh-signing-key-at-all'))}\n`);
  // A product learnt later (a subgraph's first answer), followed from its newest event.
  await publisher.publish(testEvent('cache.invoices', 1));
  products.add('cache.invoices');
  await new Promise((resolve) => setTimeout(resolve, 300));
  await publisher.publish(testEvent('cache.invoices', 2));
  await expect.poll(() => changed, { timeout: 5_000 }).toEqual(['cache.orders', 'cache.invoices']);
  await follower.stop();
  await hub.close();
  await publisher.publish(testEvent('cache.orders', 4));
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect(changed).toEqual(['cache.orders', 'cache.invoices']);
});
