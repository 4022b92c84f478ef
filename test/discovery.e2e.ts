/**
 * Sensitive-data discovery (issue 14, part 5): each load profiles its products' columns, on each
 * warehouse dialect, without keeping a personal value; the registry refuses a version whose policy
 * the data contradicts (a field that holds emails not tagged pii, a HASH mask on a 4-value column),
 * and so does the subgraph's start-up; the catalog shows a field's profile only to callers who may
 * read the field as it is.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { parse, print } from 'graphql';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runRegistryCli } from '../gateway/registry/cli.js';
import { openRegistry } from '../gateway/registry/open.js';
import { checkProposal, fetchSubgraphDocuments, publishSubgraph } from '../gateway/registry/publish.js';
import type { ProductDocument } from '../gateway/catalog/domain-entries.js';
import type { ProductProfile } from '../policy/discovery.js';
import { governanceRules } from '../policy/governance.rules.js';
import { DEV_HASH_KEY } from '../policy/masking.js';
import { customers } from '../subgraphs/customers/index.js';
import { finance } from '../subgraphs/finance/index.js';
import { products } from '../subgraphs/products/index.js';
import { printDomainSdl } from '../subgraphs/kit/domain-schema.js';
import { profilesAt } from '../subgraphs/kit/profiles.js';
import { DiscoveryError, startSubgraphServer } from '../subgraphs/kit/subgraph-server.js';
import { ensureWarehouse } from '../subgraphs/kit/warehouse/build.js';
import { openWarehouse } from '../subgraphs/kit/warehouse/open.js';
import { generateSourceData } from '../subgraphs/synthetic-sources/generate.js';
import { logLines, startTestMesh, testIdentity, testLog, tokenFor, type TestMesh } from './harness/mesh.js';
import { onPostgres, TEST_POSTGRES } from './harness/postgres.js';

const PERSONAL_COLUMNS = ['name', 'email', 'phone', 'birth_date'] as const;

/** The customers SDL with `email` no longer tagged pii (still CONFIDENTIAL, so the lint alone has nothing to say). */
const withoutPiiOnEmail = (sdl: string) => {
  const edited = sdl.replace(/email: String @classify\(level: "CONFIDENTIAL", tags: \["pii"\]\)/, 'email: String @classify(level: "CONFIDENTIAL")');
  expect(edited).not.toBe(sdl);
  return edited;
};
/** The finance SDL with the invoice status (4 values) served as text, hashed. */
const hashedInvoiceStatus = (sdl: string) => {
  const edited = sdl.replace(/ {2}status: InvoiceStatus!/, '  status: String! @mask(strategy: "HASH", exemptRoles: ["finance"])');
  expect(edited).not.toBe(sdl);
  return edited;
};

