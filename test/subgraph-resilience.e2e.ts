/**
 * The gateway in front of subgraphs that hang, die and come back, close idle sockets after 1 s, or
 * answer slowly under load: it stays up, serves the other subgraph's fields, recovers without a
 * restart, and each subgraph's circuit opens and closes as documented (visible in /health/ready).
 */
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApolloServer } from '@apollo/server';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { expressMiddleware } from '@as-integrations/express5';
import express from 'express';
import { concatAST, parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SUBGRAPH_CALLS } from '../gateway/subgraph-calls/subgraph-calls.js';
import { DEFAULT_LOAD_SHEDDING } from '../gateway/request-stages/load-shedding.js';
import { policySchemaExtension } from '../policy/directives.js';
import { postGraphQL, startTestGateway, testGatewayConfig } from './harness/mesh.js';

type Mode = { kind: 'ok' } | { kind: 'hang' } | { kind: 'slow'; ms: number } | { kind: 'held'; until: Promise<void> } | { kind: 'big'; bytes: number };

/** A subgraph with one PUBLIC field whose behaviour the test sets; `keepAliveMs` closes idle sockets. */
async function fixtureSubgraph(field: string, options: { port?: number; keepAliveMs?: number; mode?: () => Mode } = {}) {
  const typeDefs = concatAST([parse(policySchemaExtension(['@key'])), parse(`type Query { ${field}: String @classify(level: "PUBLIC") }`)]);
  let served = 0;
  const resolvers = {
    Query: {
      [field]: async () => {
        served++;
        const mode = options.mode?.() ?? { kind: 'ok' };
        if (mode.kind === 'hang') await new Promise(() => undefined);
        if (mode.kind === 'slow') await new Promise((resolve) => setTimeout(resolve, mode.ms));
        if (mode.kind === 'held') await mode.until;
        if (mode.kind === 'big') return 'x'.repeat(mode.bytes);
        return `${field}-ok`;
      },
    },
  };
  const apollo = new ApolloServer({ schema: buildSubgraphSchema([{ typeDefs, resolvers }]) });
  await apollo.start();
  const server: Server = express().use('/graphql', express.json(), expressMiddleware(apollo)).listen(options.port ?? 0, '127.0.0.1');
  if (options.keepAliveMs !== undefined) server.keepAliveTimeout = options.keepAliveMs;
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`,
    port: (server.address() as AddressInfo).port,
    served: () => served,
    async stop() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await apollo.stop();
    },
  };
}

describe('resilient subgraph calls through the gateway', () => {
  let dataDir: string;
  let mode: Mode = { kind: 'ok' };
  let steady: Awaited<ReturnType<typeof fixtureSubgraph>>;
  let flaky: Awaited<ReturnType<typeof fixtureSubgraph>>;
  let idle: Awaited<ReturnType<typeof fixtureSubgraph>>;
  let gateway: Awaited<ReturnType<typeof startTestGateway>>;
  const circuits = async () => ((await (await fetch(new URL('/health/ready', gateway.url))).json()) as { circuits: Record<string, string> }).circuits;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'mesh-resilience-'));
    steady = await fixtureSubgraph('steady');
    flaky = await fixtureSubgraph('flaky', { mode: () => mode });
    // Closes idle sockets after 1 s (and says so less precisely than a proxy would not).
    idle = await fixtureSubgraph('idle', { keepAliveMs: 1_000 });
    gateway = await startTestGateway(
      testGatewayConfig({
        dataDir,
        supergraph: { kind: 'subgraphs', subgraphs: [{ name: 'steady', url: steady.url }, { name: 'flaky', url: flaky.url }, { name: 'idle', url: idle.url }] },
        overrides: { subgraphCalls: { ...DEFAULT_SUBGRAPH_CALLS, timeouts: { flaky: 500 }, circuitVolume: 3, coolDownMs: 1_000 } },
      }),
    );
    await gateway.ready;
  });

  afterAll(async () => {
    await gateway?.stop();
    await steady?.stop();
    await flaky?.stop();
    await idle?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('answers the other subgraph\'s fields while one hangs, with SUBGRAPH_TIMEOUT for its own', async () => {
    // The subgraph hangs for good: an answer at all is the gateway not waiting for it.
    mode = { kind: 'hang' };
    const { status, body } = await postGraphQL(gateway.url, '{ steady flaky }');
    expect(status).toBe(200);
    expect(body.data).toEqual({ steady: 'steady-ok', flaky: null });
    expect(body.errors).toEqual([
      { message: 'The flaky subgraph did not answer within 500 ms.', extensions: { code: 'SUBGRAPH_TIMEOUT', serviceName: 'flaky', requestId: expect.any(String) } },
    ]);
    mode = { kind: 'ok' };
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect((await postGraphQL(gateway.url, '{ steady flaky }')).body).toEqual({ data: { steady: 'steady-ok', flaky: 'flaky-ok' } });
  });

  it('fails fast once a dead subgraph\'s circuit opens, and serves it again when it is back, without a restart', async () => {
    const port = flaky.port;
    await flaky.stop();
    for (let i = 0; i < 3; i++) {
      const { body } = await postGraphQL(gateway.url, '{ steady flaky }');
      expect(body.data).toEqual({ steady: 'steady-ok', flaky: null });
      expect(body.errors?.[0]?.extensions).toMatchObject({ code: 'SUBGRAPH_UNAVAILABLE', serviceName: 'flaky' });
    }
    expect(await circuits()).toMatchObject({ flaky: 'open', steady: 'closed' });
    const open = await postGraphQL(gateway.url, '{ steady flaky }');
    expect(open.body.errors?.[0]).toMatchObject({ message: expect.stringMatching(/circuit open/), extensions: { code: 'SUBGRAPH_UNAVAILABLE', circuit: 'open' } });
    const metrics = await (await fetch(new URL('/metrics', gateway.url))).text();
    expect(metrics).toMatch(/mesh_subgraph_circuit_state\{subgraph="flaky",service="gateway"\} 2/);

    flaky = await fixtureSubgraph('flaky', { port, mode: () => mode });
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect(await circuits()).toMatchObject({ flaky: 'half-open' });
    expect((await postGraphQL(gateway.url, '{ steady flaky }')).body).toEqual({ data: { steady: 'steady-ok', flaky: 'flaky-ok' } });
    expect(await circuits()).toMatchObject({ flaky: 'closed' });
  });

  it('never fails on a subgraph that closes idle sockets after 1 s', async () => {
    const answers = [];
    for (const pause of [1_000, 1_010, 980, 1_050, 995]) {
      await new Promise((resolve) => setTimeout(resolve, pause));
      answers.push((await postGraphQL(gateway.url, '{ idle steady }')).body);
    }
    expect(answers).toEqual(Array.from({ length: 5 }, () => ({ data: { idle: 'idle-ok', steady: 'steady-ok' } })));
  });

  it('serves a slow subgraph under load and keeps the fast one fast', async () => {
    // Held until the fast one is answered (released at the latest before the gateway's 500 ms timeout):
    // the fast one must not queue behind them. How fast it is stays `npm run bench`'s to measure.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const fallback = setTimeout(() => release(), 400);
    mode = { kind: 'held', until: held };
    let slowSettled = 0;
    const slow = Array.from({ length: 30 }, () => postGraphQL(gateway.url, '{ flaky }').finally(() => slowSettled++));
    await expect.poll(() => flaky.served(), { timeout: 5_000, interval: 5 }).toBeGreaterThanOrEqual(30);
    const fast = await postGraphQL(gateway.url, '{ steady }');
    const settledBeforeFast = slowSettled;
    release();
    clearTimeout(fallback);
    const answers = await Promise.all(slow);
    mode = { kind: 'ok' };
    expect(fast.body).toEqual({ data: { steady: 'steady-ok' } });
    expect(settledBeforeFast).toBe(0);
    expect(answers.map((a) => a.body)).toEqual(Array.from({ length: 30 }, () => ({ data: { flaky: 'flaky-ok' } })));
    expect(await circuits()).toMatchObject({ flaky: 'closed' });
  });
});

describe('load shedding', () => {
  it('refuses new operations at once beyond the bound in flight, and lets those in flight finish', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'mesh-shedding-'));
    const slow = await fixtureSubgraph('slow', { mode: () => ({ kind: 'slow', ms: 600 }) });
    const gateway = await startTestGateway(
      testGatewayConfig({
        dataDir,
        supergraph: { kind: 'subgraphs', subgraphs: [{ name: 'slow', url: slow.url }] },
        overrides: { loadShedding: { ...DEFAULT_LOAD_SHEDDING, maxInFlight: 2 } },
      }),
    );
    try {
      await gateway.ready;
      const inFlight = [postGraphQL(gateway.url, '{ slow }'), postGraphQL(gateway.url, '{ slow }')];
      await new Promise((resolve) => setTimeout(resolve, 100));
      let inFlightSettled = 0;
      for (const answer of inFlight) void answer.finally(() => inFlightSettled++);
      const response = await fetch(gateway.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ slow }' }) });
      const settledBeforeRefusal = inFlightSettled;
      expect(response.status).toBe(503);
      expect(response.headers.get('retry-after')).toBe('1');
      expect(((await response.json()) as any).errors[0].extensions).toMatchObject({ code: 'GATEWAY_OVERLOADED', retryAfterSeconds: 1 });
      // Refused without waiting for the slow ones (they were still in flight: no clock read).
      expect(settledBeforeRefusal).toBe(0);
      expect((await Promise.all(inFlight)).map((a) => a.body)).toEqual([{ data: { slow: 'slow-ok' } }, { data: { slow: 'slow-ok' } }]);
      // Once they finished, there is room again.
      expect((await postGraphQL(gateway.url, '{ slow }')).body).toEqual({ data: { slow: 'slow-ok' } });
      const metrics = await (await fetch(new URL('/metrics', gateway.url))).text();
      expect(metrics).toMatch(/mesh_operations_refused_total\{code="GATEWAY_OVERLOADED",service="gateway"\} 1/);
    } finally {
      await gateway.stop();
      await slow.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('refuses new operations while the heap is over its bound', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'mesh-heap-'));
    const steady = await fixtureSubgraph('steady');
    const gateway = await startTestGateway(
      testGatewayConfig({
        dataDir,
        supergraph: { kind: 'subgraphs', subgraphs: [{ name: 'steady', url: steady.url }] },
        // A bound this process is always over: every new operation is shed.
        overrides: { loadShedding: { ...DEFAULT_LOAD_SHEDDING, maxHeapBytes: 1024 * 1024 } },
      }),
    );
    try {
      await gateway.ready;
      await new Promise((resolve) => setTimeout(resolve, 150));
      const { status, body } = await postGraphQL(gateway.url, '{ steady }');
      expect(status).toBe(503);
      expect(body.errors?.[0]).toMatchObject({ message: expect.stringMatching(/memory is at its bound/), extensions: { code: 'GATEWAY_OVERLOADED' } });
      // Liveness and readiness still answer: shedding applies to operations only.
      expect((await fetch(new URL('/health/ready', gateway.url))).status).toBe(200);
    } finally {
      await gateway.stop();
      await steady.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('the response budget', () => {
  it('stops a subgraph answer that would pass the bytes one operation may assemble, and serves the rest', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'mesh-budget-'));
    let bytes = 3_000_000;
    const big = await fixtureSubgraph('big', { mode: () => ({ kind: 'big', bytes }) });
    const steady = await fixtureSubgraph('steady');
    const gateway = await startTestGateway(
      testGatewayConfig({
        dataDir,
        supergraph: { kind: 'subgraphs', subgraphs: [{ name: 'big', url: big.url }, { name: 'steady', url: steady.url }] },
        overrides: { subgraphCalls: { ...DEFAULT_SUBGRAPH_CALLS, maxResponseBytes: 1_000_000 } },
      }),
    );
    try {
      await gateway.ready;
      const heapBefore = process.memoryUsage().heapUsed;
      const { status, body } = await postGraphQL(gateway.url, '{ steady big }');
      expect(status).toBe(200);
      expect(body.data).toEqual({ steady: 'steady-ok', big: null });
      expect(body.errors?.[0]).toMatchObject({ message: expect.stringMatching(/larger than the gateway assembles/), extensions: { code: 'RESPONSE_TOO_LARGE', serviceName: 'big' } });
      expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(50_000_000);
      // The budget is per operation, and says nothing about the subgraph's health.
      bytes = 1_000;
      expect((await postGraphQL(gateway.url, '{ big }')).body).toEqual({ data: { big: 'x'.repeat(1_000) } });
      expect(((await (await fetch(new URL('/health/ready', gateway.url))).json()) as any).circuits.big).toBe('closed');
    } finally {
      await gateway.stop();
      await big.stop();
      await steady.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
