/**
 * Domains found by configuration (issue 25, part 2): a mesh manifest names a built-in domain and a
 * team's own domain in a folder outside the checkout (test/fixtures/outside-domain, on the kit's
 * public API alone, with its own raw file), and one that runs elsewhere. `npm start` with it starts
 * the two, publishes them, and the gateway serves the outside domain as any other: the policy's
 * masks for an analyst, its product in the catalog with its quality and freshness.
 */
import { cp, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POLICY_SPEC_URL } from '../policy/directives.js';
import { DEV_HASH_KEY } from '../policy/masking.js';
import { KIT_VERSION } from '../subgraphs/kit/index.js';
import { DEV_SIGNING_KEY, SIGNATURE_HEADER, signSubgraphRequest } from '../policy/subgraph-signature.js';
import { freePort, postGraphQL, tokenFor } from './harness/mesh.js';
import { npmStart, stop, type Started } from './harness/npm-start.js';
import { expectedPseudonym } from './harness/pseudonym.js';
import { runProcess } from './harness/run-process.js';

const root = resolve(import.meta.dirname, '..');
const EMAILS = ['ana@example.com', 'bo@example.org', 'cy@example.net'];

/** `npm run -s <args>` in the checkout. */
const run = (args: readonly string[], env: NodeJS.ProcessEnv) => runProcess('npm', ['run', '-s', ...args], { cwd: root, env });

