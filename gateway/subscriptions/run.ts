/**
 * One subscription's stream: the product's events (read again from `after` first, when resuming,
 * then those the hub hands out), each key resolved by the lookup under the subscriber's principal,
 * and delivered only when the subscriber may see the entity now and it passes the filters.
 *
 * Bounded: events wait in a queue of at most `maxQueuedEvents` and the transport may hold at most
 * `maxBufferedBytes` unsent; past either, the subscription ends with SUBSCRIPTION_SLOW_CONSUMER (the
 * subscriber resumes from its last position). At most `eventsPerSecond` are delivered per second;
 * each lookup spends its cost from the subscriber's rate buckets (RATE_LIMITED ends it); the
 * token's expiry ends it (SUBSCRIPTION_TOKEN_EXPIRED). A lookup that fails for a transient reason
 * (a subgraph unreachable, slow or busy) is tried again three times over about 4 s; then the
 * subscription ends with that code, never skipping the event. Every end is a coded GraphQL error.
 *
 * A delete cannot be looked up (the row is gone): it is delivered to a subscriber whom no row policy
 * of the entity restricts and who filters by nothing but the key, and otherwise only for a key this
 * subscription delivered before (it was visible then).
 */
import type { FormattedExecutionResult } from 'graphql';
import { GraphQLError } from 'graphql';
import { LRUCache } from 'lru-cache';
import { ChangeFeedError, checkPosition, type StoredChange } from '../../policy/events/change-feed.js';
import { codedError, type ErrorCode } from '../../policy/errors.js';
import type { Refusal } from '../request-stages/refusals.js';
import type { Listening, ProductHub } from '../events/product-hub.js';
import { formatEventPosition, KEY_VARIABLE, ROW_ALIAS, type PreparedSubscription } from './prepare.js';

export interface SubscriptionBounds {
  /** Events delivered per second, at most (default 100). */
  readonly eventsPerSecond: number;
  /** Events waiting for the subscriber, at most (default 1,000). */
  readonly maxQueuedEvents: number;
  /** Bytes the transport holds unsent, at most (default 1 MiB). */
  readonly maxBufferedBytes: number;
}

export const DEFAULT_SUBSCRIPTION_BOUNDS: SubscriptionBounds = { eventsPerSecond: 100, maxQueuedEvents: 1_000, maxBufferedBytes: 1 << 20 };

/** Failures a lookup is tried again for (a subgraph restarting, swapping a version, or busy), before the subscription ends. */
const TRANSIENT = new Set(['SUBGRAPH_UNAVAILABLE', 'SUBGRAPH_TIMEOUT', 'GATEWAY_OVERLOADED']);
/** The waits before each new try (then the subscription ends, to be resumed). */
const RETRY_MS = [250, 1_000, 3_000];

/** One delivered event: its stream position (the SSE `id:`), and the result as for a query. */
export interface Delivery {
  readonly id: string;
  readonly result: FormattedExecutionResult;
}

export type Outcome = 'delivered' | 'withheld' | 'dropped';

export interface RunOptions {
  readonly prepared: PreparedSubscription;
  readonly hub: ProductHub;
  /** Runs the lookup for one key (through Apollo Server, as the subscriber). */
  readonly resolve: (variables: Record<string, unknown>, position: string) => Promise<FormattedExecutionResult>;
  /** Settles once an answer the gateway keeps (the response cache) can no longer predate this event. */
  readonly fresh?: (change: StoredChange) => Promise<void>;
  /** Spends a lookup's cost from the subscriber's rate buckets; the refusal when over. */
  readonly spend: (cost: number) => Promise<Refusal | null>;
  /** No row policy of the entity restricts this principal (a delete's key may go to it). */
  readonly seesEveryRow: boolean;
  readonly bounds: SubscriptionBounds;
  /** When the subscriber's token stops being valid (ms since the epoch); null: never. */
  readonly expiresAtMs: number | null;
  /** Bytes the transport holds unsent for this subscriber. */
  readonly buffered: () => number;
  /** Told of each key resolved (delivered, or withheld: not visible, or filtered out), and of the keys still waiting when a coded end drops them. */
  readonly onOutcome?: (outcome: Outcome, count?: number) => void;
  /** Told when the subscription must end while the transport may be stuck writing: it ends the connection if it cannot say so. */
  readonly onEnding?: (error: GraphQLError) => void;
}

export interface SubscriptionStream {
  readonly deliveries: AsyncGenerator<Delivery>;
  /** Ends the stream with a coded error (at its next step). */
  end(error: GraphQLError): void;
  /** Ends the stream without an error, at once (the subscriber left): `deliveries` finishes. */
  stop(): void;
  /** Lets go of the feed and timers (when the stream is dropped without being read to its end). */
  close(): void;
}

/** Thrown inside the stream when it was stopped: it finishes quietly. */
const STOPPED = new Error('stopped');

