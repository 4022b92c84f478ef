/** The embedded change feed: an append-only log per product in a folder of the test's own. */
import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { changeFeedContract, FEED_TEST_KEY, readFeed, testEvent } from '../../test/harness/change-feed-contract.js';
import { openFileFeed } from './file-feed.js';

const dir = await mkdtemp(join(tmpdir(), 'file-feed-'));
// Segments of one event, so that the retention removes events one by one.
const open = (options?: { signingKey?: string; previousSigningKey?: string }, segmentEvents = 1) =>
  openFileFeed({ dir, signingKey: options?.signingKey ?? FEED_TEST_KEY, previousSigningKey: options?.previousSigningKey, segmentEvents, pollMs: 20 });

changeFeedContract('embedded file', {
  open: async (options) => open(options),
  async injectRaw(product, text) {
    // As a process writing to the folder without the feed would: the next position, in a segment of its own.
    const { last } = await open().bounds(product);
    await appendFile(join(dir, product, `${String(last + 1).padStart(12, '0')}.log`), `${last + 1}\t${text}\n`);
  },
  shortRetention: { maxAgeMs: 500, waitMs: 800 },
  cleanup: () => rm(dir, { recursive: true, force: true }),
});

afterAll(() => rm(dir, { recursive: true, force: true }));

it('cuts a line a crash left half written, at the next publish, and never reads it', async () => {
  const feed = open(undefined, 1_000);
  const product = 'crash.orders';
  await feed.declare(product);
  await feed.publish(testEvent(product, 1));
  // The publisher died mid-write: part of an event, no newline.
  await appendFile(join(dir, product, '000000000001.log'), `2\t${JSON.stringify(testEvent(product, 2)).slice(0, 40)}`);
  const reader = open(undefined, 1_000);
  expect(await reader.bounds(product)).toEqual({ first: 1, last: 1 });
  // Its publisher, started again, publishes it once more (its outbox kept it).
  expect(await open(undefined, 1_000).publish(testEvent(product, 2))).toEqual({ position: 2, duplicate: false });
  expect((await readFeed(reader, product, 0, 2)).map(({ position, event }) => [position, event.data.keys[0]])).toEqual([[1, 'k1'], [2, 'k2']]);
  expect((await readFile(join(dir, product, '000000000001.log'), 'utf8')).split('\n').filter(Boolean)).toHaveLength(2);
});
