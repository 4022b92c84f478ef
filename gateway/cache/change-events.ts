/**
 * The response cache invalidated by the data products' change events (issue 27): the gateway
 * follows the change feed of every product it has learnt of (from its newest event on) and, at
 * each event, asks the subgraphs for their serving versions at once, so that an entry that read the
 * product stops being served as soon as the new version is, not at the next poll. The poll every
 * `RESPONSE_CACHE_VERSIONS_POLL_MS` stays, as the fallback: while the feed is down, or for a
 * subgraph that publishes no events, entries are invalidated as before.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { PRODUCT_ID } from '../../policy/events/change-event.js';
import { ChangeFeedError, type ChangeFeed } from '../../policy/events/change-feed.js';

export interface ChangeEventInvalidationOptions {
  /** Opens the change feed (tried again while it fails). */
  readonly openFeed: () => Promise<ChangeFeed>;
  /** The products to follow (`<domain>.<product>`): looked at again every `scanMs`, a new one followed from its newest event. */
  readonly products: () => Iterable<string>;
  /** Told of each product's change event: the caller polls the serving versions. */
  readonly onChange: (product: string) => void;
  readonly log: Logger;
  /** How often the product list is looked at (default 1 s). */
  readonly scanMs?: number;
  /** The wait before following again after the feed failed (default 2 s). */
  readonly retryMs?: number;
}

export function invalidateOnChangeEvents(options: ChangeEventInvalidationOptions): { stop(): Promise<void> } {
  const controller = new AbortController();
  const { signal } = controller;
  const followed = new Map<string, Promise<void>>();
  let feed: Promise<ChangeFeed> | null = null;
  const feedOf = () => (feed ??= options.openFeed().catch((error: unknown) => {
    feed = null; // opened again at the next try
    throw error;
  }));

  async function follow(product: string): Promise<void> {
    let after: number | null = null;
    let failing = false;
    while (!signal.aborted) {
      try {
        const opened = await feedOf();
        // From the newest event on: what changed before the gateway looked is in the versions it polls.
        after ??= (await opened.bounds(product)).last;
        if (failing) options.log.info({ product }, 'the change feed is followed again');
        failing = false;
        for await (const change of opened.follow(product, { after, signal })) {
          after = change.position;
          options.onChange(product);
        }
      } catch (error) {
        if (signal.aborted) return;
        // Events the retention removed meanwhile: a poll catches up, then the feed is followed from its newest.
        if (error instanceof ChangeFeedError && error.code === 'EVENT_POSITION_EXPIRED') {
          after = null;
          options.onChange(product);
        }
        // Once an outage, not at every try.
        if (!failing) options.log.warn({ product, err: error }, 'the change feed cannot be followed now; the versions poll invalidates meanwhile');
        failing = true;
        await sleep(options.retryMs ?? 2_000, undefined, { signal }).catch(() => undefined);
      }
    }
  }

  const scan = () => {
    for (const product of options.products()) {
      // A name a subgraph's answer gave that no feed could hold is not followed (the poll covers it).
      if (!followed.has(product) && PRODUCT_ID.test(product)) followed.set(product, follow(product));
    }
  };
  scan();
  const timer = setInterval(scan, options.scanMs ?? 1_000);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      controller.abort();
      await Promise.all(followed.values());
      if (feed) await (await feed.catch(() => null))?.close();
    },
  };
}
