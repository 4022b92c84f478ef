/**
 * The change feed a process uses, from its environment: NATS JetStream at `EVENTS_NATS_URL`
 * (`nats://host:4222`, several comma-separated), else the embedded log per product in
 * `<DATA_DIR>/events`, which every process `npm start` runs on the machine shares.
 */
import { join } from 'node:path';
import { previousSigningKeyFromEnv, signingKeyFromEnv } from '../subgraph-signature.js';
import { ChangeFeedError, type ChangeFeed } from './change-feed.js';
import { openFileFeed } from './file-feed.js';
import { openJetStreamFeed } from './jetstream-feed.js';

/** Checks `EVENTS_NATS_URL` (null: the embedded feed); a malformed one stops the start. */
export function eventsNatsUrlFromEnv(env: NodeJS.ProcessEnv = process.env): string | null {
  const value = env.EVENTS_NATS_URL?.trim();
  if (!value) return null;
  for (const server of value.split(',')) {
    let url: URL;
    try {
      url = new URL(server.trim());
    } catch {
      throw new ChangeFeedError('EVENT_INVALID', `EVENTS_NATS_URL must list nats:// URLs (nats://host:4222, comma-separated), not ${JSON.stringify(server)}.`);
    }
    if (!['nats:', 'tls:'].includes(url.protocol) || !url.hostname) throw new ChangeFeedError('EVENT_INVALID', `EVENTS_NATS_URL must list nats:// URLs (nats://host:4222, comma-separated), not ${JSON.stringify(server)}.`);
  }
  return value;
}

/** Opens the feed the environment names (JetStream connects here: it fails, coded, while NATS does not answer). */
export async function changeFeedFromEnv(options: { readonly dataDir: string; readonly name?: string; readonly env?: NodeJS.ProcessEnv }): Promise<ChangeFeed> {
  const env = options.env ?? process.env;
  const signingKey = signingKeyFromEnv(env);
  const previousSigningKey = previousSigningKeyFromEnv(env);
  const servers = eventsNatsUrlFromEnv(env);
  if (servers) return openJetStreamFeed({ servers, signingKey, previousSigningKey, ...(env.EVENTS_SUBJECT_PREFIX ? { prefix: env.EVENTS_SUBJECT_PREFIX } : {}), ...(options.name ? { name: options.name } : {}) });
  return openFileFeed({ dir: join(options.dataDir, 'events'), signingKey, previousSigningKey });
}
