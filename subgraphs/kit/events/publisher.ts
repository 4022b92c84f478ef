/**
 * The change publisher of a domain's subgraph: after a version is served (and at start), it
 * publishes the outbox entries of the serving version that the change feed does not hold yet, in
 * order, each signed, with a stable id (`<product>@<seq>`) and the time it was made, so that
 * publishing one again (a crash after the publish, before anything knew) is a duplicate the feed
 * drops. Which entries the feed holds it asks the feed (each product's last event), never a file of
 * its own: a process that died between commit and publish, or a replica that never published,
 * starts where the feed is. While the feed is down it tries again, waiting longer each time (up to
 * 30 s); nothing is dropped meanwhile, since the outbox keeps every entry until the feed holds it.
 */
import type { Logger } from 'pino';
import { signChangeEvent } from '../../../policy/events/change-event.js';
import { DEFAULT_RETENTION, type ChangeFeed, type Retention } from '../../../policy/events/change-feed.js';
import type { Domain } from '../domain.js';
import { durationSecondsOf } from '../freshness.js';
import { readWarehouseAt } from '../warehouse/open.js';
import { eventIdOf, readOutbox, seqOfEventId, type OutboxEntry } from './outbox.js';

export interface ChangePublisherOptions {
  /** Opens the change feed (tried again, as a publish is, while it fails: a subgraph serves whether the broker answers or not). */
  readonly openFeed: () => Promise<ChangeFeed>;
  readonly domain: Domain<any, any>;
  /** The domain's warehouse: its serving version's outbox is read. */
  readonly url: string;
  /** The mesh's signing key (`SUBGRAPH_SIGNING_KEY`). */
  readonly signingKey: string;
  readonly log: Logger;
  /** The first wait before trying again after a failure (default 1 s; doubled up to 30 s). */
  readonly retryMs?: number;
  /** Told of each event published (a duplicate too). */
  readonly onPublished?: (entry: OutboxEntry, duplicate: boolean) => void;
}

export interface ChangePublisher {
  /** Publishes what the serving version's outbox holds that the feed does not; resolves when that is done, or failed and scheduled again. */
  publish(): Promise<void>;
  /** The last outbox entry the feed holds, every entry before it too (0: none known): a merge prunes the outbox up to it. */
  publishedThrough(): number;
  stop(): Promise<void>;
}

const MAX_RETRY_MS = 30_000;

/** Each product's retention in the change feed, as it declares it (default 7 days); refused outside 1 hour to 365 days. */
export function eventRetentionsOf(domain: Domain<any, any>): Map<string, Retention> {
  const retentions = new Map<string, Retention>();
  for (const { spec } of domain.dataProducts) {
    const id = `${domain.name}.${spec.name}`;
    const declared = spec.events?.retention;
    if (!declared) {
      retentions.set(id, DEFAULT_RETENTION);
      continue;
    }
    const seconds = durationSecondsOf({ property: 'retention', value: declared.value, unit: declared.unit });
    const maxAgeMs = seconds === null ? Number.NaN : seconds * 1000;
    if (!Number.isFinite(maxAgeMs) || maxAgeMs < 3_600_000 || maxAgeMs > 365 * 86_400_000) {
      throw new Error(`${id}: events.retention is from 1 hour to 365 days, in h, d or w (${JSON.stringify(declared)}).`);
    }
    retentions.set(id, { maxAgeMs });
  }
  return retentions;
}

export function startChangePublisher(options: ChangePublisherOptions): ChangePublisher {
  const { domain, log } = options;
  const retentions = eventRetentionsOf(domain); // a retention out of bounds stops the start
  let feed: ChangeFeed | null = null;
  const products = domain.dataProducts.map(({ spec }) => `${domain.name}.${spec.name}`);
  let declared = false;
  let through = 0;
  let running: Promise<void> | null = null;
  let again = false;
  let stopped = false;
  let retryMs = options.retryMs ?? 1_000;
  let timer: NodeJS.Timeout | undefined;
  let failing = false;

  async function publishOnce(): Promise<void> {
    feed ??= await options.openFeed();
    if (!declared) {
      for (const product of products) await feed.declare(product, retentions.get(product) ?? DEFAULT_RETENTION);
      declared = true;
    }
    const entries = await readWarehouseAt(options.url, (db) => readOutbox(db), []);
    const last = new Map<string, number>();
    for (const product of products) last.set(product, seqOfEventId((await feed.lastEvent(product))?.event.id ?? '') ?? 0);
    for (const entry of entries) {
      if (stopped) return;
      if (entry.seq > (last.get(entry.change.product) ?? 0)) {
        const event = signChangeEvent({ id: eventIdOf(entry), change: entry.change, time: new Date(entry.at), key: options.signingKey });
        const { duplicate } = await feed.publish(event);
        options.onPublished?.(entry, duplicate);
      }
      through = entry.seq;
    }
  }

  const run = async (): Promise<void> => {
    try {
      await publishOnce();
      if (failing) log.info({ domain: domain.name }, 'the change feed is back: the events kept meanwhile are published');
      failing = false;
      retryMs = options.retryMs ?? 1_000;
    } catch (error) {
      if (!failing) log.warn({ domain: domain.name, err: error }, 'change events could not be published; the outbox keeps them, and they are published again');
      failing = true;
      if (!stopped) {
        clearTimeout(timer);
        timer = setTimeout(() => void publisher.publish(), retryMs);
        timer.unref();
        retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
      }
    }
  };

  const publisher: ChangePublisher = {
    publish() {
      if (stopped) return Promise.resolve();
      if (running) {
        again = true; // once this pass ends, one more: it may have read the outbox before the newest version
        return running;
      }
      running = (async () => {
        do {
          again = false;
          await run();
        } while (again && !stopped);
      })().finally(() => {
        running = null;
      });
      return running;
    },
    publishedThrough: () => through,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
      await feed?.close();
    },
  };
  return publisher;
}
