/**
 * The audit trail end to end: real requests through the gateway write one record per operation
 * per subgraph plus the gateway's, into hash-chained files that verify; strict data fails closed
 * when its record cannot be written, and nothing is lost once the sink recovers.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditLog } from '../policy/audit.js';
import { readAuditRecords, startTestMesh, tokenFor, type TestMesh } from './harness/mesh.js';

let mesh: TestMesh;
const analyst = `Bearer ${tokenFor({ subject: 'ana', roles: ['analyst'], regions: ['EMEA'], purpose: 'analytics' })}`;
const steward = `Bearer ${tokenFor({ subject: 'stella', roles: ['steward'], purpose: 'customer-support' })}`;
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

beforeAll(async () => {
  mesh = await startTestMesh();
});

afterAll(async () => {
  await mesh?.stop();
});

const records = (service: string) => readAuditRecords(mesh.auditPath(service));

async function verifies(service: string): Promise<void> {
  expect(verifyAuditLog(await readFile(mesh.auditPath(service), 'utf8')), service).toMatchObject({ ok: true });
}

const SAMPLE = 'query Sample($n: Int) { customers(first: $n) { nodes { id name lifetimeValue orders(first: 1) { totalCount } } } }';

describe('records', () => {
  it('a run of concurrent requests: exactly one record per operation per subgraph, plus the gateway\'s', async () => {
    const ids = Array.from({ length: 24 }, (_, i) => `audit-run-${String(i).padStart(4, '0')}`);
    const answers = await Promise.all(
      ids.map((id, i) => mesh.query(SAMPLE, { n: 3 }, { authorization: i % 2 ? analyst : steward, 'x-request-id': id })),
    );
    for (const answer of answers) expect(answer.body.errors).toBeUndefined();
    for (const service of ['gateway', 'customers', 'finance']) {
      const mine = (await records(service)).filter((r) => ids.includes(r.requestId));
      expect(mine.map((r) => r.requestId).sort(), service).toEqual(ids);
      await verifies(service);
    }
    // products was not asked, so it recorded none of these operations.
    expect((await records('products')).filter((r) => ids.includes(r.requestId))).toEqual([]);
  });

  it('say who asked what, and what each field decided, without any value', async () => {
    const id = 'audit-content-0001';
    await mesh.query(SAMPLE, { n: 3 }, { authorization: analyst, 'x-request-id': id, 'apollographql-client-name': 'bi-tool' });
    const [gateway] = (await records('gateway')).filter((r) => r.requestId === id);
    expect(gateway).toMatchObject({
      kind: 'gateway-operation',
      subject: 'ana',
      roles: ['analyst'],
      purpose: 'analytics',
      clientName: 'bi-tool',
      operationName: 'Sample',
      documentHash: sha256(SAMPLE),
      variablesHash: sha256(JSON.stringify({ n: 3 })),
      outcome: 'success',
      durationMs: expect.any(Number),
    });
    const [customers] = (await records('customers')).filter((r) => r.requestId === id);
    expect(customers).toMatchObject({ kind: 'subgraph-operation', service: 'customers', subject: 'ana', strict: false });
    if (customers?.kind !== 'subgraph-operation') throw new Error('no customers record');
    expect(customers.facts).toEqual(
      expect.arrayContaining([
        { coordinate: 'Customer.name', decision: 'mask', rule: 'pii default mask', strategy: 'HASH', count: 3 },
        { coordinate: 'Customer.id', decision: 'allow', rule: 'INTERNAL default', count: 3 },
        { coordinate: 'Query.customers', decision: 'allow', rule: 'INTERNAL default', count: 1 },
      ]),
    );
  });

  it('keep a client-chosen name short, whatever the header holds', async () => {
    const id = 'audit-client-0001';
    await mesh.query('{ categories { id } }', undefined, { 'x-request-id': id, 'apollographql-client-name': 'x'.repeat(5000) });
    const [gateway] = (await records('gateway')).filter((r) => r.requestId === id);
    // Its first 64 characters and a hash of the whole: short, and still telling two long names apart.
    expect(gateway).toMatchObject({ clientName: `${'x'.repeat(64)}…sha256:${createHash('sha256').update('x'.repeat(5000)).digest('hex').slice(0, 16)}` });
  });

  it('count denials too, and never hold a raw value', async () => {
    const id = 'audit-denied-0001';
    const { body } = await mesh.query('{ customers(first: 2) { nodes { name birthDate } } }', undefined, { authorization: analyst, 'x-request-id': id });
    expect(body.errors?.map((e) => e.extensions?.code)).toEqual(['FORBIDDEN']);
    const [customers] = (await records('customers')).filter((r) => r.requestId === id);
    if (customers?.kind !== 'subgraph-operation') throw new Error('no customers record');
    // The gateway removed birthDate before planning: the subgraph was never asked for it.
    expect(customers.facts.find((f) => f.coordinate === 'Customer.birthDate')).toBeUndefined();
    const [gateway] = (await records('gateway')).filter((r) => r.requestId === id);
    expect(gateway).toMatchObject({ outcome: 'partial' });

    const people = await mesh.sql<{ name: string; email: string }>('customers', 'select name, email from customers order by id limit 20');
    for (const service of ['gateway', 'customers', 'finance', 'products']) {
      const text = await readFile(mesh.auditPath(service), 'utf8').catch(() => '');
      for (const { name, email } of people) {
        expect(text).not.toContain(name);
        expect(text).not.toContain(email);
      }
    }
  });
});

describe('strict mode: restricted data does not leave without its record', () => {
  const RESTRICTED = '{ customers(first: 2, orderBy: {field: ID}) { nodes { id name birthDate } } }';

  it('withholds it while the sink fails, serves the rest, and loses no record once it recovers', async () => {
    const path = mesh.auditPath('customers');
    await rename(path, `${path}.away`);
    await mkdir(path); // the audit file is gone, a directory stands in its way: every write fails
    let failing: Awaited<ReturnType<typeof mesh.query<any>>>;
    let plain: Awaited<ReturnType<typeof mesh.query<any>>>;
    try {
      failing = await mesh.query<any>(RESTRICTED, undefined, { authorization: steward, 'x-request-id': 'audit-strict-0001' });
      plain = await mesh.query<any>('{ customers(first: 1) { nodes { id } } }', undefined, { authorization: steward, 'x-request-id': 'audit-strict-0002' });
      const ready = (await (await fetch(new URL('/health/ready', mesh.subgraphs.customers!.url))).json()) as { audit: { pending: number; failures: number } };
      expect(ready.audit.pending).toBe(2);
      expect(ready.audit.failures).toBeGreaterThanOrEqual(2);
    } finally {
      await rm(path, { recursive: true });
      await rename(`${path}.away`, path);
    }
    // Fail closed: the restricted values are withheld; the rest of the answer is served.
    expect(failing.body.data.customers.nodes.map((c: any) => c.birthDate)).toEqual([null, null]);
    expect(failing.body.data.customers.nodes.every((c: any) => typeof c.name === 'string')).toBe(true);
    expect(failing.body.errors?.map((e) => [e.extensions?.code, e.path])).toEqual([
      ['AUDIT_UNAVAILABLE', ['customers', 'nodes', 0, 'birthDate']],
      ['AUDIT_UNAVAILABLE', ['customers', 'nodes', 1, 'birthDate']],
    ]);
    // Data that is not strict is served while the sink fails; its record waits.
    expect(plain.body.errors).toBeUndefined();

    // Recovered: the next operation writes the waiting records first, in order, in the chain.
    const after = await mesh.query<any>(RESTRICTED, undefined, { authorization: steward, 'x-request-id': 'audit-strict-0003' });
    expect(after.body.errors).toBeUndefined();
    expect(after.body.data.customers.nodes.every((c: any) => /^\d{4}-\d{2}-\d{2}$/.test(c.birthDate))).toBe(true);
    const written = (await records('customers')).filter((r) => r.requestId.startsWith('audit-strict-'));
    expect(written.map((r) => [r.requestId, r.kind === 'subgraph-operation' && r.strict])).toEqual([
      ['audit-strict-0001', true],
      ['audit-strict-0002', false],
      ['audit-strict-0003', true],
    ]);
    await verifies('customers');
  });
});
