/**
 * A domain team ships through the registry while the mesh serves: the gateway picks up each good
 * publish without a restart and without failing a request, refuses nothing it should serve, and
 * keeps serving the last good supergraph when a new one cannot be served.
 *
 * The customers team deploys a second version of its subgraph beside the first (blue/green, on
 * the same warehouse), then publishes it with the registry's command line.
 */
import { fetchSubgraphSdl } from '../gateway/supergraph/supergraph.js';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, visit, type DocumentNode, type ObjectTypeDefinitionNode } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runRegistryCli } from '../gateway/registry/cli.js';
import { DEV_HASH_KEY } from '../policy/masking.js';
import { customers } from '../subgraphs/customers/index.js';
import type { Customer } from '../subgraphs/customers/repository.js';
import { startSubgraphServer, type RunningServer } from '../subgraphs/kit/subgraph-server.js';
import { openFileAuditSink, type AuditSink } from '../policy/audit.js';
import { freePort, startTestMesh, testIdentity, testLog, type TestMesh } from './harness/mesh.js';

let mesh: TestMesh;
let v2: RunningServer;
let v2Audit: AuditSink;

function withCustomerField(typeDefs: DocumentNode, fieldSdl: string): DocumentNode {
  const [field] = (parse(`type X { ${fieldSdl} }`).definitions[0] as ObjectTypeDefinitionNode).fields!;
  return visit(typeDefs, {
    ObjectTypeDefinition: (node) => (node.name.value === 'Customer' ? { ...node, fields: [...(node.fields ?? []), field!] } : undefined),
  });
}

const LOYALTY = '"Loyalty tier, from the segment." loyaltyTier: String @classify(level: "INTERNAL")';

beforeAll(async () => {
  mesh = await startTestMesh();
  v2Audit = await openFileAuditSink({ path: mesh.auditPath('customers-v2') });
  v2 = await startSubgraphServer({
    domain: {
      ...customers,
      typeDefs: withCustomerField(customers.typeDefs, LOYALTY),
      resolvers: {
        ...customers.resolvers,
        Customer: { ...(customers.resolvers.Customer as Record<string, unknown>), loyaltyTier: (customer: Customer) => (customer.segment === 'ENTERPRISE' ? 'GOLD' : 'STANDARD') },
      },
    },
    warehouse: mesh.warehouses.customers!,
    log: testLog,
    identity: testIdentity,
    hashKey: DEV_HASH_KEY,
    audit: v2Audit,
    port: 0,
  });
});

afterAll(async () => {
  await mesh?.stop();
  await v2?.stop();
  await v2Audit?.close();
});

const registry = (...args: string[]) => runRegistryCli([...args, '--registry', mesh.registryUrl], { REGISTRY_USER: 'customers-team' });

/** The SDL a running subgraph serves. */
async function serviceSdl(url: string): Promise<string> {
  return fetchSubgraphSdl({ name: 'subgraph', url });
}

async function readiness(): Promise<any> {
  return (await fetch(new URL('/health/ready', mesh.gateway.url))).json();
}

