/**
 * Prometheus metrics on the gateway and each subgraph: the text parses, the counters move as a query
 * runs, client-chosen label values stay bounded, and no data value ever appears.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestMesh, tokenFor, type TestMesh } from './harness/mesh.js';

let mesh: TestMesh;
const analyst = `Bearer ${tokenFor({ subject: 'ana', roles: ['analyst'], regions: ['EMEA'], purpose: 'analytics' })}`;

beforeAll(async () => {
  mesh = await startTestMesh();
});

afterAll(async () => {
  await mesh?.stop();
});

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.]+(?:e[+-]?\d+)?|NaN|[+-]Inf)$/;

/** Parses Prometheus text exposition; fails on any line that is not a comment or a sample. */
async function scrape(url: string): Promise<Map<string, number>> {
  const response = await fetch(new URL('/metrics', url));
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const samples = new Map<string, number>();
  for (const line of (await response.text()).split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const match = SAMPLE.exec(line);
    expect(match, `not Prometheus text: ${line}`).not.toBeNull();
    samples.set(`${match![1]}${match![2] ?? ''}`, Number(match![3]));
  }
  return samples;
}

function value(samples: Map<string, number>, name: string, labels: Record<string, string>): number {
  for (const [key, v] of samples) {
    if (!key.startsWith(`${name}{`) && key !== name) continue;
    if (Object.entries(labels).every(([label, text]) => key.includes(`${label}="${text}"`))) return v;
  }
  return 0;
}

describe('/metrics', () => {
  it('parses as Prometheus text, and its counters move as a query runs', async () => {
    const gatewayBefore = await scrape(mesh.gateway.url);
    const customersBefore = await scrape(mesh.subgraphs.customers!.url);
    const { body } = await mesh.query('query MetricsProbe { customers(first: 3) { nodes { id name } } }', undefined, { authorization: analyst });
    expect(body.errors).toBeUndefined();
    const gateway = await scrape(mesh.gateway.url);
    const customers = await scrape(mesh.subgraphs.customers!.url);
    const delta = (after: Map<string, number>, before: Map<string, number>, name: string, labels: Record<string, string>) =>
      value(after, name, labels) - value(before, name, labels);

    expect(delta(gateway, gatewayBefore, 'mesh_requests_total', { service: 'gateway', operation: 'MetricsProbe', outcome: 'success' })).toBe(1);
    expect(delta(gateway, gatewayBefore, 'mesh_request_duration_seconds_count', { operation: 'MetricsProbe' })).toBe(1);
    expect(delta(gateway, gatewayBefore, 'mesh_subgraph_fetch_duration_seconds_count', { subgraph: 'customers', outcome: 'ok' })).toBe(1);
    expect(value(gateway, 'mesh_supergraph_info', {})).toBe(1);
    expect([...gateway.keys()].some((key) => /^mesh_supergraph_info\{.*version="[0-9a-f]{12}"/.test(key))).toBe(true);
    expect(delta(gateway, gatewayBefore, 'mesh_audit_records_total', { outcome: 'written' })).toBe(1);

    expect(delta(customers, customersBefore, 'mesh_policy_decisions_total', { coordinate: 'Customer.name', decision: 'mask' })).toBe(3);
    expect(delta(customers, customersBefore, 'mesh_policy_decisions_total', { coordinate: 'Customer.id', decision: 'allow' })).toBe(3);
    expect(delta(customers, customersBefore, 'mesh_masked_values_total', { coordinate: 'Customer.name', strategy: 'HASH' })).toBe(3);
    expect(delta(customers, customersBefore, 'mesh_audit_records_total', { outcome: 'written' })).toBe(1);
    expect(delta(customers, customersBefore, 'mesh_warehouse_query_duration_seconds_count', { outcome: 'ok' })).toBeGreaterThanOrEqual(1);
    expect(value(customers, 'process_cpu_user_seconds_total', { service: 'customers' })).toBeGreaterThan(0);
  });

  it('keeps client-chosen operation names bounded', async () => {
    await Promise.all(
      Array.from({ length: 210 }, (_, i) => mesh.query(`query Probe${i} { categories { id } }`)),
    );
    await mesh.query('query { categories { id } }');
    await mesh.query('{ categories { id } }', undefined, { 'x-ignored': '1' });
    const samples = await scrape(mesh.gateway.url);
    const operations = new Set([...samples.keys()].filter((key) => key.startsWith('mesh_requests_total{')).map((key) => /operation="([^"]*)"/.exec(key)![1]));
    expect(operations.size).toBeLessThanOrEqual(200 + 3);
    expect(operations).toContain('other');
    expect(operations).toContain('anonymous');
  });

  it('holds no data value, and is read-only', async () => {
    const people = await mesh.sql<{ name: string; email: string }>('customers', 'select name, email from customers order by id limit 10');
    for (const url of [mesh.gateway.url, mesh.subgraphs.customers!.url]) {
      const text = await (await fetch(new URL('/metrics', url))).text();
      for (const { name, email } of people) {
        expect(text).not.toContain(name);
        expect(text).not.toContain(email);
      }
      const post = await fetch(new URL('/metrics', url), { method: 'POST' });
      expect(post.status).toBe(404);
    }
  });
});
