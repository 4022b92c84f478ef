/**
 * Lineage of every load as OpenLineage 2-0-2 run events (issue 14, part 4 begins): a START and a
 * COMPLETE per product of a good load, a FAIL (with why, and the failing assertions) for a rejected
 * one; every event and facet valid against the OpenLineage JSON Schemas in ../shared/schemas; the
 * column lineage from the raw file's columns; and the events written to a file and posted to an
 * OpenLineage endpoint (a small receiver of the test's own).
 */
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { customers } from '../subgraphs/customers/index.js';
import { finance } from '../subgraphs/finance/index.js';
import { governanceRules } from '../policy/governance.rules.js';
import { readPolicy } from '../policy/policy-index.js';
import { subgraphTypeDefs } from '../subgraphs/kit/domain-schema.js';
import { lineageSink, pipelineRunLineage, pipelineRunLineageId, servingLineage, type LineageEvent } from '../subgraphs/kit/lineage.js';
import { ensureWarehouse } from '../subgraphs/kit/warehouse/build.js';
import { generateSourceData } from '../subgraphs/synthetic-sources/generate.js';
import { testLog } from './harness/mesh.js';

const schemas = fileURLToPath(new URL('../../shared/schemas/openlineage/', import.meta.url));
let dir: string;
let validate: (event: LineageEvent) => string[];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lineage-'));
  await generateSourceData({ rawDir: join(dir, 'raw'), scale: 0.01 });
  const ajv = new Ajv2020.default({ allErrors: true, strict: false });
  addFormats.default(ajv);
  ajv.addSchema(JSON.parse(await readFile(join(schemas, 'OpenLineage.json'), 'utf8')));
  // The shared facets, and the parent run's, which they lack (vendored in test/fixtures/openlineage).
  const facetFiles = [...(await readdir(join(schemas, 'facets'))).map((file) => join(schemas, 'facets', file)), fileURLToPath(new URL('fixtures/openlineage/ParentRunFacet.json', import.meta.url))];
  for (const file of facetFiles) ajv.addSchema(JSON.parse(await readFile(file, 'utf8')));
  const event = ajv.getSchema('https://openlineage.io/spec/2-0-2/OpenLineage.json')!;
  const facetValidators = new Map<string, ReturnType<typeof ajv.getSchema>>();
  for (const file of facetFiles) {
    const schema = JSON.parse(await readFile(file, 'utf8')) as { $id: string; properties: Record<string, unknown> };
    for (const key of Object.keys(schema.properties)) facetValidators.set(key, ajv.getSchema(schema.$id));
  }
  validate = (candidate) => {
    const problems: string[] = [];
    if (!event(candidate)) problems.push(`event: ${JSON.stringify(event.errors)}`);
    const check = (facets: Record<string, unknown> | undefined, where: string) => {
      for (const [key, value] of Object.entries(facets ?? {})) {
        const validator = facetValidators.get(key);
        if (!validator) problems.push(`${where}: no schema for the facet ${key}`);
        else if (!validator({ [key]: value })) problems.push(`${where}.${key}: ${JSON.stringify(validator.errors)}`);
      }
    };
    const { job, run, inputs, outputs } = candidate as any;
    check(job.facets, 'job');
    check(run.facets, 'run');
    for (const input of inputs ?? []) check(input.facets, `input ${input.name}`);
    for (const output of outputs ?? []) check(output.facets, `output ${output.name}`);
    return problems;
  };
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('OpenLineage events of each load', () => {
  const events: LineageEvent[] = [];
  const load = (domain: typeof customers | typeof finance, fingerprint: string) =>
    ensureWarehouse({ domain, url: `duckdb:${join(dir, `${domain.name}.duckdb`)}`, rawDir: join(dir, 'raw', domain.name), sourceFingerprint: fingerprint, onLineage: (batch) => events.push(...batch) });

  it('are a START and a COMPLETE per product of a good load, valid against the OpenLineage schemas', async () => {
    events.length = 0;
    await load(finance, 'good');
    expect(events.map((event) => `${event.eventType} ${(event.job as { name: string }).name}`)).toEqual([
      'START finance.orders.ingestion',
      'START finance.invoices.ingestion',
      'COMPLETE finance.orders.ingestion',
      'COMPLETE finance.invoices.ingestion',
    ]);
    for (const event of events) expect(validate(event), JSON.stringify(event).slice(0, 300)).toEqual([]);
    // The validators are not lenient: a wrong event type, or a facet without its producer, is refused.
    expect(validate({ ...events[0]!, eventType: 'MAYBE' } as never).length).toBeGreaterThan(0);
    const { _producer: _dropped, ...withoutProducer } = (events[2] as any).outputs[0].facets.schema;
    expect(validate({ ...events[2]!, outputs: [{ ...(events[2] as any).outputs[0], facets: { schema: withoutProducer } }] } as never).length).toBeGreaterThan(0);
    // START and COMPLETE of one product share its run.
    expect(events[0]!.run.runId).toBe(events[2]!.run.runId);
    expect(events[0]!.run.runId).not.toBe(events[1]!.run.runId);
    const complete = events[2] as any;
    expect(complete.inputs).toEqual([expect.objectContaining({ namespace: `file://${join(dir, 'raw', 'finance')}`, name: 'finance/orders.csv' })]);
    expect(complete.outputs[0]).toMatchObject({ namespace: `duckdb://${join(dir, 'finance.duckdb')}`, name: 'orders' });
    const facets = complete.outputs[0].facets;
    expect(facets.schema.fields.map((f: any) => f.name)).toEqual(['id', 'customer_id', 'ordered_at', 'status', 'channel', 'region', 'total_amount']);
    expect(facets.ownership.owners).toEqual([{ name: 'user:finance-team@example.com', type: 'OWNER' }]);
    expect(facets.columnLineage.fields.status.inputFields).toEqual([
      { namespace: `file://${join(dir, 'raw', 'finance')}`, name: 'finance/orders.csv', field: 'status', transformations: [{ type: 'DIRECT', subtype: 'IDENTITY', masking: false }] },
    ]);
    expect(facets.dataQualityAssertions.assertions).toContainEqual({ assertion: 'id_unique', success: true, severity: 'error', name: 'id_unique', expected: 'mustBe 0', actual: '0' });
  });

  it("of a pipeline run: the run a START and a COMPLETE or FAIL, a dependent run's parent the run it followed, and the load's parent the run", async () => {
    const at = new Date().toISOString();
    const orders = { pipeline: 'finance.orders', runId: '17', trigger: 'schedule', attempt: 1, at };
    const started = pipelineRunLineage({ ...orders, event: 'started' })!;
    const retried = pipelineRunLineage({ ...orders, event: 'started', attempt: 2 });
    const succeeded = pipelineRunLineage({ ...orders, event: 'succeeded', attempt: 2 })!;
    expect([started.eventType, retried, succeeded.eventType]).toEqual(['START', null, 'COMPLETE']);
    expect(pipelineRunLineage({ ...orders, event: 'skipped', attempt: 0 })).toBeNull();
    // One run id (a UUID, whatever the runner's id) for the run's every event, and another for another run.
    expect(started.run.runId).toBe(succeeded.run.runId);
    expect(started.run.runId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(pipelineRunLineageId('finance.orders', '18')).not.toBe(started.run.runId);
    expect(pipelineRunLineageId('finance.invoices', '17')).not.toBe(started.run.runId);
    expect((started.job as { name: string }).name).toBe('finance.orders.pipeline');
    const dependent = pipelineRunLineage({ pipeline: 'finance.invoices', runId: 'c0ffee', trigger: 'dependency', attempt: 1, at, event: 'failed', error: 'the finance load failed', parent: { pipeline: 'finance.orders', runId: '17' } })!;
    expect(dependent.eventType).toBe('FAIL');
    expect(dependent.run.facets).toMatchObject({ parent: { run: { runId: started.run.runId }, job: { namespace: 'datamesh', name: 'finance.orders.pipeline' } }, errorMessage: { message: 'the finance load failed' } });
    // The load a run made: each product's ingestion run names the pipeline run as its parent.
    events.length = 0;
    await ensureWarehouse({ domain: finance, url: `duckdb:${join(dir, 'finance-parented.duckdb')}`, rawDir: join(dir, 'raw', 'finance'), sourceFingerprint: 'parented', onLineage: (batch) => events.push(...batch), lineageParent: { pipeline: 'finance.orders', runId: '17' } });
    expect(events.map((event) => event.eventType)).toEqual(['START', 'START', 'COMPLETE', 'COMPLETE']);
    for (const event of events) expect(event.run.facets?.parent).toMatchObject({ run: { runId: started.run.runId }, job: { name: 'finance.orders.pipeline' } });
    for (const event of [started, succeeded, dependent, ...events]) expect(validate(event), JSON.stringify(event).slice(0, 300)).toEqual([]);
    // The parent facet's schema is not lenient either: a parent without its job is refused.
    expect(validate({ ...dependent, run: { ...dependent.run, facets: { parent: { ...(dependent.run.facets!.parent as object), job: undefined } } } } as never).length).toBeGreaterThan(0);
  });

  it('end in a FAIL, with why and the failing assertions, when the load is rejected', async () => {
    const file = join(dir, 'raw', 'customers', 'customers.csv');
    const good = await readFile(file, 'utf8');
    await load(customers, 'good');
    events.length = 0;
    const [header, first, ...rest] = good.trimEnd().split('\n');
    await writeFile(file, [header, first, ...rest, first].join('\n') + '\n');
    try {
      const build = await load(customers, 'bad');
      expect(build.rejectedKeptAt).toBeTruthy();
    } finally {
      await writeFile(file, good);
    }
    expect(events.map((event) => event.eventType)).toEqual(['START', 'FAIL']);
    const fail = events[1] as any;
    expect(validate(fail)).toEqual([]);
    expect(fail.run.facets.errorMessage.message).toMatch(/customers\.customers id_unique = 2 \(mustBe 0\)/);
    expect(fail.outputs[0].facets.dataQualityAssertions.assertions).toContainEqual(expect.objectContaining({ assertion: 'id_unique', success: false, actual: '2' }));
  });

  it('are written to a file and posted to an OpenLineage endpoint; an endpoint that fails is logged, not fatal', async () => {
    const received: unknown[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => (body += chunk));
      req.on('end', () => {
        if (req.url === '/api/v1/lineage' && req.method === 'POST') received.push(JSON.parse(body));
        res.statusCode = req.url === '/api/v1/lineage' ? 201 : 404;
        res.end();
      });
    }).listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const sink = lineageSink({ dir: join(dir, 'lineage'), domain: 'finance', url, log: testLog });
      await ensureWarehouse({ domain: finance, url: `duckdb:${join(dir, 'finance.duckdb')}`, rawDir: join(dir, 'raw', 'finance'), sourceFingerprint: 'again', onLineage: (batch) => sink.emit(batch) });
      await sink.flush();
      expect(received.map((event: any) => event.eventType)).toEqual(['START', 'START', 'COMPLETE', 'COMPLETE']);
      const lines = (await readFile(join(dir, 'lineage', 'finance.jsonl'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line));
      expect(lines).toEqual(received);
      const broken = lineageSink({ dir: join(dir, 'lineage'), domain: 'broken', url: `${url}/nowhere`, log: testLog });
      broken.emit([received[0] as LineageEvent]);
      await broken.flush();
      expect((await readFile(join(dir, 'lineage', 'broken.jsonl'), 'utf8')).trim().split('\n')).toHaveLength(1);
    } finally {
      server.close();
    }
  });

  it('describe the serving step: each field from its column, with masking where the policy masks', async () => {
    const policy = readPolicy(subgraphTypeDefs(customers), governanceRules);
    const [event] = servingLineage(customers, { warehouse: `duckdb:${join(dir, 'customers.duckdb')}`, maskOf: (type, field) => policy.field(type, field).mask?.strategy ?? null });
    expect(validate(event!)).toEqual([]);
    const serving = event as any;
    expect(serving).toMatchObject({ eventType: 'START', job: { name: 'customers.customers.serving', facets: { jobType: { processingType: 'SERVICE' } } } });
    expect(serving.inputs).toEqual([{ namespace: `duckdb://${join(dir, 'customers.duckdb')}`, name: 'customers' }]);
    const fields = serving.outputs[0].facets.columnLineage.fields;
    // Customer.email comes from the table's email column, masked (HASH) for most principals…
    expect(fields.email.inputFields).toEqual([
      { namespace: `duckdb://${join(dir, 'customers.duckdb')}`, name: 'customers', field: 'email', transformations: [{ type: 'DIRECT', subtype: 'TRANSFORMATION', description: 'HASH mask, except for exempt principals', masking: true }] },
    ]);
    expect(fields.country.inputFields[0].transformations[0].masking).toBe(false);
    // …and the table's email column from the raw customers file's: the chain reaches the raw column.
    events.length = 0;
    await load(customers, 'chain');
    const complete = events.find((e) => e.eventType === 'COMPLETE') as any;
    expect(complete.outputs[0].facets.columnLineage.fields.email.inputFields[0]).toMatchObject({ name: 'customers/customers.csv', field: 'email' });
  });
});
