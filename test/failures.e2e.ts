/**
 * How the mesh behaves when parts fail: a subgraph that is down, a warehouse that breaks, a gateway
 * that starts before its subgraphs, and subgraphs that do not compose.
 */
import { once } from 'node:events';
import { mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApolloServer } from '@apollo/server';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { expressMiddleware } from '@as-integrations/express5';
import express from 'express';
import { concatAST, GraphQLError, GraphQLScalarType, Kind, parse, print, type DocumentNode } from 'graphql';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SubgraphEndpoint } from '../gateway/config.js';
import { CompositionFailedError, GovernanceViolationError } from '../gateway/supergraph/supergraph.js';
import { policySchemaExtension } from '../policy/directives.js';
import { startSubgraphServer } from '../subgraphs/kit/subgraph-server.js';
import { DEV_HASH_KEY } from '../policy/masking.js';
import { domains } from '../subgraphs/domains.js';
import { freePort, logLines, postGraphQL, startTestGateway, startTestMesh, startupFailureOf, testGatewayConfig, testIdentity, testLog, tokenFor, type TestMesh } from './harness/mesh.js';

function gatewayConfig(dataDir: string, subgraphs: readonly SubgraphEndpoint[], composeTimeoutMs = 20_000) {
  return testGatewayConfig({ dataDir, supergraph: { kind: 'subgraphs', subgraphs }, overrides: { composeTimeoutMs } });
}

