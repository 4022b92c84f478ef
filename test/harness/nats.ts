/**
 * The machine's NATS JetStream server, shared: a test uses streams of its own (a subject prefix
 * unique to the run) and deletes them when it is done.
 */
import { randomUUID } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';

export const SHARED_NATS = 'nats://127.0.0.1:4222';

/** A subject prefix no other run uses (`test.<random>.changes`). */
export const testSubjectPrefix = (): string => `test.${randomUUID().slice(0, 8)}.changes`;

/** Deletes the streams of the products under a prefix (their names are the subjects with `_` for `.`). */
export async function deleteStreams(prefix: string, servers = SHARED_NATS): Promise<void> {
  const nc = await connect({ servers });
  try {
    const jsm = await jetstreamManager(nc);
    for await (const name of jsm.streams.names()) if (name.startsWith(prefix.replaceAll('.', '_'))) await jsm.streams.delete(name);
  } finally {
    await nc.close();
  }
}