const sameValue = (a: unknown, b: unknown) => a !== null && a !== undefined && b !== null && b !== undefined && String(a) === String(b);

export async function openSubscription(options: RunOptions): Promise<SubscriptionStream> {
  const { prepared, hub, bounds } = options;
  const { route } = prepared;
  let ending: GraphQLError | typeof STOPPED | null = null;
  let wake: (() => void) | null = null;
  const catchUp = new AbortController();
  const stopWaiting = () => {
    wake?.();
    wake = null;
  };
  const end = (error: GraphQLError | typeof STOPPED) => {
    if (ending) return;
    ending = error;
    catchUp.abort();
    stopWaiting();
    if (error instanceof GraphQLError) options.onEnding?.(error);
  };
  const check = () => {
    if (ending) throw ending;
  };
  let expiry: NodeJS.Timeout | null = null;
  let closed = false;
  let listening: Listening | undefined;
  const queue: StoredChange[] = [];
  // Keys of events that came after the queue was full, or after a coded end.
  let dropped = 0;
  function close() {
    if (closed) return;
    closed = true;
    // Ended with a code (slow, expired, …): what still waited is dropped, to be read again by resuming.
    if (ending instanceof GraphQLError) {
      const waiting = queue.reduce((keys, change) => keys + change.event.data.keys.length, dropped);
      if (waiting > 0) options.onOutcome?.('dropped', waiting);
    }
    if (expiry) clearTimeout(expiry);
    catchUp.abort();
    listening?.close();
  }

  // Keys this subscription delivered (a later delete of one is delivered too), when it matters.
  const delivered = options.seesEveryRow && prepared.filters.length === 0 ? null : new LRUCache<string, true>({ max: 10_000 });
  // A wait that an end (or a stop) cuts short.
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  // The events-per-second bound: a token bucket refilled continuously.
  let tokens = bounds.eventsPerSecond;
  let refilledAt = performance.now();
  const throttle = async () => {
    for (;;) {
      const now = performance.now();
      tokens = Math.min(bounds.eventsPerSecond, tokens + ((now - refilledAt) / 1000) * bounds.eventsPerSecond);
      refilledAt = now;
      if (tokens >= 1) {
        tokens -= 1;
        return;
      }
      await pause(Math.ceil(((1 - tokens) / bounds.eventsPerSecond) * 1000));
      check();
    }
  };

  // Joined before the stream is handed out: a refusal (feed down, a position it never had or no
  // longer keeps) is answered before the first event, as an HTTP status over SSE.
  let gap = null as ChangeFeedError | null;
  listening = await hub.listen(route.product, {
    onChange(change) {
      if (ending) {
        dropped += change.event.data.keys.length;
        return;
      }
      if (queue.length >= bounds.maxQueuedEvents) {
        dropped += change.event.data.keys.length;
        end(codedError('SUBSCRIPTION_SLOW_CONSUMER', `More than ${bounds.maxQueuedEvents} events waited for this subscriber: it ended. Resume \`after\` the last position you received.`, { maxQueuedEvents: bounds.maxQueuedEvents }));
        return;
      }
      queue.push(change);
      stopWaiting();
    },
    onGap(error) {
      gap = error;
      stopWaiting();
    },
  });
  let last = listening.position;
  // The whole event `after` names, or the keys after its `index` within it.
  const from = prepared.after === null ? null : prepared.after.index === null ? prepared.after.position : prepared.after.position - 1;
  try {
    if (from !== null) checkPosition(route.product, from, await (await hub.feed()).bounds(route.product));
  } catch (error) {
    close();
    throw error;
  }
  if (from !== null && from > last) last = from; // the hub hands those out soon: skipped there
  expiry = options.expiresAtMs === null ? null : setTimeout(
    () => end(codedError('SUBSCRIPTION_TOKEN_EXPIRED', 'The token of this subscription expired: subscribe again with a new token, `after` the last position you received.')),
    Math.max(0, Math.min(options.expiresAtMs - Date.now(), 2 ** 31 - 1)),
  );
  expiry?.unref();

  async function* changes(): AsyncGenerator<StoredChange> {
    if (from !== null && from < last) {
      const feed = await hub.feed();
      for await (const change of feed.follow(route.product, { after: from, signal: catchUp.signal })) {
        yield change;
        if (change.position >= last) {
          last = change.position;
          break;
        }
      }
      check();
    }
    for (;;) {
      check();
      if (gap) throw gap;
      const change = queue.shift();
      if (!change) {
        await new Promise<void>((resolve) => (wake = resolve));
        continue;
      }
      if (change.position <= last) continue;
      last = change.position;
      yield change;
    }
  }

  async function* deliveries(): AsyncGenerator<Delivery> {
    try {
      for await (const change of changes()) {
        const { operation, keys, changedFields, version } = change.event.data;
        if (operation === 'upsert' && options.fresh) {
          await options.fresh(change);
          check();
        }
        for (const [index, key] of keys.entries()) {
          check();
          const after = prepared.after;
          if (after?.index != null && change.position === after.position && index <= after.index) continue;
          if (prepared.key !== null && key !== prepared.key) continue;
          const position = formatEventPosition(change.position, index);
          let entity: FormattedExecutionResult | null = null;
          if (operation === 'delete') {
            if (delivered ? !delivered.has(key) : false) {
              options.onOutcome?.('withheld');
              continue;
            }
            delivered?.delete(key);
          } else {
            const refusal = await options.spend(prepared.cost);
            check();
            if (refusal) throw codedError(refusal.code, `${refusal.message} The subscription ended at position ${position}: resume after your last one.`, { ...refusal.extensions });
            let row: Record<string, unknown> | null | undefined;
            let failure: FormattedExecutionResult['errors'] extends readonly (infer E)[] | undefined ? E | undefined : never;
            for (let attempt = 0; ; attempt += 1) {
              entity = await options.resolve({ ...prepared.lookup.variables, [KEY_VARIABLE]: key }, position);
              check();
              row = (entity.data as Record<string, unknown> | null | undefined)?.[ROW_ALIAS] as Record<string, unknown> | null | undefined;
              failure = row === null || row === undefined ? entity.errors?.find((error) => error.path?.[0] === ROW_ALIAS || !error.path) : undefined;
              if (!failure || !TRANSIENT.has(String(failure.extensions?.code)) || attempt >= RETRY_MS.length) break;
              await pause(RETRY_MS[attempt]!);
              check();
            }
            if (row === null || row === undefined) {
              // Null with errors: the event could not be resolved; it ends here, to be resumed, never skipped.
              if (failure) {
                const code = (failure.extensions?.code as ErrorCode | undefined) ?? 'INTERNAL_SERVER_ERROR';
                throw codedError(code, `The event at position ${position} could not be resolved (${failure.message}): the subscription ended; resume after your last position.`);
              }
              options.onOutcome?.('withheld');
              continue;
            }
            if (!prepared.filters.every((filter) => sameValue(row[filter.alias], filter.value))) {
              options.onOutcome?.('withheld');
              continue;
            }
            delivered?.set(key, true);
          }
          await throttle();
          if (options.buffered() > bounds.maxBufferedBytes) {
            throw codedError('SUBSCRIPTION_SLOW_CONSUMER', `The subscriber read too slowly (more than ${bounds.maxBufferedBytes} bytes unsent): it ended. Resume \`after\` the last position you received.`, { maxBufferedBytes: bounds.maxBufferedBytes });
          }
          options.onOutcome?.('delivered');
          yield { id: position, result: payloadOf({ prepared, operation, key, changedFields, version, position, entity }) };
        }
      }
    } catch (error) {
      if (error === STOPPED) return;
      // The feed's refusals (a position the retention removed meanwhile, …), coded for the subscriber.
      if (error instanceof ChangeFeedError) throw codedError(error.code, error.message);
      throw error;
    } finally {
      close();
    }
  }

  return { deliveries: deliveries(), end, stop: () => end(STOPPED), close };
}

