import { parse } from 'graphql';
import { buildSchema } from 'graphql';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ANONYMOUS, type Principal } from '../../policy/principal.js';
import type { Registry, UsageRecord } from './registry.js';
import { clientNameOf, MAX_CLIENTS_PER_FLUSH, UNNAMED_CLIENT, useUsageRecording } from './usage-recording.js';

const schema = buildSchema('type Query { a: Int b(x: Int): Int }');
const silent = pino({ level: 'silent' });

/** A registry that keeps what it is given, and fails while `failing` is set. */
function fakeRegistry() {
  const written: UsageRecord[] = [];
  const state = { failing: false };
  const registry = {
    async recordUsage(records: readonly UsageRecord[]) {
      if (state.failing) throw new Error('registry down');
      written.push(...records);
    },
  } as unknown as Registry;
  return { registry, written, state };
}

/** Runs one operation through the plugin's hooks, as Apollo Server would (anonymous unless a principal is given). */
async function operation(plugin: ReturnType<typeof useUsageRecording>, client: string | null, query: string, principal: Principal = ANONYMOUS) {
  const headers = new Map<string, string>(client === null ? [] : [['apollographql-client-name', client]]);
  const hooks = await plugin.requestDidStart!({ request: { http: { headers } }, contextValue: { principal } } as never);
  await (hooks as { didResolveOperation: (c: unknown) => Promise<void> }).didResolveOperation({ document: parse(query), schema });
}

describe('usage recording', () => {
  it('takes a client name only of a safe shape, and never a header for a verified client', () => {
    const app: Principal = { ...ANONYMOUS, anonymous: false, subject: 's', client: 'crm-app' };
    expect(clientNameOf(app, null)).toBe('crm-app');
    // A verified client is recorded as itself, whatever header it sends.
    expect(clientNameOf(app, 'other-app')).toBe('crm-app');
    // A header alone is a claim, recorded apart from the app it names.
    expect(clientNameOf(ANONYMOUS, 'crm-app')).toBe('claimed:crm-app');
    for (const bad of [null, undefined, '', '../x', 'a'.repeat(129), 'naïve', 'x;drop']) expect(clientNameOf(ANONYMOUS, bad)).toBe(UNNAMED_CLIENT);
  });

  it('counts coordinates per client and writes them at each flush', async () => {
    const { registry, written } = fakeRegistry();
    const plugin = useUsageRecording({ registry, flushMs: 60_000, log: silent });
    const app: Principal = { ...ANONYMOUS, anonymous: false, subject: 's', client: 'crm-app' };
    await operation(plugin, null, '{ a b(x: 1) }', app);
    await operation(plugin, null, '{ a }', app);
    await operation(plugin, 'crm-app', '{ a }');
    await operation(plugin, null, '{ a }');
    await plugin.flush();
    const summary = written.map((r) => [r.client, r.coordinate, r.count]).sort();
    expect(summary).toEqual([
      ['claimed:crm-app', 'Query.a', 1],
      ['crm-app', 'Query.a', 2],
      ['crm-app', 'Query.b', 1],
      ['crm-app', 'Query.b.x', 1],
      [UNNAMED_CLIENT, 'Query.a', 1],
    ]);
  });

  it('bounds the clients it holds between flushes, whatever callers claim', async () => {
    const { registry, written } = fakeRegistry();
    const plugin = useUsageRecording({ registry, flushMs: 60_000, log: silent });
    for (let i = 0; i < MAX_CLIENTS_PER_FLUSH + 50; i++) await operation(plugin, `client-${i}`, '{ a }');
    await plugin.flush();
    const clients = new Set(written.map((r) => r.client));
    expect(clients.size).toBe(MAX_CLIENTS_PER_FLUSH + 1);
    expect(written.find((r) => r.client === 'other-clients')).toMatchObject({ coordinate: 'Query.a', count: 50 });
  });

  it('keeps what it could not write, and writes it at the next flush', async () => {
    const { registry, written, state } = fakeRegistry();
    const plugin = useUsageRecording({ registry, flushMs: 60_000, log: silent });
    await operation(plugin, 'bi-tool', '{ a }');
    state.failing = true;
    await plugin.flush();
    expect(written).toEqual([]);
    state.failing = false;
    await operation(plugin, 'bi-tool', '{ a }');
    await plugin.flush();
    expect(written).toEqual([expect.objectContaining({ client: 'claimed:bi-tool', coordinate: 'Query.a', count: 2 })]);
  });
});
