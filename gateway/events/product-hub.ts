/**
 * The gateway's one reader of each product's change feed: it follows a product from its newest
 * event once something listens, and hands every event to every listener (the response cache, each
 * subscription), so that a thousand subscribers cost one reader, not a thousand.
 *
 * While the feed is down it tries again and goes on from the last event it handed out, so that
 * listeners miss nothing; if the retention removed events meanwhile, it tells its listeners of the
 * gap (`onGap`) and goes on from the newest.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { ChangeFeedError, checkProduct, type ChangeFeed, type StoredChange } from '../../policy/events/change-feed.js';

export interface HubListener {
  /** Each event after the position `listen` answered, in order. */
  onChange(change: StoredChange): void;
  /** Events were lost to the retention while the feed could not be read. */
  onGap?(error: ChangeFeedError): void;
}

export interface Listening {
  /** The last position handed out when the listener joined: it gets every event after it. */
  readonly position: number;
  close(): void;
}

export interface ProductHub {
  /** The feed, opened once (tried again while it fails). */
  feed(): Promise<ChangeFeed>;
  /**
   * Listens to a product's events from now on. Waits for the product's first read of the feed,
   * at most `waitMs` (default 5 s): EVENTS_UNAVAILABLE when the feed does not answer by then.
   */
  listen(product: string, listener: HubListener, waitMs?: number): Promise<Listening>;
  close(): Promise<void>;
}

interface Followed {
  readonly listeners: Set<HubListener>;
  /** The last position handed out (null until the feed was first read). */
  last: number | null;
  readonly started: Promise<void>;
  loop: Promise<void>;
}

export function createProductHub(options: {
  readonly openFeed: () => Promise<ChangeFeed>;
  readonly log: Logger;
  /** The wait before reading again after the feed failed (default 2 s). */
  readonly retryMs?: number;
}): ProductHub {
  const controller = new AbortController();
  const { signal } = controller;
  const products = new Map<string, Followed>();
  let opened: Promise<ChangeFeed> | null = null;
  const feed = () => (opened ??= options.openFeed().catch((error: unknown) => {
    opened = null; // opened again at the next try
    throw error;
  }));

  function follow(product: string): Followed {
    let markStarted!: () => void;
    const started = new Promise<void>((resolve) => (markStarted = resolve));
    const followed: Followed = { listeners: new Set(), last: null, started, loop: Promise.resolve() };
    const loop = async () => {
      let failing = false;
      while (!signal.aborted) {
        try {
          const current = await feed();
          // From the newest event on: a listener that wants older events reads them itself first.
          followed.last ??= (await current.bounds(product)).last;
          markStarted();
          if (failing) options.log.info({ product }, 'the change feed is followed again');
          failing = false;
          for await (const change of current.follow(product, { after: followed.last, signal })) {
            followed.last = change.position;
            for (const listener of [...followed.listeners]) listener.onChange(change);
          }
        } catch (error) {
          if (signal.aborted) return;
          if (error instanceof ChangeFeedError && error.code === 'EVENT_POSITION_EXPIRED') {
            followed.last = null;
            for (const listener of [...followed.listeners]) listener.onGap?.(error);
          }
          if (!failing) options.log.warn({ product, err: error }, 'the change feed cannot be followed now; trying again');
          failing = true;
          await sleep(options.retryMs ?? 2_000, undefined, { signal }).catch(() => undefined);
        }
      }
    };
    followed.loop = loop();
    return followed;
  }

  return {
    feed,
    async listen(product, listener, waitMs = 5_000) {
      checkProduct(product);
      let followed = products.get(product);
      if (!followed) {
        followed = follow(product);
        products.set(product, followed);
      }
      const waiting = new AbortController();
      const timeout = sleep(waitMs, 'timeout' as const, { signal: AbortSignal.any([signal, waiting.signal]) }).catch(() => 'timeout' as const);
      const outcome = await Promise.race([followed.started.then(() => 'started' as const), timeout]);
      waiting.abort();
      if (outcome !== 'started' || followed.last === null) {
        throw new ChangeFeedError('EVENTS_UNAVAILABLE', `The change feed of ${product} cannot be read now; subscribe again later.`);
      }
      // Joined in the same turn as the position is read: no event falls between them.
      followed.listeners.add(listener);
      const joined = followed;
      return { position: followed.last, close: () => void joined.listeners.delete(listener) };
    },
    async close() {
      controller.abort();
      await Promise.all([...products.values()].map((followed) => followed.loop));
      if (opened) await (await opened.catch(() => null))?.close();
    },
  };
}
