/**
 * The change feed on NATS JetStream (`EVENTS_NATS_URL`): a stream per data product, on one subject
 * (`mesh.changes.<domain>.<product>`), kept on file for the product's retention; a publish carries
 * the event's id and signature as its `Nats-Msg-Id`, so that JetStream stores a retried one once
 * (within the stream's duplicate window: the retention, at most a day). Consumers read with ordered consumers
 * from a stream sequence: the event's position. The client reconnects by itself after an outage.
 */
import { DeliverPolicy, DiscardPolicy, jetstream, jetstreamManager, JetStreamApiError, StorageType } from '@nats-io/jetstream';
import { connect, nanos, type NatsConnection } from '@nats-io/transport-node';
import { deduplicationIdOf, verifyChangeEvent, type ChangeEvent } from './change-event.js';
import { ChangeFeedError, checkPosition, checkProduct, DEFAULT_RETENTION, type ChangeFeed, type FollowOptions, type Retention, type StoredChange } from './change-feed.js';

export interface JetStreamFeedOptions {
  /** NATS servers, comma-separated (`nats://127.0.0.1:4222`). */
  readonly servers: string;
  /** The mesh's signing key (`SUBGRAPH_SIGNING_KEY`): events are read only when signed with it (or `previousSigningKey`). */
  readonly signingKey: string;
  readonly previousSigningKey?: string | undefined;
  /** The first part of every subject and stream name (default `mesh.changes`): a test uses its own. */
  readonly prefix?: string;
  /** The connection's name, as NATS monitoring shows it. */
  readonly name?: string;
  /** How long a publish or a stream request waits for the server (default 5 s). */
  readonly timeoutMs?: number;
}

const DAY_MS = 24 * 3_600_000;
/** A stream that does not exist (JetStream's error code). */
const STREAM_NOT_FOUND = 10059;

export async function openJetStreamFeed(options: JetStreamFeedOptions): Promise<ChangeFeed> {
  const prefix = options.prefix ?? 'mesh.changes';
  const timeout = options.timeoutMs ?? 5_000;
  const keys = [options.signingKey, ...(options.previousSigningKey ? [options.previousSigningKey] : [])];
  const where = options.servers.replace(/\/\/[^@/]*@/, '//'); // never a password in a message
  let nc: NatsConnection;
  try {
    nc = await connect({ servers: options.servers.split(','), name: options.name ?? 'mesh-change-feed', timeout, maxReconnectAttempts: -1, reconnectTimeWait: 500 });
  } catch (error) {
    throw new ChangeFeedError('EVENTS_UNAVAILABLE', `NATS at ${where} does not answer: ${(error as Error).message}`);
  }
  const jsm = await jetstreamManager(nc, { timeout });
  const js = jetstream(nc, { timeout });
  const subject = (product: string) => `${prefix}.${checkProduct(product)}`;
  const stream = (product: string) => subject(product).replaceAll('.', '_');
  const unavailable = (what: string, error: unknown): ChangeFeedError =>
    error instanceof ChangeFeedError ? error : new ChangeFeedError('EVENTS_UNAVAILABLE', `${what} failed on NATS at ${where}: ${(error as Error).message}`);

  const bounds = async (product: string) => {
    try {
      const { state } = await jsm.streams.info(stream(product));
      return state.messages === 0 ? { first: state.last_seq + 1, last: state.last_seq } : { first: state.first_seq, last: state.last_seq };
    } catch (error) {
      if (error instanceof JetStreamApiError && error.code === STREAM_NOT_FOUND) return { first: 1, last: 0 };
      throw unavailable(`Reading the ${product} stream`, error);
    }
  };

  return {
    kind: 'jetstream',
    async declare(product: string, retention: Retention = DEFAULT_RETENTION) {
      const config = {
        subjects: [subject(product)],
        max_age: nanos(retention.maxAgeMs),
        duplicate_window: nanos(Math.min(retention.maxAgeMs, DAY_MS)),
        storage: StorageType.File,
        discard: DiscardPolicy.Old,
      };
      try {
        await jsm.streams.update(stream(product), config);
      } catch (error) {
        if (!(error instanceof JetStreamApiError && error.code === STREAM_NOT_FOUND)) throw unavailable(`Declaring the ${product} stream`, error);
        try {
          await jsm.streams.add({ name: stream(product), ...config });
        } catch (added) {
          throw unavailable(`Declaring the ${product} stream`, added);
        }
      }
    },
    async publish(event: ChangeEvent) {
      try {
        const ack = await js.publish(subject(event.subject), JSON.stringify(event), { msgID: deduplicationIdOf(event), expect: { streamName: stream(event.subject) }, timeout });
        return { position: ack.seq, duplicate: ack.duplicate };
      } catch (error) {
        throw unavailable(`Publishing ${event.id} to ${event.subject}`, error);
      }
    },
    bounds,
    async *follow(product: string, { after, signal, onIgnored }: FollowOptions): AsyncGenerator<StoredChange> {
      checkPosition(product, after, await bounds(product));
      if (signal.aborted) return;
      let messages;
      try {
        const consumer = await js.consumers.get(stream(product), after > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: after + 1 } : { deliver_policy: DeliverPolicy.All });
        // Pulls that expire within seconds: after a server restart, the recreated consumer's pull
        // asked only for what the lost one still owed, and the next came when it expired.
        messages = await consumer.consume({ max_messages: 100, expires: 5_000 });
      } catch (error) {
        throw unavailable(`Following the ${product} stream`, error);
      }
      const stop = () => void messages.close();
      signal.addEventListener('abort', stop, { once: true });
      try {
        for await (const message of messages) {
          const event = verifyChangeEvent(message.string(), { keys, product });
          if (event) yield { position: message.seq, event };
          else onIgnored?.(message.seq);
          if (signal.aborted) return;
        }
      } finally {
        signal.removeEventListener('abort', stop);
        await messages.close();
      }
    },
    async lastEvent(product: string) {
      const { first, last } = await bounds(product);
      // From the last message back, past any that is not a signed event (a bounded walk).
      for (let seq = last; seq >= Math.max(first, last - 1_000) && seq > 0; seq -= 1) {
        let message;
        try {
          message = await jsm.streams.getMessage(stream(product), { seq });
        } catch (error) {
          if (error instanceof JetStreamApiError) continue; // removed meanwhile
          throw unavailable(`Reading the ${product} stream`, error);
        }
        const event = message && verifyChangeEvent(message.string(), { keys, product });
        if (event) return { position: seq, event };
      }
      return null;
    },
    async close() {
      await nc.drain().catch(() => nc.close());
    },
  };
}