describe.each(['duckdb', 'postgres'] as const)('column profiles at each load (%s)', (dialect) => {
  let dir: string;
  const database = `discovery_test_${process.pid}_${randomUUID().slice(0, 8)}`;
  const urlOf = (domain: string) => (dialect === 'duckdb' ? `duckdb:${join(dir, `${domain}.duckdb`)}` : `${TEST_POSTGRES}/${database}?schema=${domain}`);
  const profiles = new Map<string, ProductProfile>();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'discovery-'));
    const manifest = await generateSourceData({ rawDir: join(dir, 'raw'), scale: 0.02 });
    if (dialect === 'postgres') await onPostgres(`CREATE DATABASE ${database}`);
    for (const domain of [customers, products]) {
      const build = await ensureWarehouse({ domain, url: urlOf(domain.name), rawDir: join(dir, 'raw', domain.name), sourceFingerprint: manifest.fingerprint, now: () => new Date('2026-12-02T10:00:00Z') });
      // What the build says it profiled is what the warehouse keeps.
      expect(await profilesAt(urlOf(domain.name))).toEqual([...build.profiles!].sort((a, b) => (a.product < b.product ? -1 : 1)));
      for (const profile of build.profiles ?? []) profiles.set(profile.product, profile);
    }
  });

  afterAll(async () => {
    if (dialect === 'postgres') await onPostgres(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await rm(dir, { recursive: true, force: true });
  });

  const column = (product: string, name: string) => profiles.get(product)!.columns.find((candidate) => candidate.column === name)!;

  it('profiles every column of every product, with counts that match the warehouse', async () => {
    expect([...profiles.keys()].sort()).toEqual(['customers.customers', 'products.categories', 'products.products']);
    const warehouse = openWarehouse<any>(urlOf('customers'), { readOnly: true });
    try {
      const [counted] = (
        await sql<Record<string, unknown>>`select count(*) as n, count(distinct email) as emails, count(distinct country) as countries, count(distinct birth_date) as births from customers`.execute(warehouse.db)
      ).rows;
      const profile = profiles.get('customers.customers')!;
      expect(profile).toMatchObject({ table: 'customers', rows: Number(counted!.n), profiledAt: '2026-12-02T10:00:00.000Z' });
      expect(profile.columns.map((c) => c.column)).toEqual(customers.tables.find((t) => t.name === 'customers')!.columns.map((c) => c.name));
      expect(column('customers.customers', 'email')).toMatchObject({ field: 'email', nullShare: 0, distinctCount: Number(counted!.emails), min: null, max: null, sampled: Number(counted!.n) });
      expect(column('customers.customers', 'country').distinctCount).toBe(Number(counted!.countries));
      expect(column('customers.customers', 'birth_date').distinctCount).toBe(Number(counted!.births));
    } finally {
      await warehouse.close();
    }
    const prices = openWarehouse<any>(urlOf('products'), { readOnly: true });
    try {
      const [bounds] = (await sql<Record<string, unknown>>`select cast(min(list_price) as varchar) as low, cast(max(list_price) as varchar) as high, cast(min(launch_date) as varchar) as first from products`.execute(prices.db)).rows;
      // Numbers and dates of a field that holds nothing personal keep their bounds.
      expect(column('products.products', 'list_price')).toMatchObject({ min: bounds!.low, max: bounds!.high, withheld: false, detections: [] });
      expect(column('products.products', 'launch_date').min).toBe(bounds!.first);
    } finally {
      await prices.close();
    }
  });

  it('recognises the personal columns, and nothing personal in the others', () => {
    expect(column('customers.customers', 'email').detections[0]).toEqual({ detector: 'email', share: 1 });
    expect(column('customers.customers', 'name').detections[0]!.detector).toBe('personName');
    expect(column('customers.customers', 'name').detections[0]!.share).toBeGreaterThan(0.9);
    expect(column('customers.customers', 'phone').detections[0]!.detector).toBe('phone');
    expect(column('customers.customers', 'phone').detections[0]!.share).toBeGreaterThan(0.9);
    expect(column('customers.customers', 'birth_date').detections).toEqual([{ detector: 'birthDate', share: 1 }]);
    for (const name of ['id', 'country', 'region', 'segment', 'signup_date']) expect(column('customers.customers', name).detections).toEqual([]);
    // Product names ("Maren Classic Sweater": a brand that is also a given name) stay far below the threshold.
    expect(column('products.products', 'name').detections.every((found) => found.share < 0.1)).toBe(true);
  });

  it('keeps no value of a personal column: text gives lengths, personal dates no bounds', async () => {
    const birth = column('customers.customers', 'birth_date');
    expect(birth).toMatchObject({ min: null, max: null, withheld: true });
    // Masked (a shadow DATE_YEAR): its bounds are withheld as well.
    expect(column('customers.customers', 'signup_date')).toMatchObject({ min: null, max: null, withheld: true });
    expect(column('customers.customers', 'email').minLength).toBeGreaterThan(5);
    const stored = JSON.stringify([...profiles.values()]);
    const rows = parseCsv(await readFile(join(dir, 'raw', 'customers', 'customers.csv')), { columns: true }) as Record<string, string>[];
    const leaked = rows.flatMap((row) => PERSONAL_COLUMNS.map((name) => row[name]!)).filter((value) => stored.includes(value));
    expect(leaked).toEqual([]);
  });
});