describe('when parts of a running mesh fail', () => {
  let mesh: TestMesh;

  beforeAll(async () => {
    mesh = await startTestMesh();
  });

  afterAll(async () => {
    await mesh?.stop();
  });

  it('a warehouse that is gone gives a coded error naming the subgraph, and the rest of the answer', async () => {
    // The products warehouse goes away under the running subgraph: closed, and its file gone.
    await mesh.warehouses.products!.close();
    const file = join(mesh.dataDir, 'warehouses', 'products.duckdb');
    await rename(file, `${file}.gone`);
    const { status, body } = await mesh.query<any>('{ categories { id } customers(first: 1) { nodes { id } } }');
    expect(status).toBe(200);
    expect(body.data.customers.nodes).toHaveLength(1);
    expect(body.data.categories).toBeNull();
    expect(body.errors).toHaveLength(1);
    const [error] = body.errors!;
    expect(error).toEqual({
      message: 'The products warehouse is unavailable; retry shortly.',
      path: ['categories'],
      extensions: { code: 'WAREHOUSE_UNAVAILABLE', serviceName: 'products', requestId: expect.any(String) },
    });
    // Nothing about the driver, the SQL or the file reaches the client.
    expect(JSON.stringify(body)).not.toMatch(/duckdb|select|driver|\.duckdb|destroy/i);
    const ready = await fetch(new URL('/health/ready', mesh.subgraphs.products!.url));
    expect(ready.status).toBe(503);
  });

  it('a subgraph that is down: coded error with its name, no URL, and the other subgraphs still answer', async () => {
    await mesh.stopSubgraph('customers');
    const { status, body } = await mesh.query<any>('{ orders(first: 2) { nodes { id total customer { name } } } }');
    expect(status).toBe(200);
    expect(body.data.orders.nodes.map((o: any) => o.total).every((t: number) => t > 0)).toBe(true);
    expect(body.errors).toEqual([
      {
        message: 'The customers subgraph could not be reached.',
        extensions: { code: 'SUBGRAPH_UNAVAILABLE', serviceName: 'customers', requestId: expect.any(String) },
      },
    ]);
    expect(JSON.stringify(body)).not.toContain(new URL(mesh.subgraphs.customers!.url).port);
  });

  it('a subgraph deployed with a schema other than the published one: its part is a coded platform error, the rest is served', async () => {
    const customers = domains.find((domain) => domain.name === 'customers')!;
    const sdl = print(customers.typeDefs);
    // The customers team deploys a version without `phone` and without the ENTERPRISE segment.
    const drifted = { ...customers, typeDefs: parse(sdl.replace(/\n\s*"[^"\n]*"\s*\n\s*phone: String[^\n]*/, '').replace(/\n\s*ENTERPRISE\n/, '\n')) };
    expect(print(drifted.typeDefs)).not.toMatch(/\bphone\b|ENTERPRISE/);
    const server = await startSubgraphServer({
      domain: drifted,
      warehouse: mesh.warehouses.customers!,
      log: testLog,
      identity: testIdentity,
      hashKey: DEV_HASH_KEY,
      audit: mesh.audits.customers!,
      port: Number(new URL(mesh.subgraphs.customers!.url).port),
    });
    try {
      const { status, body } = await mesh.query<any>('{ orders(first: 2) { nodes { id total customer { id phone } } } }');
      expect(status).toBe(200);
      expect(body.data.orders.nodes.map((o: any) => o.total).every((t: number) => t > 0)).toBe(true);
      expect(body.errors).toEqual([
        {
          message: expect.stringContaining('The customers subgraph is not serving the schema the mesh was composed from'),
          extensions: { code: 'SUBGRAPH_SCHEMA_MISMATCH', serviceName: 'customers', requestId: expect.any(String) },
        },
      ]);
      // The caller's document was valid: nothing tells it otherwise, or names the drifted field.
      expect(JSON.stringify(body)).not.toMatch(/GRAPHQL_VALIDATION_FAILED|Cannot query field/);
      expect(logLines.some((line) => line.includes('serves a schema other than the supergraph') && line.includes('Cannot query field'))).toBe(true);
      // An enum value it no longer has is its drift too, not the caller's mistake.
      const segment = await mesh.query<any>('{ customers(first: 2, filter: { segment: [ENTERPRISE] }) { nodes { id } } }');
      expect(segment.status).toBe(200);
      expect(segment.body.errors?.[0]?.extensions).toMatchObject({ code: 'SUBGRAPH_SCHEMA_MISMATCH', serviceName: 'customers' });
      // What the drifted subgraph still serves as published is answered.
      const unaffected = await mesh.query<any>('{ customers(first: 2) { nodes { id name } } }');
      expect(unaffected.body.errors).toBeUndefined();
      expect(unaffected.body.data.customers.nodes).toHaveLength(2);
    } finally {
      await server.stop();
    }
  });
});

describe('starting up', () => {
  it('is live but not ready until every subgraph answers, then composes and serves', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'mesh-startup-'));
    const port = await freePort();
    // The gateway starts first, pointed at a customers subgraph that is not there yet.
    const subgraph = parse(`
      extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key"])
      type Query { hello: String }
    `);
    const gateway = await startTestGateway(gatewayConfig(dataDir, [{ name: 'late', url: `http://127.0.0.1:${port}/graphql` }]));
    try {
      const base = new URL(gateway.url);
      expect((await fetch(new URL('/health/live', base))).status).toBe(200);
      const notReady = await fetch(new URL('/health/ready', base));
      expect(notReady.status).toBe(503);
      expect(await notReady.json()).toMatchObject({ status: 'composing' });
      const early = await postGraphQL(gateway.url, '{ hello }');
      expect(early.status).toBe(503);
      expect(early.body.errors?.[0]?.extensions?.code).toBe('GATEWAY_NOT_READY');

      const late = await serveSubgraph(subgraph, { Query: { hello: () => 'world' } }, port);
      try {
        await gateway.ready;
        expect((await fetch(new URL('/health/ready', base))).status).toBe(200);
        // An unclassified field is RESTRICTED (deny by default): closed to anonymous callers,
        // open to a principal that meets the strictest rule.
        const anonymous = await postGraphQL(gateway.url, '{ hello }');
        expect(anonymous.body.data).toEqual({ hello: null });
        expect(anonymous.body.errors?.[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', coordinate: 'Query.hello', level: 'RESTRICTED' });
        const steward = await postGraphQL(gateway.url, '{ hello }', undefined, { authorization: `Bearer ${tokenFor()}` });
        expect(steward.body).toEqual({ data: { hello: 'world' } });
      } finally {
        await gateway.stop();
        await late.stop();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('subgraphs that do not compose: the gateway reports why and never serves', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'mesh-compose-'));
    const a = await serveSubgraph(
      parse(`extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key"])
        type Query { customer(id: ID!): Customer }
        type Customer @key(fields: "id") { id: ID! name: String! }`),
      { Query: { customer: () => null } },
    );
    const b = await serveSubgraph(
      parse(`extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key"])
        type Query { other: Customer }
        type Customer @key(fields: "id") { id: ID! name: Int! }`),
      { Query: { other: () => null } },
    );
    const gateway = await startTestGateway(gatewayConfig(dataDir, [{ name: 'a', url: a.url }, { name: 'b', url: b.url }]));
    try {
      const failure = await gateway.ready.catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(CompositionFailedError);
      expect((failure as Error).message).toMatch(/Customer\.name/);
      const readiness = await fetch(new URL('/health/ready', gateway.url));
      expect(readiness.status).toBe(503);
      expect(await readiness.json()).toMatchObject({ status: 'failed', error: expect.stringMatching(/Customer\.name/) });
      expect((await postGraphQL(gateway.url, '{ __typename }')).status).toBe(503);
    } finally {
      await gateway.stop();
      await a.stop();
      await b.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('gives up after the compose timeout, naming the subgraph that never answered', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'mesh-timeout-'));
    const port = await freePort();
    const gateway = await startTestGateway(gatewayConfig(dataDir, [{ name: 'ghost', url: `http://127.0.0.1:${port}/graphql` }], 1_200));
    try {
      const failure = (await gateway.ready.catch((error: unknown) => error)) as Error;
      expect(failure.message).toMatch(/did not answer within 1200 ms: ghost/);
    } finally {
      await gateway.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

/** A small Federation 2 subgraph that is not one of ours, over real HTTP. */
async function serveSubgraph(
  typeDefs: DocumentNode,
  resolvers: Record<string, Record<string, () => unknown>>,
  port = 0,
): Promise<{ url: string; stop(): Promise<void> }> {
  const apollo = new ApolloServer({ schema: buildSubgraphSchema([{ typeDefs, resolvers }]) });
  await apollo.start();
  const app = express().use('/graphql', express.json(), expressMiddleware(apollo));
  const server = app.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`,
    async stop() {
      await apollo.stop();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('governance rules at start-up and composition', () => {
  // A domain that would open a pii field to every signed-in principal, with a mask that cannot fit.
  const loosening = parse(`
    type Query {
      customerEmails: [String] @classify(level: "INTERNAL", tags: ["pii"])
      active: Boolean @classify(level: "INTERNAL") @mask(strategy: "DATE_YEAR")
    }
  `);
  const violations = [
    /Query\.customerEmails: tagged "pii" but classified INTERNAL, below the global minimum CONFIDENTIAL/,
    /Query\.active: @mask\(strategy: DATE_YEAR\) cannot mask it: DATE_YEAR does not fit a Boolean field/,
  ];

  it('a subgraph that loosens a global rule does not start, and says which field and rule', async () => {
    const rogue = { name: 'rogue', typeDefs: loosening, resolvers: {}, warehouseVersion: 1, tables: [], dataProducts: [], createRepository: () => ({}), ingest: async () => ({}) };
    const failure = (await startupFailureOf(rogue, { hashKey: 'k'.repeat(32) })) as Error;
    for (const violation of violations) expect(failure.message).toMatch(violation);
  });

  it('the gateway refuses to compose it, naming the field and the rule, and never serves', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'mesh-governance-'));
    const rogue = await serveSubgraph(
      concatAST([parse(policySchemaExtension(['@key'])), loosening]),
      { Query: { customerEmails: () => ['someone@example.com'], active: () => true } },
    );
    const gateway = await startTestGateway(gatewayConfig(dataDir, [{ name: 'rogue', url: rogue.url }]));
    try {
      const failure = (await gateway.ready.catch((error: unknown) => error)) as Error;
      expect(failure).toBeInstanceOf(GovernanceViolationError);
      for (const violation of violations) expect(failure.message).toMatch(violation);
      expect((await postGraphQL(gateway.url, '{ customerEmails }')).status).toBe(503);
    } finally {
      await gateway.stop();
      await rogue.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('a custom scalar the gateway cannot check', () => {
  it("is checked by its subgraph: a value it refuses is the caller's error, a 400 with the subgraph's message", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'mesh-scalar-'));
    // `Sku` declares no @specifiedBy the gateway knows: only the subgraph can tell a bad one.
    const sku = new GraphQLScalarType({
      name: 'Sku',
      serialize: (value) => value,
      parseValue: (value) => value,
      parseLiteral(node) {
        if (node.kind !== Kind.STRING || !/^SKU-\d{6}$/.test(node.value)) throw new GraphQLError(`Value is not a valid Sku: ${print(node)}`);
        return node.value;
      },
    });
    const other = await serveSubgraph(
      concatAST([parse(policySchemaExtension(['@key'])), parse('scalar Sku\ntype Query { label(sku: Sku!): String @classify(level: "PUBLIC") }')]),
      { Sku: sku, Query: { label: () => 'a label' } } as unknown as Record<string, Record<string, () => unknown>>,
    );
    const gateway = await startTestGateway(gatewayConfig(dataDir, [{ name: 'other', url: other.url }]));
    try {
      await gateway.ready;
      const good = await postGraphQL<any>(gateway.url, '{ label(sku: "SKU-000001") }');
      expect(good).toMatchObject({ status: 200, body: { data: { label: 'a label' } } });
      const bad = await postGraphQL<any>(gateway.url, '{ label(sku: "nope") }');
      expect(bad.status).toBe(400);
      expect(bad.body.errors).toEqual([
        { message: 'Value is not a valid Sku: "nope"', extensions: { code: 'GRAPHQL_VALIDATION_FAILED', serviceName: 'other', requestId: expect.any(String) } },
      ]);
    } finally {
      await gateway.stop();
      await other.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
