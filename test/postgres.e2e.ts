/**
 * A PostgreSQL warehouse that goes away while the mesh runs: clean coded errors that leak neither
 * SQL nor credentials, no crash, no hung request, and recovery by itself when it comes back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestMesh, type TestMesh } from './harness/mesh.js';
import { onPostgres } from './harness/postgres.js';

let mesh: TestMesh;
let database: string;


beforeAll(async () => {
  mesh = await startTestMesh({ warehouse: 'postgres' });
  database = /\/(mesh_test_\w+)\?/.exec(mesh.warehouses.finance!.location)![1]!;
});

afterAll(async () => {
  await onPostgres(`ALTER DATABASE ${database} ALLOW_CONNECTIONS true`).catch(() => undefined);
  await mesh?.stop();
});

const QUERY = '{ orders(first: 3) { totalCount nodes { id } } categories { id } }';

describe('a PostgreSQL warehouse that goes away', () => {
  it('answers with WAREHOUSE_UNAVAILABLE while it is down, and recovers by itself', async () => {
    const before = await mesh.query<any>(QUERY);
    expect(before.body.errors).toBeUndefined();

    // The database refuses new connections and every open one is terminated.
    await onPostgres(`ALTER DATABASE ${database} ALLOW_CONNECTIONS false`);
    await onPostgres(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${database}' AND pid <> pg_backend_pid()`);
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        const down = await mesh.query<any>(QUERY);
        expect(down.status).toBe(200);
        expect(down.body.data.orders).toBeNull();
        expect(down.body.data.categories).toBeNull();
        const codes = new Set(down.body.errors!.map((e: any) => `${e.extensions.code} ${e.extensions.serviceName}`));
        expect(codes).toEqual(new Set(['WAREHOUSE_UNAVAILABLE finance', 'WAREHOUSE_UNAVAILABLE products']));
        // Nothing about the database reaches the client: no SQL, no URL, no user.
        expect(JSON.stringify(down.body)).not.toMatch(/select|postgres|127\.0\.0\.1|mesh_test|terminat/i);
      }
      const ready = await fetch(new URL('/health/ready', mesh.subgraphs.finance!.url));
      expect(ready.status).toBe(503);
    } finally {
      await onPostgres(`ALTER DATABASE ${database} ALLOW_CONNECTIONS true`);
    }

    // Back: the subgraphs reconnect on their own, with no restart.
    const after = await mesh.query<any>(QUERY);
    expect(after.body).toEqual(before.body);
    expect((await fetch(new URL('/health/ready', mesh.subgraphs.finance!.url))).status).toBe(200);
  });
});