describe('discovery findings at publish, at start, and in the catalog', () => {
  let mesh: TestMesh;
  let customersSdl: string;
  let financeSdl: string;
  let customersDocuments: readonly ProductDocument[];

  beforeAll(async () => {
    mesh = await startTestMesh();
    customersSdl = printDomainSdl(customers);
    financeSdl = printDomainSdl(finance);
    customersDocuments = (await fetchSubgraphDocuments({ name: 'customers', url: mesh.subgraphs.customers!.url }))!;
  });

  afterAll(async () => {
    await mesh?.stop();
  });

  it('publishes each product with the profile of its serving load', async () => {
    const registry = await openRegistry(mesh.registryUrl);
    try {
      const serving = (await registry.state())!.subgraphs.find((subgraph) => subgraph.name === 'customers')!;
      const profile = serving.dataProducts!.find((product) => product.id === 'customers.customers')!.profile!;
      expect(profile.columns.find((column) => column.column === 'email')!.detections[0]).toEqual({ detector: 'email', share: 1 });
    } finally {
      await registry.close();
    }
  });

  it('refuses a version that drops the pii tag from Customer.email, naming the email detector', async () => {
    const registry = await openRegistry(mesh.registryUrl);
    try {
      const proposal = { name: 'customers', url: mesh.subgraphs.customers!.url, sdl: withoutPiiOnEmail(customersSdl) };
      for (const dataProducts of [undefined, customersDocuments, customersDocuments.map(({ profile: _dropped, ...rest }) => rest)]) {
        // With the serving documents, its own, or its own stripped of their profiles: the serving load's profile judges it.
        const report = await checkProposal(registry, { ...proposal, ...(dataProducts ? { dataProducts } : {}) });
        expect(report.accepted).toBe(false);
        const found = report.findings.filter((f) => f.code === 'GOVERNANCE_PII_UNDECLARED');
        expect(found).toHaveLength(1);
        expect(found[0]).toMatchObject({ severity: 'error', coordinate: 'Customer.email' });
        expect(found[0]!.message).toMatch(/^Customer\.email is not tagged pii, but 100% of the 200 values of customers\.email sampled at the load of .+ look like email addresses \(detector email\)/);
      }
      // The serving SDL passes: the finding is the tag, not the data.
      expect((await checkProposal(registry, { name: 'customers', url: mesh.subgraphs.customers!.url, sdl: customersSdl })).findings.filter((f) => f.code.startsWith('GOVERNANCE'))).toEqual([]);
    } finally {
      await registry.close();
    }
  });

  it('refuses a HASH mask on a column of 4 values, and publishes nothing', async () => {
    const registry = await openRegistry(mesh.registryUrl);
    try {
      const before = await registry.revision();
      const outcome = await publishSubgraph(registry, { name: 'finance', url: mesh.subgraphs.finance!.url, sdl: hashedInvoiceStatus(financeSdl), publishedBy: 'test' });
      expect(outcome.published).toBeNull();
      expect(outcome.revision).toBe(before);
      const found = outcome.report.findings.find((f) => f.code === 'GOVERNANCE_HASH_LOW_CARDINALITY');
      expect(found).toMatchObject({ severity: 'error', coordinate: 'Invoice.status' });
      expect(found!.message).toMatch(/invoices\.status holds only 4 distinct values over \d+ rows \(fewer than 50\).*Use REDACT/);
    } finally {
      await registry.close();
    }
  });

  it('is reported by the registry command line, and a malformed profile is refused', async () => {
    const folder = join(mesh.dataDir, 'discovery-documents');
    await mkdir(folder, { recursive: true });
    for (const document of customersDocuments) {
      for (const [kind, content] of [['odps', document.odps], ['odcs', document.odcs], ['profile', document.profile]] as const) {
        await writeFile(join(folder, `${document.id}.${kind}.json`), JSON.stringify(content));
      }
    }
    const sdlFile = join(mesh.dataDir, 'customers-without-pii.graphql');
    await writeFile(sdlFile, withoutPiiOnEmail(customersSdl));
    const refused = await runRegistryCli(['check', 'customers', '--schema', sdlFile, '--documents', folder, '--registry', mesh.registryUrl]);
    expect(refused.exitCode).toBe(1);
    expect(refused.output).toMatch(/error\s+GOVERNANCE_PII_UNDECLARED Customer\.email: .*\(detector email\)/);

    // A profile that says less than a profile can (a share above 1, an unknown detector) is not judged: it is refused.
    const profile = customersDocuments.find((document) => document.id === 'customers.customers')!.profile!;
    for (const broken of [
      { ...profile, columns: profile.columns.map((column) => ({ ...column, detections: [{ detector: 'email', share: 7 }] })) },
      { ...profile, columns: profile.columns.map((column) => ({ ...column, detections: [{ detector: 'horoscope', share: 0.1 }] })) },
      { ...profile, product: 'finance.orders' },
    ]) {
      await writeFile(join(folder, 'customers.customers.profile.json'), JSON.stringify(broken));
      const failed = await runRegistryCli(['check', 'customers', '--schema', sdlFile, '--documents', folder, '--registry', mesh.registryUrl]);
      expect(failed.exitCode).toBe(2);
      expect(failed.output).toMatch(/REGISTRY_DOCUMENTS_UNAVAILABLE.*customers\.customers: profile/);
    }
  });

  const startWith = async (domain: typeof customers | typeof finance, sdl: string, rules = governanceRules) =>
    startSubgraphServer({
      domain: { ...domain, typeDefs: parse(sdl) },
      warehouse: mesh.warehouses[domain.name]!,
      profiles: await profilesAt(mesh.warehouses[domain.name]!.location),
      log: testLog,
      identity: testIdentity,
      hashKey: DEV_HASH_KEY,
      audit: mesh.audits[domain.name]!,
      port: 0,
      rules,
    });

  it('refuses to start a subgraph whose data contradicts its policy', async () => {
    const piiStart = startWith(customers, print(customers.typeDefs).replace(/email: String @classify\(level: "CONFIDENTIAL", tags: \["pii"\]\)/, 'email: String @classify(level: "CONFIDENTIAL")'));
    await expect(piiStart).rejects.toBeInstanceOf(DiscoveryError);
    await expect(piiStart).rejects.toThrow(/\[GOVERNANCE_PII_UNDECLARED\] Customer\.email is not tagged pii, but 100% .*\(detector email\)/);
    const hashStart = startWith(finance, hashedInvoiceStatus(print(finance.typeDefs)));
    await expect(hashStart).rejects.toThrow(/\[GOVERNANCE_HASH_LOW_CARDINALITY\] Invoice\.status is masked with HASH, but invoices\.status holds only 4 distinct values/);
  });

  it('starts with a warning when the governance rules make findings warnings', async () => {
    const lenient = { ...governanceRules, discovery: { ...governanceRules.discovery, severity: 'warning' as const } };
    const before = logLines.length;
    const server = await startWith(customers, print(customers.typeDefs).replace(/email: String @classify\(level: "CONFIDENTIAL", tags: \["pii"\]\)/, 'email: String @classify(level: "CONFIDENTIAL")'), lenient);
    await server.stop();
    const warned = logLines.slice(before).map((line) => JSON.parse(line) as { level: number; code?: string; coordinate?: string });
    expect(warned).toContainEqual(expect.objectContaining({ level: 40, code: 'GOVERNANCE_PII_UNDECLARED', coordinate: 'Customer.email' }));
  });

  const PROFILE_QUERY = `query ($id: ID!) { dataProduct(id: $id) { fields { name forYou { access } profile { rows nullShare distinctCount min max minLength maxLength sampled detections { detector description share } } } } }`;
  const profilesAs = async (authorization: string, id: string) => {
    const { body } = await mesh.query<{ dataProduct: { fields: { name: string; forYou: { access: string }; profile: Record<string, any> | null }[] } }>(PROFILE_QUERY, { id }, { authorization });
    expect(body.errors).toBeUndefined();
    return new Map(body.data!.dataProduct.fields.map((field) => [field.name, field]));
  };
  const steward = `Bearer ${tokenFor({ subject: 'stu', roles: ['steward'], purpose: 'customer-support' })}`;
  const analyst = `Bearer ${tokenFor({ subject: 'ana', roles: ['analyst'], regions: ['EMEA'] })}`;

  it('shows a field\'s profile in the catalog only to callers who may read the field as it is', async () => {
    const asSteward = await profilesAs(steward, 'customers.customers');
    expect(asSteward.get('email')!.profile).toMatchObject({ rows: 200, distinctCount: 200, min: null, detections: [{ detector: 'email', description: 'email addresses', share: 1 }] });
    expect(asSteward.get('birthDate')!.profile).toMatchObject({ min: null, max: null, detections: [{ detector: 'birthDate', share: 1 }] });

    const asAnalyst = await profilesAs(analyst, 'customers.customers');
    // Masked (HASH) or denied for an analyst: no profile.
    expect(asAnalyst.get('email')).toMatchObject({ forYou: { access: 'MASKED' }, profile: null });
    expect(asAnalyst.get('birthDate')).toMatchObject({ forYou: { access: 'DENIED' }, profile: null });
    expect(asAnalyst.get('country')!.profile).toMatchObject({ detections: [] });

    // Bounds are of every row: withheld from a caller the row policy limits, given to one it does not.
    const [bounds] = await mesh.sql<{ low: string; high: string }>('finance', 'select cast(min(total_amount) as varchar) as low, cast(max(total_amount) as varchar) as high from orders');
    expect((await profilesAs(analyst, 'finance.orders')).get('total')!.profile).toMatchObject({ min: null, max: null });
    expect((await profilesAs(steward, 'finance.orders')).get('total')!.profile).toMatchObject({ min: bounds!.low, max: bounds!.high });
    // A product without a row policy: its numbers' bounds for any reader.
    expect((await profilesAs(analyst, 'products.products')).get('listPrice')!.profile!.min).toMatch(/^\d+\.\d{2}$/);
  });

  it('never carries a personal value through the catalog, whoever asks', async () => {
    const emails = (await mesh.sql<{ email: string; name: string }>('customers', 'select email, name from customers')).flatMap((row) => [row.email, row.name]);
    const { body } = await mesh.query(`{ dataProducts(first: 100) { nodes { fields { name profile { min max detections { detector share } } } } } }`, undefined, { authorization: steward });
    const answer = JSON.stringify(body);
    expect(answer).toContain('personName');
    expect(emails.filter((value) => answer.includes(value))).toEqual([]);
  });
});
