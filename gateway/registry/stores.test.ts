/**
 * The contract every registry store keeps, run over the directory store and the PostgreSQL store
 * (each test on a fresh directory or schema).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { onPostgres, TEST_POSTGRES } from '../../test/harness/postgres.js';
import { RegistryError } from './codes.js';
import { openFileRegistry } from './file-registry.js';
import { openPostgresRegistry } from './postgres-registry.js';
import type { Registry, RegistryCommit } from './registry.js';

function commit(name: string, sdl: string, url = `http://${name}.internal/graphql`, dataProducts: RegistryCommit['subgraph']['dataProducts'] = null): RegistryCommit {
  return {
    subgraph: { name, url, sdl, publishedBy: 'ann', note: null, dataProducts },
    supergraphSdl: `# supergraph with ${name}: ${sdl}`,
    apiSchemaSdl: 'type Query { a: Int }',
    supergraphVersion: sdl.slice(0, 12),
  };
}

const publish = (registry: Registry, name: string, sdl: string) =>
  registry.transaction(async () => ({ commit: commit(name, sdl), result: 'done' }));

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

const stores: Record<string, () => Promise<Registry>> = {
  directory: async () => {
    const dir = await mkdtemp(join(tmpdir(), 'registry-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    return openFileRegistry(dir);
  },
  PostgreSQL: async () => {
    const schema = `registry_test_${randomUUID().slice(0, 8)}`;
    const registry = await openPostgresRegistry({ connectionString: `${TEST_POSTGRES}/test`, schema });
    cleanups.push(async () => {
      await registry.close();
      await onPostgres(`DROP SCHEMA IF EXISTS ${schema} CASCADE`, 'test');
    });
    return registry;
  },
};

for (const [kind, open] of Object.entries(stores)) {
  describe(`the ${kind} registry store`, () => {
    it('starts empty, then keeps every version and the serving state', async () => {
      const registry = await open();
      expect(await registry.state()).toBeNull();
      expect(await registry.revision()).toBe(0);
      expect(await registry.history('customers')).toEqual([]);

      const first = await publish(registry, 'customers', 'type Query { a: Int }');
      expect(first).toMatchObject({ result: 'done', written: { name: 'customers', version: 1, publishedBy: 'ann', note: null } });
      await publish(registry, 'products', 'type Query { p: Int }');
      await publish(registry, 'customers', 'type Query { a: Int b: Int }');

      const state = (await registry.state())!;
      expect(state.revision).toBe(3);
      expect(await registry.revision()).toBe(3);
      expect(state.subgraphs.map((s) => [s.name, s.version])).toEqual([
        ['customers', 2],
        ['products', 1],
      ]);
      expect(state.supergraphSdl).toBe('# supergraph with customers: type Query { a: Int b: Int }');
      const history = await registry.history('customers');
      expect(history.map((v) => v.version)).toEqual([2, 1]);
      expect(history[1]).toMatchObject({ sdl: 'type Query { a: Int }', sdlHash: expect.stringMatching(/^[0-9a-f]{64}$/) });
      expect(new Date(history[0]!.publishedAt).getTime()).toBeGreaterThan(Date.now() - 60_000);
    });

    it('keeps the data product documents of every version', async () => {
      const registry = await open();
      const documents = (version: string) => [
        {
          id: 'customers.customers',
          odps: { id: 'customers.customers', name: 'Customers', version, status: 'active', domain: 'customers', description: { purpose: 'p' }, tags: ['ü', "it's"], outputPorts: [], team: { members: [] } },
          odcs: { id: 'customers.customers.contract', schema: [], slaProperties: [{ property: 'availability', value: 99.5, unit: '%' }] },
        },
      ];
      await registry.transaction(async () => ({ commit: commit('customers', 'type Query { a: Int }', undefined, documents('1.0.0')), result: null }));
      await registry.transaction(async () => ({ commit: commit('customers', 'type Query { a: Int b: Int }', undefined, documents('1.1.0')), result: null }));
      await publish(registry, 'products', 'type Query { p: Int }');
      const history = await registry.history('customers');
      expect(history.map((v) => v.dataProducts)).toEqual([documents('1.1.0'), documents('1.0.0')]);
      const state = (await registry.state())!;
      expect(state.subgraphs.find((s) => s.name === 'customers')!.dataProducts).toEqual(documents('1.1.0'));
      expect(state.subgraphs.find((s) => s.name === 'products')!.dataProducts).toBeNull();
    });

    it('writes nothing when the work returns no commit, or throws', async () => {
      const registry = await open();
      await publish(registry, 'customers', 'type Query { a: Int }');
      expect(await registry.transaction(async () => ({ commit: null, result: 'refused' }))).toEqual({ result: 'refused', written: null });
      await expect(
        registry.transaction(async () => {
          throw new Error('check crashed');
        }),
      ).rejects.toThrow('check crashed');
      expect(await registry.revision()).toBe(1);
      expect((await registry.history('customers')).length).toBe(1);
    });

    it('keeps owners: claimed with a publish, set or moved by an owner change, seen by the next writer', async () => {
      const registry = await open();
      expect(await registry.owners()).toEqual({});
      await registry.transaction(async () => ({ commit: { ...commit('shipping', 'type Query { s: Int }'), owner: { team: 'logistics', setBy: 'ann (team logistics)' } }, result: null }));
      await publish(registry, 'customers', 'type Query { a: Int }');
      const owners = await registry.owners();
      expect(Object.keys(owners)).toEqual(['shipping']);
      expect(owners.shipping).toMatchObject({ team: 'logistics', setBy: 'ann (team logistics)' });
      expect(Date.parse(owners.shipping!.setAt)).not.toBeNaN();
      const revision = await registry.revision();
      await registry.transaction(async () => ({ commit: { setOwner: 'customers', owner: { team: 'crm', setBy: 'gov' } }, result: null }));
      // An owner change publishes nothing: the gateway has nothing to reload.
      expect(await registry.revision()).toBe(revision);
      let seen: Record<string, unknown> = {};
      await registry.transaction(async (_state, known) => ((seen = known), { commit: null, result: null }));
      expect(Object.fromEntries(Object.entries(seen).map(([name, owner]) => [name, (owner as { team: string }).team]))).toEqual({ customers: 'crm', shipping: 'logistics' });
    });

    it('removes a subgraph from the serving state, one revision on; its history stays and its next version continues it', async () => {
      const registry = await open();
      await publish(registry, 'customers', 'type Query { a: Int }');
      await publish(registry, 'products', 'type Query { p: Int }');
      await registry.transaction(async () => ({ commit: { remove: 'products', supergraphSdl: '# customers only', apiSchemaSdl: 'type Query { a: Int }', supergraphVersion: 'only-c' }, result: null }));
      const state = (await registry.state())!;
      expect({ revision: state.revision, subgraphs: state.subgraphs.map((s) => s.name), supergraph: state.supergraphSdl }).toEqual({ revision: 3, subgraphs: ['customers'], supergraph: '# customers only' });
      expect((await registry.history('products')).map((v) => v.version)).toEqual([1]);
      await publish(registry, 'products', 'type Query { p2: Int }');
      expect((await registry.history('products')).map((v) => v.version)).toEqual([2, 1]);
      await expect(registry.transaction(async () => ({ commit: { remove: 'nothing', supergraphSdl: '', apiSchemaSdl: '', supergraphVersion: '' }, result: null }))).rejects.toMatchObject({ code: 'REGISTRY_UNKNOWN_SUBGRAPH' });
    });

    it('runs concurrent publishes one after the other: no version is lost or written twice', async () => {
      const registry = await open();
      const seen: number[] = [];
      await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          registry.transaction(async (state) => {
            seen.push(state?.revision ?? 0);
            return { commit: commit('customers', `type Query { f${i}: Int }`), result: i };
          }),
        ),
      );
      // Each transaction saw the state the previous one wrote.
      expect(seen.sort()).toEqual([0, 1, 2, 3, 4, 5]);
      expect((await registry.history('customers')).map((v) => v.version)).toEqual([6, 5, 4, 3, 2, 1]);
      expect(await registry.revision()).toBe(6);
    });

    it('adds usage counts per client and coordinate, and keeps the newest sighting', async () => {
      const registry = await open();
      await registry.recordUsage([
        { client: 'web', coordinate: 'Customer.email', count: 2, lastSeen: '2026-01-01T00:00:00.000Z' },
        { client: 'web', coordinate: 'Customer.email', count: 3, lastSeen: '2026-03-01T00:00:00.000Z' },
        { client: 'bi', coordinate: 'Query.orders', count: 1, lastSeen: '2025-01-01T00:00:00.000Z' },
      ]);
      await registry.recordUsage([{ client: 'web', coordinate: 'Customer.email', count: 1, lastSeen: '2026-02-01T00:00:00.000Z' }]);
      expect(await registry.usage(new Date('2026-01-15T00:00:00Z'))).toEqual([
        { client: 'web', coordinate: 'Customer.email', count: 6, lastSeen: '2026-03-01T00:00:00.000Z' },
      ]);
      expect((await registry.usage(new Date(0))).map((r) => r.client).sort()).toEqual(['bi', 'web']);
    });

    it('registers client documents, replacing one of the same name', async () => {
      const registry = await open();
      await registry.registerDocuments([
        { client: 'web-app', name: 'list.graphql', body: '{ a }', registeredBy: 'ann' },
        { client: 'web-app', name: 'detail.graphql', body: '{ b }', registeredBy: 'ann' },
      ]);
      await registry.registerDocuments([{ client: 'web-app', name: 'list.graphql', body: '{ c }', registeredBy: 'bob' }]);
      const documents = (await registry.documents()).sort((a, b) => a.name.localeCompare(b.name));
      expect(documents.map((d) => [d.client, d.name, d.body, d.registeredBy])).toEqual([
        ['web-app', 'detail.graphql', '{ b }', 'ann'],
        ['web-app', 'list.graphql', '{ c }', 'bob'],
      ]);
    });

    it('refuses names that could escape its storage', async () => {
      const registry = await open();
      for (const name of ['../etc', 'a/b', 'UPPER', '', 'x'.repeat(64), 'a\u0000b']) {
        await expect(registry.history(name)).rejects.toThrow(RegistryError);
        await expect(publish(registry, name, 'type Query { a: Int }')).rejects.toMatchObject({ code: 'REGISTRY_INVALID_NAME' });
      }
      for (const client of ['../../x', '.hidden', 'a b']) {
        await expect(registry.registerDocuments([{ client, name: 'n', body: '{ a }', registeredBy: 'ann' }])).rejects.toMatchObject({
          code: 'REGISTRY_INVALID_NAME',
        });
      }
      expect(await registry.revision()).toBe(0);
    });
  });
}

describe('the directory registry store', () => {
  it('shows no version that a crash left written but never committed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'registry-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const registry = await openFileRegistry(dir);
    await publish(registry, 'customers', 'type Query { a: Int }');
    // A publish that wrote its version file and died before writing the state.
    await writeFile(join(dir, 'subgraphs', 'customers', '000002.json'), JSON.stringify({ name: 'customers', version: 2, sdl: 'half' }));
    expect((await registry.history('customers')).map((v) => v.version)).toEqual([1]);
    // The next publish takes version 2 (replacing the orphan) and commits it.
    await publish(registry, 'customers', 'type Query { b: Int }');
    const history = await registry.history('customers');
    expect(history.map((v) => [v.version, v.sdl])).toEqual([
      [2, 'type Query { b: Int }'],
      [1, 'type Query { a: Int }'],
    ]);
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('reports a directory it cannot create with a code', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'registry-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'a-file'), 'not a directory');
    await expect(openFileRegistry(join(dir, 'a-file', 'registry'))).rejects.toMatchObject({ code: 'REGISTRY_UNAVAILABLE' });
  });
});

describe('the PostgreSQL registry store', () => {
  it('reports an unreachable server with a code and without the password', async () => {
    const error = await openPostgresRegistry({ connectionString: 'postgres://mesh:s3cret@127.0.0.1:1/none', schema: 'registry' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'REGISTRY_UNAVAILABLE' });
    expect(String((error as Error).message)).not.toContain('s3cret');
  });

  it('refuses a schema name that is not a plain SQL identifier', async () => {
    for (const schema of ['registry; drop schema public cascade', 'Registry', '"x"']) {
      await expect(openPostgresRegistry({ connectionString: `${TEST_POSTGRES}/test`, schema })).rejects.toMatchObject({ code: 'REGISTRY_UNAVAILABLE' });
    }
  });

  it('keeps serving after the server drops its connections (a restart): no uncaught error, the next call reconnects', async () => {
    const schema = `registry_test_${randomUUID().slice(0, 8)}`;
    const registry = await openPostgresRegistry({ connectionString: `${TEST_POSTGRES}/test`, schema });
    cleanups.push(async () => {
      await registry.close();
      await onPostgres(`DROP SCHEMA IF EXISTS ${schema} CASCADE`, 'test');
    });
    await publish(registry, 'customers', 'type Query { a: Int }');
    expect(await registry.revision()).toBe(1);
    // Every connection this registry holds, idle in its pool, is terminated by the server.
    await onPostgres(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%${schema}%' AND pid <> pg_backend_pid()`, 'test');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await registry.state())?.revision).toBe(1);
    await publish(registry, 'customers', 'type Query { a: Int b: Int }');
    expect(await registry.revision()).toBe(2);
  });
});
