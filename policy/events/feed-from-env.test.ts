/** Which change feed the environment names, and what it refuses. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { changeFeedFromEnv, changeFeedSettingsFromEnv, eventsNatsUrlFromEnv } from './feed-from-env.js';

it('takes nats:// servers, one or several, and refuses anything else, coded, naming the value', () => {
  expect(eventsNatsUrlFromEnv({})).toBeNull();
  expect(eventsNatsUrlFromEnv({ EVENTS_NATS_URL: '  ' })).toBeNull();
  expect(eventsNatsUrlFromEnv({ EVENTS_NATS_URL: 'nats://127.0.0.1:4222' })).toBe('nats://127.0.0.1:4222');
  expect(eventsNatsUrlFromEnv({ EVENTS_NATS_URL: 'nats://a:4222,nats://b:4222' })).toBe('nats://a:4222,nats://b:4222');
  for (const bad of ['http://127.0.0.1:4222', 'nats://', '127.0.0.1:4222', 'nats://a:4222,redis://b:6379']) {
    expect(() => eventsNatsUrlFromEnv({ EVENTS_NATS_URL: bad })).toThrow(expect.objectContaining({ code: 'EVENT_INVALID', message: expect.stringContaining('EVENTS_NATS_URL must list nats:// URLs') }));
  }
});

it('takes a subject prefix of plain tokens, and refuses wildcards, spaces and empty tokens', () => {
  expect(changeFeedSettingsFromEnv('/data', { EVENTS_SUBJECT_PREFIX: 'acme.mesh-changes' })).toMatchObject({ subjectPrefix: 'acme.mesh-changes' });
  for (const bad of ['mesh.>', 'mesh.*', 'mesh changes', 'mesh..changes', '.mesh', 'mesh/changes']) {
    expect(() => changeFeedSettingsFromEnv('/data', { EVENTS_SUBJECT_PREFIX: bad })).toThrow(expect.objectContaining({ code: 'EVENT_INVALID', message: expect.stringContaining('EVENTS_SUBJECT_PREFIX') }));
  }
});

it('opens the embedded log in the data folder without EVENTS_NATS_URL, and refuses the development key in production', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'feed-env-'));
  try {
    expect(changeFeedSettingsFromEnv(dataDir, {})).toEqual({ dataDir, natsUrl: null });
    const feed = await changeFeedFromEnv({ dataDir, env: {} });
    expect(feed.kind).toBe('file');
    await feed.close();
    // A production start without a signing key of its own is refused before any feed opens.
    await expect(changeFeedFromEnv({ dataDir, env: { NODE_ENV: 'production' } })).rejects.toThrow(/SUBGRAPH_SIGNING_KEY must be set in production/);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});
