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

/** Where the change feed is (NATS servers; null: the embedded log in `<dataDir>/events`), its subjects' prefix, and the key accepted besides the current one during a rotation. */
export interface ChangeFeedSettings {
  readonly dataDir: string;
  readonly natsUrl: string | null;
  readonly subjectPrefix?: string;
  readonly previousSigningKey?: string;
}

/** The feed the environment names (`EVENTS_NATS_URL`, `EVENTS_SUBJECT_PREFIX`, `SUBGRAPH_PREVIOUS_SIGNING_KEY`); a malformed URL is refused. */
export function changeFeedSettingsFromEnv(dataDir: string, env: NodeJS.ProcessEnv = process.env): ChangeFeedSettings {
  const previousSigningKey = previousSigningKeyFromEnv(env);
  const prefix = env.EVENTS_SUBJECT_PREFIX?.trim();
  // Tokens of letters, digits, _ and -, joined by dots: no wildcard (`*`, `>`), no space, nothing a stream name refuses.
  if (prefix && !/^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,7}$/.test(prefix)) {
    throw new ChangeFeedError('EVENT_INVALID', `EVENTS_SUBJECT_PREFIX is subject tokens of letters, digits, _ and - joined by dots (mesh.changes), not ${JSON.stringify(prefix)}.`);
  }
  return { dataDir, natsUrl: eventsNatsUrlFromEnv(env), ...(prefix ? { subjectPrefix: prefix } : {}), ...(previousSigningKey ? { previousSigningKey } : {}) };
}

/** Opens the feed (JetStream connects here: it fails, coded, while NATS does not answer). */
export function openChangeFeed(settings: ChangeFeedSettings, signingKey: string, name?: string): Promise<ChangeFeed> {
  const keys = { signingKey, previousSigningKey: settings.previousSigningKey };
  if (settings.natsUrl) return openJetStreamFeed({ servers: settings.natsUrl, ...keys, ...(settings.subjectPrefix ? { prefix: settings.subjectPrefix } : {}), ...(name ? { name } : {}) });
  return Promise.resolve(openFileFeed({ dir: join(settings.dataDir, 'events'), ...keys }));
}

/** Opens the feed the environment names, with the mesh's signing key. */
export async function changeFeedFromEnv(options: { readonly dataDir: string; readonly name?: string; readonly env?: NodeJS.ProcessEnv }): Promise<ChangeFeed> {
  const env = options.env ?? process.env;
  return openChangeFeed(changeFeedSettingsFromEnv(options.dataDir, env), signingKeyFromEnv(env), options.name);
}
