/**
 * The resilient subgraph caller against real sockets: servers that reset a reused connection, hang,
 * fail, or answer too much.
 */
import { once } from 'node:events';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createMetrics } from '../../policy/metrics.js';
import { createSubgraphCalls, DEFAULT_SUBGRAPH_CALLS, type SubgraphCalls } from './subgraph-calls.js';

const log = pino({ level: 'silent' });
const call = (retryable = true, budget?: { remaining: number }) => ({ body: '{"query":"{ a }"}', headers: { 'content-type': 'application/json' }, retryable, budget });
const OK = 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 15\r\nconnection: keep-alive\r\n\r\n{"data":{"a":1}}'.replace('15', String('{"data":{"a":1}}'.length));

/** Lets the pool take the socket back as idle, so that the next call reuses it. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

let calls: SubgraphCalls | undefined;
const servers: { close(): void }[] = [];

afterEach(async () => {
  await calls?.close();
  calls = undefined;
  for (const server of servers.splice(0)) server.close();
});

async function listen(server: Server | ReturnType<typeof createTcpServer>): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
}

/**
 * Answers the first request of each connection, and resets the connection when a second request
 * arrives on it (as a subgraph does that closed an idle socket the client then reused).
 */
async function resettingServer(): Promise<{ url: string; requests: () => number }> {
  let requests = 0;
  const server = createTcpServer((socket: Socket) => {
    let seen = 0;
    socket.on('data', (chunk: Buffer) => {
      // Requests start with their method; their bodies may arrive in later chunks.
      const starts = chunk.toString('latin1').split('POST /graphql').length - 1;
      for (let i = 0; i < starts; i++) {
        requests++;
        seen++;
        if (seen === 1) socket.write(OK);
        else socket.resetAndDestroy();
      }
    });
    socket.on('error', () => undefined);
  });
  return { url: await listen(server), requests: () => requests };
}

function callsWith(overrides: Partial<typeof DEFAULT_SUBGRAPH_CALLS> = {}) {
  const metrics = createMetrics('gateway');
  calls = createSubgraphCalls({ config: { ...DEFAULT_SUBGRAPH_CALLS, idleSocketMs: 60_000, ...overrides }, metrics, log });
  return { calls, metrics };
}

describe('subgraph calls', () => {
  it('send a query again, once, when a reused connection is reset before the answer', async () => {
    const { url, requests } = await resettingServer();
    const { calls, metrics } = callsWith();
    const caller = calls.forSubgraph('reset', url);
    expect((await caller.call(call())).text).toBe('{"data":{"a":1}}');
    await settle();
    // The second call reuses the pooled socket, which the server resets: retried on a new one.
    expect((await caller.call(call())).text).toBe('{"data":{"a":1}}');
    expect(requests()).toBe(3);
    expect(await metrics.registry.getSingleMetricAsString('mesh_subgraph_retries_total')).toMatch(/subgraph="reset"[^\n]* 1/);
  });

  it('never send a mutation twice', async () => {
    const { url, requests } = await resettingServer();
    const { calls } = callsWith();
    const caller = calls.forSubgraph('reset', url);
    await caller.call(call(false));
    await settle();
    await expect(caller.call(call(false))).rejects.toMatchObject({ code: expect.stringMatching(/UND_ERR_SOCKET|ECONNRESET/) });
    expect(requests()).toBe(2);
  });

  it('time out a subgraph that hangs, with SUBGRAPH_TIMEOUT', async () => {
    const url = await listen(createHttpServer(() => undefined));
    const { calls } = callsWith({ timeoutMs: 5_000, timeouts: { hung: 200 } });
    const started = performance.now();
    await expect(calls.forSubgraph('hung', url).call(call())).rejects.toMatchObject({
      message: 'The hung subgraph did not answer within 200 ms.',
      extensions: { code: 'SUBGRAPH_TIMEOUT', serviceName: 'hung' },
    });
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('open the circuit after repeated failures, fail fast while open, then probe and close', async () => {
    let healthy = false;
    let requests = 0;
    const url = await listen(
      createHttpServer((_req, res) => {
        requests++;
        res.writeHead(healthy ? 200 : 500, { 'content-type': 'application/json' }).end(healthy ? '{"data":{"a":1}}' : '{"errors":[{"message":"boom"}]}');
      }),
    );
    const { calls, metrics } = callsWith({ circuitVolume: 3, coolDownMs: 300 });
    const caller = calls.forSubgraph('failing', url);
    for (let i = 0; i < 3; i++) expect((await caller.call(call())).status).toBe(500);
    expect(calls.circuits()).toEqual({ failing: 'open' });
    await expect(caller.call(call())).rejects.toMatchObject({ extensions: { code: 'SUBGRAPH_UNAVAILABLE', circuit: 'open' } });
    expect(requests).toBe(3);
    expect(await metrics.registry.getSingleMetricAsString('mesh_subgraph_circuit_state')).toMatch(/subgraph="failing"[^\n]* 2/);
    healthy = true;
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(calls.circuits()).toEqual({ failing: 'half-open' });
    expect((await caller.call(call())).status).toBe(200);
    expect(calls.circuits()).toEqual({ failing: 'closed' });
    expect(await metrics.registry.getSingleMetricAsString('mesh_subgraph_circuit_state')).toMatch(/subgraph="failing"[^\n]* 0/);
  });

  it('stop reading an answer that passes the operation\'s response budget', async () => {
    const big = JSON.stringify({ data: { a: 'x'.repeat(1_000_000) } });
    const url = await listen(createHttpServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(big)));
    const { calls } = callsWith();
    const budget = { remaining: 100_000 };
    await expect(calls.forSubgraph('big', url).call(call(true, budget))).rejects.toMatchObject({ extensions: { code: 'RESPONSE_TOO_LARGE' } });
    expect(budget.remaining).toBe(0);
    // A refusal of ours says nothing about the subgraph: its circuit stays closed.
    expect(calls.circuits()).toEqual({ big: 'closed' });
    const roomy = { remaining: 5_000_000 };
    expect((await calls.forSubgraph('big', url).call(call(true, roomy))).text).toBe(big);
    expect(roomy.remaining).toBe(5_000_000 - big.length);
  });
});