/** The subscriber's result for one key: the change type's fields in the order selected, errors under the subscription's path. */
function payloadOf(options: {
  prepared: PreparedSubscription;
  operation: 'upsert' | 'delete';
  key: string;
  changedFields: readonly string[];
  version: string;
  position: string;
  entity: FormattedExecutionResult | null;
}): FormattedExecutionResult {
  const { prepared, entity } = options;
  const data = (entity?.data ?? {}) as Record<string, unknown>;
  const payload: Record<string, unknown> = {};
  for (const field of prepared.payload) {
    if (field.kind === 'typename') payload[field.responseKey] = prepared.route.changeType.name;
    else if (field.kind === 'entity') payload[field.responseKey] = data[field.responseKey] ?? null;
    else {
      const values = { operation: options.operation === 'delete' ? 'DELETE' : 'UPSERT', key: options.key, changedFields: options.changedFields, position: options.position, version: options.version };
      payload[field.responseKey] = values[field.name];
    }
  }
  const errors = (entity?.errors ?? [])
    .filter((error) => error.path?.[0] !== ROW_ALIAS)
    .map((error) => ({ ...error, path: error.path ? [prepared.responseKey, ...error.path] : [prepared.responseKey] }));
  // The policy's explanations name paths in the lookup: moved under the subscription field, as errors are.
  const explained = entity?.extensions?.policy as { masked?: { path?: readonly (string | number)[] }[] } | undefined;
  const policy = explained?.masked ? { ...explained, masked: explained.masked.map((entry) => ({ ...entry, path: [prepared.responseKey, ...(entry.path ?? [])] })) } : explained;
  return {
    data: { [prepared.responseKey]: payload },
    ...(errors.length > 0 ? { errors } : {}),
    extensions: { ...entity?.extensions, ...(policy ? { policy } : {}), position: options.position },
  };
}
