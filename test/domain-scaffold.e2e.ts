/**
 * A domain from a source in one command (issue 25, part 3), end to end, in a folder outside the
 * checkout: three teams each make a domain with `npm run domain -- new`, from a CSV file, a Parquet
 * file and a PostgreSQL table the test writes; each domain's own test passes. With the platform's
 * mesh running (`npm start`: the built-in domains), each team starts its domain as its own process
 * (`npm run subgraph` on the manifest the scaffold wrote) and publishes it through the registry API
 * with its team's token (the one whose owner left its placeholders is refused for them alone); the
 * gateway serves them under the policy: the pii columns masked for an analyst, the row policy on
 * region, the products in the catalog with quality, freshness, profile and lineage. Once its owner
 * fills the placeholders, the third publishes and serves too.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_HASH_KEY } from '../policy/masking.js';
import { freePort, postGraphQL, tokenFor } from './harness/mesh.js';
import { npmService, npmStart, stop, type Started } from './harness/npm-start.js';
import { onPostgres, TEST_POSTGRES } from './harness/postgres.js';
import { expectedPseudonym } from './harness/pseudonym.js';
import { runProcess } from './harness/run-process.js';

const root = resolve(import.meta.dirname, '..');
const REGIONS = ['EMEA', 'APAC', 'AMERICAS'] as const;
const database = `scaffold_e2e_${randomBytes(4).toString('hex')}`;

const run = (args: readonly string[], env: NodeJS.ProcessEnv = {}) => runProcess('npm', ['run', '-s', ...args], { cwd: root, env: { ...process.env, ...env } });

/** The parcels the shipping team exports: 90 rows, every region, an e-mail per parcel. */
const parcels = Array.from({ length: 90 }, (_, i) => ({ id: `P-${String(i).padStart(3, '0')}`, carrier: ['Parcelo', 'Swiftly'][i % 2]!, email: `recipient${i}@example.org`, region: REGIONS[i % 3]!, weight: (i % 9) + 0.5 }));
/** The leads in the sales team's operational database. */
const leads = Array.from({ length: 75 }, (_, i) => ({ id: `L-${i}`, email: `lead${i}@example.net`, region: REGIONS[(i + 1) % 3]!, score: i % 10 }));

