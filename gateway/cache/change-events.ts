/**
 * The response cache invalidated by the data products' change events (issue 27): the gateway
 * listens to the change feed of every product it has learnt of (from its newest event on, through
 * the gateway's one reader per product, gateway/events/product-hub.ts) and, at each event, asks the
 * subgraphs for their serving versions at once, so that an entry that read the product stops being
 * served as soon as the new version is, not at the next poll. The poll every
 * `RESPONSE_CACHE_VERSIONS_POLL_MS` stays, as the fallback: while the feed is down, or for a
 * subgraph that publishes no events, entries are invalidated as before.
 */
import type { Logger } from 'pino';
import { PRODUCT_ID } from '../../policy/events/change-event.js';
import type { Listening, ProductHub } from '../events/product-hub.js';

export interface ChangeEventInvalidationOptions {
  /** The gateway's reader of the change feeds. */
  readonly hub: ProductHub;
  /** The products to follow (`<domain>.<product>`): looked at again every `scanMs`, a new one followed from its newest event. */
  readonly products: () => Iterable<string>;
  /** Told of each product's change event (and of events lost to the retention): the caller polls the serving versions. */
  readonly onChange: (product: string) => void;
  readonly log: Logger;
  /** How often the product list is looked at, and a product whose feed did not answer tried again (default 1 s). */
  readonly scanMs?: number;
}

export function invalidateOnChangeEvents(options: ChangeEventInvalidationOptions): { stop(): Promise<void> } {
  const listening = new Map<string, Promise<Listening | null>>();
  let stopped = false;
  const listen = (product: string) =>
    options.hub
      .listen(product, { onChange: () => options.onChange(product), onGap: () => options.onChange(product) })
      .catch(() => {
        // The feed does not answer yet (the hub says so once, and tries again): listened to at a later scan.
        listening.delete(product);
        return null;
      });
  const scan = () => {
    if (stopped) return;
    for (const product of options.products()) {
      // A name a subgraph's answer gave that no feed could hold is not followed (the poll covers it).
      if (!listening.has(product) && PRODUCT_ID.test(product)) listening.set(product, listen(product));
    }
  };
  scan();
  const timer = setInterval(scan, options.scanMs ?? 1_000);
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      for (const listened of await Promise.all(listening.values())) listened?.close();
    },
  };
}