describe('a mesh manifest with a domain from outside the repository', () => {
  let work: string;
  let mesh: Started | undefined;
  let gateway: string;
  let env: NodeJS.ProcessEnv;
  let shippingUrl: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'mesh-outside-'));
    // The team's domain, in its own folder: it imports the kit by its package name, which the mesh provides.
    await cp(join(root, 'test/fixtures/outside-domain'), join(work, 'shipping'), { recursive: true });
    expect(await readFile(join(work, 'shipping/index.ts'), 'utf8')).toMatch(/ from '@data-mesh\/kit';/);
    // Its raw file, where the manifest says (`data`).
    await mkdir(join(work, 'raw'));
    const rows = EMAILS.map((email, i) => `S-00${i + 1},${i === 1 ? 'Swiftly' : 'Parcelo'},${email},${(i + 1) * 1.25}`);
    await writeFile(join(work, 'raw', 'shipments.csv'), ['id,carrier,recipient_email,weight_kg', ...rows, ''].join('\n'));
    const [port, customers, shipping, elsewhere] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    gateway = `http://127.0.0.1:${port}/graphql`;
    shippingUrl = `http://127.0.0.1:${shipping}/graphql`;
    await writeFile(
      join(work, 'mesh.json'),
      JSON.stringify({
        domains: [
          { name: 'customers', module: join(root, 'subgraphs/customers/index.js'), url: `http://127.0.0.1:${customers}/graphql` },
          { name: 'shipping', module: './shipping/index.ts', url: `http://127.0.0.1:${shipping}/graphql`, data: './raw' },
          { name: 'ledger', url: `http://127.0.0.1:${elsewhere}/graphql` },
        ],
      }),
    );
    env = { MESH_MANIFEST: join(work, 'mesh.json'), DATA_DIR: join(work, 'data'), PORT: String(port), SUBGRAPHS: '', SCALE: '', SEED: '', LOG_LEVEL: 'info' };
    // Five weeks of daily runs the shipping pipeline made before, each serving 3 rows: its history, for the anomaly detector.
    await mkdir(join(work, 'data', 'pipelines'), { recursive: true });
    const day = 86_400_000;
    const past = Array.from({ length: 35 }, (_, i) => {
      const at = new Date(Date.now() - (35 - i) * day).toISOString();
      return { runId: `past-${i}`, pipeline: 'shipping.shipments', trigger: 'schedule', startedAt: at, endedAt: at, attempts: 1, outcome: 'succeeded', load: 'swapped', rows: 3, error: null, measures: { at, rows: 3, columns: {} } };
    });
    await writeFile(join(work, 'data', 'pipelines', 'shipping.jsonl'), past.map((run) => `${JSON.stringify(run)}\n`).join(''));
    mesh = await npmStart(env);
  });

  afterAll(async () => {
    await stop(mesh);
    await rm(work, { recursive: true, force: true });
  });

  it('starts the domains the manifest gives a module, and leaves the one that runs elsewhere to join by publishing', async () => {
    // Said after "The mesh is ready.", with the list of subgraphs.
    await expect.poll(() => mesh!.output()).toMatch(/ledger\s+http:\/\/127\.0\.0\.1:\d+\/graphql {2}\(runs elsewhere: joins by publishing\)/);
    const started = [...mesh!.output().matchAll(/\[launcher\] (\w+) started/g)].map((m) => m[1]);
    expect(started.sort()).toEqual(['customers', 'gateway', 'shipping']);
    expect(mesh!.output()).toMatch(/\[registry\] published shipping version 1/);
    // Customers is fed by finance's orders, which this mesh does not serve: the mesh starts all the same, and says so.
    await expect.poll(() => mesh!.output()).toMatch(/customers cannot read its input finance\.orders \(GRAPHQL_VALIDATION_FAILED\)/);
    const inputs = (await (await fetch(new URL('/health/inputs', JSON.parse(await readFile(join(work, 'mesh.json'), 'utf8')).domains[0].url))).json()) as { status: string };
    expect(inputs.status).toBe('failing');
  });

  it('serves the outside domain through the gateway under the policy: the steward reads the address, the analyst its pseudonym', async () => {
    const query = '{ shipments(first: 3) { totalCount nodes { id carrier recipientEmail weightKg } } }';
    const steward = await postGraphQL<any>(gateway, query, undefined, { authorization: `Bearer ${tokenFor()}` });
    expect(steward.body.errors).toBeUndefined();
    expect(steward.body.data.shipments.totalCount).toBe(3);
    expect(steward.body.data.shipments.nodes.map((n: any) => n.recipientEmail)).toEqual(EMAILS);
    expect(steward.body.data.shipments.nodes[1]).toEqual({ id: 'S-002', carrier: 'Swiftly', recipientEmail: 'bo@example.org', weightKg: 2.5 });
    const analyst = await postGraphQL<any>(gateway, query, undefined, { authorization: `Bearer ${tokenFor({ subject: 'a', roles: ['analyst'], regions: ['EMEA'] })}` });
    expect(analyst.body.errors).toBeUndefined();
    expect(analyst.body.data.shipments.nodes.map((n: any) => n.recipientEmail)).toEqual(EMAILS.map((email) => expectedPseudonym(DEV_HASH_KEY, 'Shipment.recipientEmail', email)));
    // The built-in domain of the same manifest answers as ever.
    const customers = await postGraphQL<any>(gateway, '{ customers(first: 1) { nodes { id } } }', undefined, { authorization: `Bearer ${tokenFor()}` });
    expect(customers.body.data.customers.nodes).toHaveLength(1);
  });

  it('lists its product in the catalog, with its quality and freshness', async () => {
    const { body } = await postGraphQL<any>(gateway, '{ dataProducts(filter: { domain: "shipping" }) { nodes { id title quality { status } freshness { status } } } }', undefined, { authorization: `Bearer ${tokenFor()}` });
    expect(body.errors).toBeUndefined();
    expect(body.data.dataProducts.nodes).toEqual([{ id: 'shipping.shipments', title: 'Shipments', quality: { status: 'PASS' }, freshness: { status: 'FRESH' } }]);
  });

  it('loads new raw data on its pipeline\'s schedule and serves it without a restart; a request reads one version', async () => {
    const count = async () => {
      const { body } = await postGraphQL<any>(gateway, '{ shipments(first: 50) { totalCount nodes { id } } }', undefined, { authorization: `Bearer ${tokenFor()}` });
      expect(body.errors).toBeUndefined();
      // The count and the rows of one answer come from one version.
      expect(body.data.shipments.nodes).toHaveLength(body.data.shipments.totalCount);
      return body.data.shipments.totalCount as number;
    };
    expect(await count()).toBe(3);
    const rows = [...EMAILS, 'di@example.com'].map((email, i) => `S-00${i + 1},Parcelo,${email},${i + 1}.5`);
    await writeFile(join(work, 'raw', 'shipments.csv.part'), ['id,carrier,recipient_email,weight_kg', ...rows, ''].join('\n'));
    await rename(join(work, 'raw', 'shipments.csv.part'), join(work, 'raw', 'shipments.csv'));
    const seen = new Set<number>();
    await expect.poll(async () => {
      const total = await count();
      seen.add(total);
      return total;
    }, { timeout: 45_000, interval: 100 }).toBe(4);
    expect([...seen].every((total) => total === 3 || total === 4)).toBe(true);
    expect(mesh!.output()).toMatch(/pipeline run succeeded[\s\S]*"pipeline":\s*"shipping\.shipments"|shipping\.shipments[\s\S]*pipeline run succeeded/);
    // Its runs, in the subgraph's metrics: the scheduled ones that succeeded, and a last success after the swap.
    const metrics = await (await fetch(new URL('/metrics', shippingUrl))).text();
    const succeeded = Number(/^pipeline_runs_total\{[^}]*pipeline="shipping\.shipments"[^}]*trigger="schedule"[^}]*outcome="succeeded"[^}]*\} (\d+)/m.exec(metrics)?.[1]);
    expect(succeeded).toBeGreaterThanOrEqual(1);
    expect(metrics).toMatch(/^pipeline_schedule_seconds\{[^}]*pipeline="shipping\.shipments"[^}]*\} 10$/m);
    // And in the catalog (the gateway reads the domains' entries every 30 s): its schedule, next run, and the run that swapped the new version in.
    const pipeline = async () =>
      (await postGraphQL<any>(gateway, '{ dataProduct(id: "shipping.shipments") { pipeline { everySeconds nextRunAt paused slaMet runs(first: 20) { trigger outcome load rows attempts startedAt endedAt error } } } }', undefined, { authorization: `Bearer ${tokenFor()}` })).body.data?.dataProduct?.pipeline;
    await expect.poll(async () => (await pipeline())?.runs.find((run: any) => run.load === 'swapped')?.rows, { timeout: 60_000, interval: 1_000 }).toBe(4);
    const seenPipeline = await pipeline();
    expect(seenPipeline).toMatchObject({ everySeconds: 10, paused: false, slaMet: true });
    expect(Date.parse(seenPipeline.nextRunAt)).toBeGreaterThan(Date.now() - 15_000);
    expect(seenPipeline.runs.find((run: any) => run.load === 'swapped')).toMatchObject({ trigger: 'schedule', outcome: 'succeeded', attempts: 1, error: null });
    // Against five weeks of 3 rows, 4 rows is outside the band the history predicts: reported, with the band.
    const anomalies = (await postGraphQL<any>(gateway, '{ dataProduct(id: "shipping.shipments") { pipeline { runs(first: 20) { load rows anomalies { measure kind value expectedLow expectedHigh message } } } } }', undefined, { authorization: `Bearer ${tokenFor()}` })).body.data.dataProduct.pipeline.runs.find((run: any) => run.load === 'swapped' && run.rows === 4).anomalies;
    expect(anomalies).toEqual([{ measure: 'rows', kind: 'above', value: 4, expectedLow: expect.any(Number), expectedHigh: expect.any(Number), message: expect.stringMatching(/^rows is 4, above the expected 2\.\d+ to 3\.\d+ \(5 same-weekday runs\)\.$|^rows is 4, above the expected 2\.\d+ to 3\.\d+ \(35 runs\)\.$/) }]);
    expect(anomalies[0].expectedHigh).toBeLessThan(4);
    expect(mesh!.output()).toMatch(/data anomaly: rows is 4, above the expected/);
    const counted = await (await fetch(new URL('/metrics', shippingUrl))).text();
    expect(counted).toMatch(/^pipeline_run_anomalies_total\{[^}]*pipeline="shipping\.shipments"[^}]*measure="rows"[^}]*kind="above"[^}]*\} 1$/m);
  }, 150_000);

  it('lets an operator see, pause, resume and run a pipeline with npm run pipelines, and refuses what cannot be done, coded', async () => {
    const status = await run(['pipelines', '--', 'status', '--domain', 'shipping'], env);
    expect(status.code, status.output).toBe(0);
    expect(status.stdout).toMatch(/^shipping\.shipments\s+every 10 s\s+next \d{4}-\d\d-\d\dT[\d:.]+Z {2}last succeeded \(schedule, load \w+\) at /m);
    expect((await run(['pipelines', '--', 'pause', 'shipping.shipments'], env)).stdout.trim()).toBe('shipping.shipments paused.');
    expect((await run(['pipelines', '--', 'status', '--domain', 'shipping'], env)).stdout).toMatch(/^shipping\.shipments\s+every 10 s\s+PAUSED/m);
    const refused = await run(['pipelines', '--', 'run', 'shipping.shipments'], env);
    expect({ code: refused.code, stderr: refused.stderr.trim() }).toEqual({ code: 1, stderr: 'PIPELINE_PAUSED: "shipping.shipments" is paused: resume it first.' });
    expect((await run(['pipelines', '--', 'resume', 'shipping.shipments'], env)).code).toBe(0);
    const ran = await run(['pipelines', '--', 'run', 'shipping.shipments'], env);
    expect(ran.code, ran.output).toBe(0);
    expect(ran.stdout).toMatch(/^shipping\.shipments: run \S+ queued\.$/m);
    const unknown = await run(['pipelines', '--', 'run', 'shipping.parcels'], env);
    expect({ code: unknown.code, stderr: unknown.stderr.trim() }).toEqual({ code: 2, stderr: expect.stringMatching(/^PIPELINE_UNKNOWN: No pipeline "shipping\.parcels"; pipelines: shipping\.shipments\.$/) });
    expect((await run(['pipelines', '--', 'run', 'nowhere.things'], env)).stderr).toMatch(/^PIPELINE_UNKNOWN: "nowhere\.things" is not <domain>\.<product> of a domain of /);
    // Nobody but the platform's key holders: an unsigned or wrongly signed call changes nothing.
    const body = JSON.stringify({ action: 'pause', pipeline: 'shipping.shipments' });
    for (const headers of [{}, { [SIGNATURE_HEADER]: signSubgraphRequest({ key: 'a-key-that-is-not-the-gateways-0123456789', body }) }]) {
      const attempt = await fetch(new URL('pipelines', shippingUrl), { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
      expect(attempt.status).toBe(401);
    }
    expect((await run(['pipelines', '--', 'status', '--domain', 'shipping'], env)).stdout).not.toMatch(/PAUSED/);
    // A signed call that asks for something the route does not do: 400, nothing done.
    for (const asked of [{ action: 'drop', pipeline: 'shipping.shipments' }, { action: 'pause' }, { action: 'pause', pipeline: 42 }]) {
      const text = JSON.stringify(asked);
      const wrong = await fetch(new URL('pipelines', shippingUrl), { method: 'POST', headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signSubgraphRequest({ key: DEV_SIGNING_KEY, body: text }) }, body: text });
      expect({ asked, status: wrong.status, code: ((await wrong.json()) as any).error.code }).toEqual({ asked, status: 400, code: 'BAD_REQUEST' });
    }
    expect((await run(['pipelines', '--', 'status', '--domain', 'shipping'], env)).stdout).not.toMatch(/PAUSED/);
    // The domain that runs elsewhere does not answer here: said, exit 2.
    const all = await run(['pipelines', '--', 'status'], env);
    expect(all.code).toBe(2);
    expect(all.stdout).toMatch(/^ledger\s+PIPELINE_UNREACHABLE: the ledger subgraph at http:\/\/127\.0\.0\.1:\d+\/graphql did not answer/m);
    expect(all.stdout).toMatch(/^customers\.customers\s+every 1 d/m);
  });

  it("prints the outside domain's SDL, and refuses a manifest whose module declares no domain, saying so, with exit 1", async () => {
    const sdl = await run(['sdl', '--', 'shipping'], env);
    expect(sdl.code).toBe(0);
    expect(sdl.stdout).toMatch(/type Shipment @key\(fields: "id"\)/);
    await writeFile(join(work, 'not-a-domain.ts'), 'export const nothing = 1;\n');
    await writeFile(join(work, 'bad.json'), JSON.stringify({ domains: [{ name: 'bad', module: './not-a-domain.ts', url: 'http://127.0.0.1:1/graphql' }] }));
    const refused = await run(['sdl', '--', 'bad'], { ...env, MESH_MANIFEST: join(work, 'bad.json') });
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim()).toBe(`Domain "bad": its module ${join(work, 'not-a-domain.ts')} must export one domain made by defineDomain, found 0.`);
  });

  it("takes a domain whose package asks for the kit this mesh provides, and refuses one that asks for another, naming both", async () => {
    const versioned = join(work, 'versioned');
    await cp(join(work, 'shipping'), versioned, { recursive: true });
    await writeFile(join(work, 'versioned.json'), JSON.stringify({ domains: [{ name: 'shipping', module: './versioned/index.ts', url: 'http://127.0.0.1:1/graphql' }] }));
    const asking = async (range: string) => {
      await writeFile(join(versioned, 'package.json'), JSON.stringify({ name: '@acme/shipping', type: 'module', peerDependencies: { '@data-mesh/kit': range } }));
      return run(['sdl', '--', 'shipping'], { ...env, MESH_MANIFEST: join(work, 'versioned.json') });
    };
    expect((await asking('^1.3.0')).code).toBe(0);
    const refused = await asking('^2.0.0');
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim()).toBe(
      `Domain "shipping" needs @data-mesh/kit ^2.0.0 (${join(versioned, 'package.json')}); this mesh provides ${KIT_VERSION}, which enforces ${POLICY_SPEC_URL}.`,
    );
  });
});
