/**
 * The change feed on the machine's NATS JetStream (127.0.0.1:4222, or EVENTS_TEST_NATS_URL), on
 * streams and subjects of this run's own, deleted at the end.
 */
import { randomUUID } from 'node:crypto';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { changeFeedContract, FEED_TEST_KEY } from '../../test/harness/change-feed-contract.js';
import { openJetStreamFeed } from './jetstream-feed.js';

const servers = process.env.EVENTS_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
const prefix = `test.${randomUUID().slice(0, 8)}.changes`;
const raw = await connect({ servers });

changeFeedContract('NATS JetStream', {
  open: (options) => openJetStreamFeed({ servers, prefix, signingKey: options?.signingKey ?? FEED_TEST_KEY, previousSigningKey: options?.previousSigningKey }),
  async injectRaw(product, text, id) {
    await jetstream(raw).publish(`${prefix}.${product}`, text, id ? { msgID: id } : {});
  },
  shortRetention: { maxAgeMs: 1_000, waitMs: 2_500 },
  async cleanup() {
    const jsm = await jetstreamManager(raw);
    for await (const name of jsm.streams.names()) if (name.startsWith(prefix.replaceAll('.', '_'))) await jsm.streams.delete(name);
    await raw.close();
  },
});
