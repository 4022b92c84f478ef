/**
 * The change feed: one ordered, durable stream of change events per data product, read by position.
 * Two implementations pass one contract suite (test/harness/change-feed-contract.ts): NATS
 * JetStream (`EVENTS_NATS_URL`) and, without it, an append-only log per product in the data folder,
 * which carries events between the processes `npm start` runs on one machine. A Kafka adapter
 * would be a third implementation of this interface.
 */
import { PRODUCT_ID, type ChangeEvent } from './change-event.js';

/** How long a product's events are kept (the product declares it; default 7 days). */
export interface Retention {
  readonly maxAgeMs: number;
}

export const DEFAULT_RETENTION: Retention = { maxAgeMs: 7 * 24 * 3_600_000 };

/** An event with its position in its product's feed (1, 2, 3, …: a consumer resumes after the last it saw). */
export interface StoredChange {
  readonly position: number;
  readonly event: ChangeEvent;
}

export interface Published {
  readonly position: number;
  /** The feed held an event with this id already: this publish stored nothing. */
  readonly duplicate: boolean;
}

export interface FollowOptions {
  /** The last position seen: events after it are yielded (0: from the first the feed keeps). */
  readonly after: number;
  /** Ends the iteration (it returns normally). */
  readonly signal: AbortSignal;
  /** Told of each message that is not a change event signed for this product (it is skipped). */
  readonly onIgnored?: (position: number) => void;
}

export interface ChangeFeed {
  readonly kind: 'file' | 'jetstream';
  /** Creates the product's stream, or updates its retention. */
  declare(product: string, retention?: Retention): Promise<void>;
  /** Appends a signed event to its product's feed (declared first); an id the feed holds already is a duplicate, stored once. */
  publish(event: ChangeEvent): Promise<Published>;
  /** The first position the product's feed keeps and its last (`first` is `last + 1` when it keeps none: `{ first: 1, last: 0 }` for a new one). */
  bounds(product: string): Promise<{ first: number; last: number }>;
  /**
   * The product's events after a position, in order, then each new one as it is published, until
   * the signal aborts. Only events signed with the mesh's key for this product are yielded. A
   * position beyond the last is refused (EVENT_POSITION_INVALID), and one whose next events the
   * retention removed too (EVENT_POSITION_EXPIRED): a consumer never misses events without knowing.
   */
  follow(product: string, options: FollowOptions): AsyncIterable<StoredChange>;
  /** The product's last event signed for it (a publisher resumes after it), or null. */
  lastEvent(product: string): Promise<StoredChange | null>;
  close(): Promise<void>;
}

export type ChangeFeedErrorCode = 'EVENTS_UNAVAILABLE' | 'EVENT_POSITION_INVALID' | 'EVENT_POSITION_EXPIRED' | 'EVENT_INVALID';

/** A feed's refusal or failure, coded (the codes are in policy/errors.ts). */
export class ChangeFeedError extends Error {
  override name = 'ChangeFeedError';
  constructor(
    readonly code: ChangeFeedErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** A product's name as every feed takes it (it names a subject, a stream and a folder): refused otherwise. */
export function checkProduct(product: string): string {
  if (typeof product !== 'string' || !PRODUCT_ID.test(product)) throw new ChangeFeedError('EVENT_INVALID', `A product is named <domain>.<product> in lower-case letters, digits and _, not ${JSON.stringify(product)}.`);
  return product;
}

/** Checks a resume position against a feed's bounds. */
export function checkPosition(product: string, after: number, bounds: { first: number; last: number }): void {
  if (!Number.isSafeInteger(after) || after < 0) throw new ChangeFeedError('EVENT_POSITION_INVALID', `A position in the ${product} feed is a whole number from 0, not ${after}.`);
  if (after > bounds.last) throw new ChangeFeedError('EVENT_POSITION_INVALID', `The ${product} feed has no position ${after} (its last is ${bounds.last}).`);
  if (after < bounds.first - 1) {
    throw new ChangeFeedError('EVENT_POSITION_EXPIRED', `The ${product} feed no longer keeps the events after position ${after} (it keeps ${bounds.first} to ${bounds.last}): read the product again, then follow from ${bounds.last}.`);
  }
}