/** Retries `probe` until it returns true (the gateway polls the registry every 100 ms here). */
async function eventually(probe: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error('not within the time allowed');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const LOYALTY_QUERY = '{ customers(first: 3, orderBy: { field: ID }) { nodes { id segment loyaltyTier } } }';

describe('hot reload through the registry', () => {
  it('makes a published field queryable without a restart, while a steady stream of requests never fails', async () => {
    const before = await readiness();
    expect(before.supergraph.origin).toBe('registry revision 3');
    expect((await mesh.query(LOYALTY_QUERY)).body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');

    const answers: { status: number; errors: unknown }[] = [];
    let streaming = true;
    const stream = Promise.all(
      Array.from({ length: 4 }, async () => {
        while (streaming) {
          const { status, body } = await mesh.query('{ customers(first: 5) { nodes { id name segment orders(first: 2) { nodes { id total } } } } }');
          answers.push({ status, errors: body.errors ?? null });
        }
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, 300));

    const { exitCode, output } = await registry('publish', 'customers', '--introspect', v2.url);
    expect(output).toMatch(/^ACCEPTED: publish customers/);
    expect(output).toContain('Published customers version 2 (registry revision 4)');
    expect(exitCode).toBe(0);

    await eventually(async () => !(await mesh.query(LOYALTY_QUERY)).body.errors);
    await new Promise((resolve) => setTimeout(resolve, 300));
    streaming = false;
    await stream;

    const expected = await mesh.sql<{ id: string; segment: string }>('customers', 'select id, segment from customers order by id limit 3');
    expect((await mesh.query(LOYALTY_QUERY)).body).toEqual({
      data: { customers: { nodes: expected.map(({ id, segment }) => ({ id, segment, loyaltyTier: segment === 'ENTERPRISE' ? 'GOLD' : 'STANDARD' })) } },
    });
    expect(answers.length).toBeGreaterThan(20);
    expect(answers.filter((a) => a.status !== 200 || a.errors !== null)).toEqual([]);
    const after = await readiness();
    expect(after).toMatchObject({ status: 'ready', supergraph: { origin: 'registry revision 4' }, lastReloadFailure: null });
    expect(after.supergraph.version).not.toBe(before.supergraph.version);
    // The files tools read follow the served supergraph.
    await eventually(async () => (await readFile(mesh.apiSchemaPath, 'utf8')).includes('loyaltyTier: String'));
    expect(await readFile(mesh.supergraphPath, 'utf8')).toContain(v2.url);
  });

  it('refuses a subgraph that breaks composition or a governance rule, and the gateway\'s schema is unchanged', async () => {
    const served = await readiness();
    const schemaBefore = await readFile(mesh.apiSchemaPath, 'utf8');
    const sdl = await serviceSdl(v2.url);
    const dir = mesh.dataDir;

    const conflicting = join(dir, 'conflicting.graphql');
    // Customer.id as an Int: finance keys Customer by an ID.
    await writeFile(conflicting, sdl.replace(/(type Customer\b[^{]*\{[^}]*?)\bid: ID!/s, '$1id: Int!'));
    const composition = await registry('publish', 'customers', '--schema', conflicting);
    expect(composition.exitCode).toBe(1);
    expect(composition.output).toMatch(/^REFUSED: publish customers/);
    expect(composition.output).toMatch(/error\s+COMPOSITION_FAILED Customer\.id: \[FIELD_TYPE_MISMATCH\]/);
    expect(composition.output).toContain('Nothing was published; the serving supergraph is unchanged.');

    const loosening = join(dir, 'loosening.graphql');
    await writeFile(loosening, sdl.replace('email: String @classify(level: "CONFIDENTIAL", tags: ["pii"])', 'email: String @classify(level: "PUBLIC", tags: ["pii"])'));
    const governance = await registry('publish', 'customers', '--schema', loosening);
    expect(governance.exitCode).toBe(1);
    expect(governance.output).toMatch(/error\s+GOVERNANCE_RULE_VIOLATION Customer\.email: Customer\.email: tagged "pii" but classified PUBLIC/);

    await new Promise((resolve) => setTimeout(resolve, 400)); // several poll intervals
    expect(await readiness()).toEqual(served);
    expect(await readFile(mesh.apiSchemaPath, 'utf8')).toBe(schemaBefore);
    expect((await registry('history', 'customers')).output.split('\n')).toHaveLength(3); // heading and two versions
  });

  it('refuses removing a field a client uses (recorded by the gateway), naming it; rollback restores the previous version', async () => {
    // An operations dashboard starts using the new field; the gateway records it.
    const used = await mesh.query(LOYALTY_QUERY, undefined, { 'apollographql-client-name': 'ops-dashboard' });
    expect(used.body.errors).toBeUndefined();
    // Going back to the first subgraph would remove Customer.loyaltyTier: refused once the gateway's
    // usage batch (every 200 ms here) has landed in the registry, polled for, not slept on.
    const check = async () => registry('check', 'customers', '--introspect', mesh.subgraphs.customers!.url);
    await expect.poll(async () => (await check()).output, { timeout: 15_000, interval: 200 }).toMatch(/Used by claimed:ops-dashboard/);
    const refused = await check();
    expect(refused.exitCode).toBe(1);
    // This test's own queries, which name no client, count too (as `unnamed`).
    expect(refused.output).toMatch(/error\s+BREAKING_CHANGE_IN_USE Customer\.loyaltyTier: Field 'loyaltyTier' was removed from object type 'Customer' Used by claimed:ops-dashboard, unnamed\./);

    // The team decides to roll back anyway: the rollback warns, and the gateway follows.
    const rollback = await registry('rollback', 'customers');
    expect(rollback.exitCode).toBe(0);
    expect(rollback.output).toMatch(/warning\s+BREAKING_CHANGE_IN_USE Customer\.loyaltyTier/);
    expect(rollback.output).toContain('Published customers version 3 (registry revision 5)');
    await eventually(async () => (await mesh.query(LOYALTY_QUERY)).body.errors?.[0]?.extensions?.code === 'GRAPHQL_VALIDATION_FAILED');
    expect((await readiness()).supergraph.origin).toBe('registry revision 5');
    const history = await registry('history', 'customers');
    expect(history.output).toMatch(/\* v3 .* customers-team .*\(rollback to version 1\)/);
    expect(history.output).toMatch(/ {2}v2 .* customers-team /);
  });

  it('keeps serving the last good supergraph when a publish points at a subgraph that is not up, and says so', async () => {
    const served = await readiness();
    const down = `http://127.0.0.1:${await freePort()}/graphql`;
    const sdlFile = join(mesh.dataDir, 'customers-v2.graphql');
    await writeFile(sdlFile, await serviceSdl(v2.url));
    const published = await registry('publish', 'customers', '--schema', sdlFile, '--url', down);
    expect(published.exitCode).toBe(0);

    await eventually(async () => (await readiness()).lastReloadFailure !== null);
    const ready = await readiness();
    expect(ready.status).toBe('ready');
    expect(ready.supergraph).toEqual(served.supergraph);
    expect(ready.lastReloadFailure).toMatchObject({ failures: 1, error: expect.stringContaining(`customers (${down}) did not answer`) });
    expect((await mesh.query('{ customers(first: 1) { nodes { id } } }')).body.errors).toBeUndefined();

    // Fixed by rolling back to the version that serves: the gateway follows again.
    expect((await registry('rollback', 'customers', '--to', '3')).exitCode).toBe(0);
    await eventually(async () => (await readiness()).supergraph.origin === 'registry revision 7');
  });
});