describe('domains made from a CSV file, a Parquet file and a PostgreSQL table', () => {
  let work: string;
  let env: NodeJS.ProcessEnv;
  let gateway: string;
  let mesh: Started | undefined;
  const made: Record<string, Awaited<ReturnType<typeof run>>> = {};

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'domain-scaffold-'));
    // The sources, as each team has them.
    await writeFile(join(work, 'parcels.csv'), ['Parcel ID,carrier,Recipient Email,region,weight_kg', ...parcels.map((p) => `${p.id},${p.carrier},${p.email},${p.region},${p.weight}`), ''].join('\n'));
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    await connection.run(
      `COPY (SELECT 'R-' || i AS reading_id, (['north', 'south', 'east'])[1 + i % 3] AS sensor, TIMESTAMPTZ '2026-11-01 00:00:00+00' + (i * INTERVAL 1 HOUR) AS taken_at, cast(i * 0.25 AS DECIMAL(8, 2)) AS celsius FROM range(48) t(i))
       TO '${join(work, 'readings.parquet')}' (FORMAT parquet)`,
    );
    connection.closeSync();
    instance.closeSync();
    await onPostgres(`CREATE DATABASE ${database}`);
    await onPostgres(
      `CREATE SCHEMA crm; CREATE TABLE crm.leads ("Lead ID" text PRIMARY KEY, contact_email text NOT NULL, region text NOT NULL, score integer NOT NULL);
       INSERT INTO crm.leads VALUES ${leads.map((l) => `('${l.id}', '${l.email}', '${l.region}', ${l.score})`).join(', ')};`,
      database,
    );
    // The mesh the first team starts from: the built-in domains, on free ports (tests run side by side).
    const [port, customers, products, finance, shipping, sensors, sales] = await Promise.all(Array.from({ length: 7 }, () => freePort()));
    gateway = `http://127.0.0.1:${port}/graphql`;
    await writeFile(
      join(work, 'base.json'),
      JSON.stringify({
        domains: [
          { name: 'customers', module: join(root, 'subgraphs/customers/index.js'), url: `http://127.0.0.1:${customers}/graphql` },
          { name: 'products', module: join(root, 'subgraphs/products/index.js'), url: `http://127.0.0.1:${products}/graphql` },
          { name: 'finance', module: join(root, 'subgraphs/finance/index.js'), url: `http://127.0.0.1:${finance}/graphql` },
        ],
      }),
    );
    // One command each; each extends the manifest the one before wrote.
    made.shipping = await run(['domain', '--', 'new', 'shipping', '--source', join(work, 'parcels.csv'), '--into', join(work, 'shipping'), '--owner', 'parcels@example.com', '--purpose', 'Every parcel we send, with its carrier and weight.', '--port', String(shipping)], { MESH_MANIFEST: join(work, 'base.json') });
    made.sensors = await run(['domain', '--', 'new', 'sensors', '--source', join(work, 'readings.parquet'), '--into', join(work, 'sensors'), '--port', String(sensors)], { MESH_MANIFEST: join(work, 'shipping/mesh.json') });
    made.sales = await run(['domain', '--', 'new', 'sales', '--source', `${TEST_POSTGRES}/${database}`, '--table', 'crm.leads', '--into', join(work, 'sales'), '--owner', 'sales-ops@example.com', '--purpose', 'The leads the sales team works.', '--port', String(sales)], { MESH_MANIFEST: join(work, 'sensors/mesh.json') });
    env = { DATA_DIR: join(work, 'data'), PORT: String(port), SUBGRAPHS: '', SCALE: '', SEED: '', LOG_LEVEL: 'info' };
  }, 180_000);

  afterAll(async () => {
    await stop(mesh);
    await rm(work, { recursive: true, force: true });
    await onPostgres(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  });

  it('makes each domain in one command, saying what it proposed and what is left to fill in', () => {
    for (const name of ['shipping', 'sensors', 'sales']) expect({ name, code: made[name]!.code, stderr: made[name]!.stderr }).toEqual({ name, code: 0, stderr: '' });
    expect(made.shipping!.stdout).toMatch(/data product shipping\.parcels: 5 columns, type Parcel, key parcel_id, 90 rows profiled/);
    expect(made.shipping!.stdout).toMatch(/personal data \(CONFIDENTIAL, pii, masked\): recipientEmail \(hashed\)\n  row policy: a token sees the rows of its regions \(region\)/);
    expect(made.shipping!.stdout).toMatch(/renamed: "Parcel ID" → parcel_id, "Recipient Email" → recipient_email/);
    expect(made.shipping!.stdout).not.toMatch(/to fill in/);
    expect(made.sensors!.stdout).toMatch(/to fill in before publishing: owner, purpose/);
    expect(made.sales!.stdout).toMatch(/data product sales\.leads: 4 columns, type Lead, key lead_id, 75 rows profiled/);
    // The connection string is not repeated in what it wrote.
    expect(made.sales!.stdout).not.toContain(database);
  });

  it("passes each domain's own test: the load through its quality gate, every field served, masks and row policy", async () => {
    // Shipping and sales have personal data and a region (masks, row policy); the sensors neither.
    for (const [name, tests] of [['shipping', 4], ['sensors', 2], ['sales', 4]] as const) {
      const tested = await run(['domain', '--', 'test', join(work, name)], { NO_COLOR: '1' });
      expect({ name, code: tested.code, output: tested.code === 0 ? '' : tested.output.slice(-2_000) }).toEqual({ name, code: 0, output: '' });
      expect(tested.output).toMatch(new RegExp(`Tests +${tests} passed \\(${tests}\\)`));
    }
  }, 120_000);

  describe('in the mesh, each domain its own process, published through the registry API with its team\'s token', () => {
    const running: Record<string, Started> = {};
    const urlOf = async (name: string) => JSON.parse(await readFile(join(work, name, 'mesh.json'), 'utf8')).domains.find((d: { name: string }) => d.name === name).url as string;
    /** The team's own deploy: its domain in a process of its own, on its own manifest and data folder. */
    const startDomain = async (name: string) => {
      running[name] = await npmService('subgraph', [name], { MESH_MANIFEST: join(work, name, 'mesh.json'), DATA_DIR: join(work, `${name}-data`), PORT: '', SCALE: '0.01', SEED: '', LOG_LEVEL: 'info' }, new RegExp(`subgraph ${name} serving`));
    };
    /** Its publish, by URL, with a token of its team. */
    const publish = async (name: string) =>
      run(['registry', '--', 'publish', name, '--introspect', await urlOf(name), '--registry', gateway.replace(/\/graphql$/, '/registry')], { REGISTRY_TOKEN: tokenFor({ subject: `${name}-ci`, teams: [name] }), NO_COLOR: '1' });
    const published: Record<string, Awaited<ReturnType<typeof run>>> = {};

    beforeAll(async () => {
      // The platform's mesh: the built-in domains (published by npm start, on the store).
      mesh = await npmStart({ ...env, MESH_MANIFEST: join(work, 'base.json') });
      await Promise.all(['shipping', 'sensors', 'sales'].map(startDomain));
      for (const name of ['shipping', 'sensors', 'sales']) published[name] = await publish(name);
    }, 240_000);

    afterAll(async () => {
      for (const started of Object.values(running)) await stop(started);
    });

    it('publishes the domains whose owners said who they are and what the product is for, and refuses the other for its placeholders alone', async () => {
      for (const name of ['shipping', 'sales']) {
        expect({ name, code: published[name]!.code, output: published[name]!.code === 0 ? '' : published[name]!.output }).toEqual({ name, code: 0, output: '' });
        expect(published[name]!.stdout).toMatch(new RegExp(`Published ${name} version 1`));
      }
      const refused = published.sensors!;
      expect(refused.code).toBe(1);
      const codes = [...refused.stdout.matchAll(/^ {2}error\s+(\S+)/gm)].map((m) => m[1]);
      expect(codes.length).toBeGreaterThan(1);
      expect(new Set(codes)).toEqual(new Set(['GOVERNANCE_PLACEHOLDER']));
      // Each is its team's, published by its token's subject.
      const status = await run(['registry', '--', 'status', '--registry', gateway.replace(/\/graphql$/, '/registry')], { REGISTRY_TOKEN: tokenFor({ subject: 'anyone', teams: ['x'] }) });
      expect(status.stdout).toMatch(/shipping\s+v1 .* by shipping-ci \(team shipping\) .* owner team shipping/);
      // The gateway serves them once they answer.
      await expect.poll(async () => (await postGraphQL<any>(gateway, '{ parcels(first: 1) { totalCount } leads(first: 1) { totalCount } }', undefined, { authorization: `Bearer ${tokenFor()}` })).body.data, { timeout: 30_000 }).toEqual({ parcels: { totalCount: 90 }, leads: { totalCount: 75 } });
    });

    it('serves the CSV domain under the policy: a steward reads the addresses, an analyst of EMEA the pseudonyms of EMEA rows only', async () => {
      const query = '{ parcels(first: 100) { totalCount nodes { parcelId carrier recipientEmail region weightKg } } }';
      const steward = await postGraphQL<any>(gateway, query, undefined, { authorization: `Bearer ${tokenFor()}` });
      expect(steward.body.errors).toBeUndefined();
      expect(steward.body.data.parcels.totalCount).toBe(90);
      expect(steward.body.data.parcels.nodes[4]).toEqual({ parcelId: 'P-004', carrier: 'Parcelo', recipientEmail: 'recipient4@example.org', region: 'APAC', weightKg: 4.5 });
      const analyst = await postGraphQL<any>(gateway, query, undefined, { authorization: `Bearer ${tokenFor({ subject: 'ana', roles: ['analyst'], regions: ['EMEA'] })}` });
      expect(analyst.body.errors).toBeUndefined();
      const emea = parcels.filter((p) => p.region === 'EMEA');
      expect(analyst.body.data.parcels.totalCount).toBe(emea.length);
      expect(analyst.body.data.parcels.nodes.map((n: any) => [n.parcelId, n.recipientEmail])).toEqual(emea.map((p) => [p.id, expectedPseudonym(DEV_HASH_KEY, 'Parcel.recipientEmail', p.email)]));
    });

    it('serves the PostgreSQL domain the same way', async () => {
      const query = '{ leads(first: 100) { nodes { leadId contactEmail region score } } }';
      const analyst = await postGraphQL<any>(gateway, query, undefined, { authorization: `Bearer ${tokenFor({ subject: 'ana', roles: ['analyst'], regions: ['APAC'] })}` });
      expect(analyst.body.errors).toBeUndefined();
      const apac = leads.filter((l) => l.region === 'APAC').sort((a, b) => (a.id < b.id ? -1 : 1));
      expect(analyst.body.data.leads.nodes).toEqual(apac.map((l) => ({ leadId: l.id, contactEmail: expectedPseudonym(DEV_HASH_KEY, 'Lead.contactEmail', l.email), region: 'APAC', score: l.score })));
      // The built-in domains answer as ever.
      const customers = await postGraphQL<any>(gateway, '{ customers(first: 2) { nodes { id } } }', undefined, { authorization: `Bearer ${tokenFor()}` });
      expect(customers.body.data.customers.nodes).toHaveLength(2);
    });

    it('lists the products in the catalog with their quality, freshness, profile and lineage', async () => {
      const { body } = await postGraphQL<any>(
        gateway,
        `{ dataProducts(filter: { domain: "shipping" }) { nodes { id status owners { username } quality { status } freshness { status }
            lineage { columns { field column source masking } } fields { name classification tags profile { rows distinctCount detections { detector } } } } } }`,
        undefined,
        { authorization: `Bearer ${tokenFor()}` },
      );
      expect(body.errors).toBeUndefined();
      const [product] = body.data.dataProducts.nodes;
      expect(product).toMatchObject({ id: 'shipping.parcels', status: 'ACTIVE', owners: [{ username: 'parcels@example.com' }], quality: { status: 'PASS' }, freshness: { status: 'FRESH' } });
      const email = product.fields.find((f: any) => f.name === 'recipientEmail');
      expect(email).toMatchObject({ classification: 'CONFIDENTIAL', tags: ['pii'], profile: { rows: 90, distinctCount: 90, detections: [{ detector: 'email' }] } });
      expect(product.lineage.columns.find((c: any) => c.field === 'recipientEmail')).toMatchObject({ column: 'recipient_email', masking: true });
    });

    it('publishes and serves the third domain once its owner fills the placeholders', async () => {
      for (const file of ['index.ts', 'schema.graphql']) {
        const path = join(work, 'sensors', file);
        const text = await readFile(path, 'utf8');
        expect(text).toMatch(/<fill in: /);
        await writeFile(path, text.replace(/<fill in: the product owner's e-mail>/g, 'iot@example.com').replace(/<fill in: [^>]*>/g, 'Hourly temperature readings of each sensor.'));
      }
      await stop(running.sensors);
      await startDomain('sensors');
      const again = await publish('sensors');
      expect(again.code, again.output).toBe(0);
      expect(again.stdout).toMatch(/Published sensors version 1/);
      const query = '{ readings(first: 2) { totalCount nodes { readingId sensor takenAt celsius } } }';
      const analyst = { authorization: `Bearer ${tokenFor({ subject: 'ana', roles: ['analyst'], regions: ['EMEA'] })}` };
      await expect.poll(async () => (await postGraphQL<any>(gateway, query, undefined, analyst)).body.data?.readings?.totalCount, { timeout: 30_000 }).toBe(48);
      const { body } = await postGraphQL<any>(gateway, query, undefined, analyst);
      expect(body.errors).toBeUndefined();
      expect(body.data.readings).toEqual({ totalCount: 48, nodes: [{ readingId: 'R-0', sensor: 'north', takenAt: '2026-11-01T00:00:00.000Z', celsius: 0 }, { readingId: 'R-1', sensor: 'south', takenAt: '2026-11-01T01:00:00.000Z', celsius: 0.25 }] });
    }, 240_000);
  });
});
