/**
 * Data product metadata as the standards name it (issue 13, parts 2 and 3): every product of every
 * domain exports an ODPS 1.0 document and an ODCS 3.1 contract that validate against the standards'
 * own JSON Schemas (in ../shared/schemas, not copied here), carry the declaration's metadata and
 * the policy of every column; `npm run catalog -- export` writes them; a product that breaks a
 * harmonization rule keeps its subgraph from starting, naming the product and the rule.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2019 from 'ajv/dist/2019.js';
import addFormats from 'ajv-formats';
import { Kind } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkHarmonization } from '../policy/harmonization.rules.js';
import { domains } from '../subgraphs/domains.js';
import { domainProductDocuments, warehouseServerOf, type ProductDocuments } from '../subgraphs/kit/product-documents.js';
import { HarmonizationError, productFactsOf } from '../subgraphs/kit/subgraph-server.js';
import { startupFailureOf } from './harness/mesh.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const schemas = join(root, '..', 'shared', 'schemas');

async function validator(file: string) {
  const ajv = new Ajv2019.default({ allErrors: true, strict: false });
  addFormats.default(ajv);
  return ajv.compile(JSON.parse(await readFile(join(schemas, file), 'utf8')));
}

let documents: ProductDocuments[];
beforeAll(() => {
  documents = domains.flatMap((domain) => domainProductDocuments(domain, warehouseServerOf(`duckdb:/srv/mesh/warehouses/${domain.name}.duckdb`)));
});

describe('the standard documents of every data product', () => {
  it('cover every declared product, addressed <domain>.<product>', () => {
    expect(documents.map((d) => d.id).sort()).toEqual(['customers.customers', 'finance.invoices', 'finance.orders', 'products.categories', 'products.products']);
  });

  it('validate against the ODPS 1.0 and ODCS 3.1 JSON Schemas', async () => {
    const [odps, odcs] = await Promise.all([validator('odps/odps-json-schema-v1.0.0.json'), validator('odcs/odcs-json-schema-v3.1.0.json')]);
    for (const document of documents) {
      expect(odps(document.odps), `${document.id} ODPS: ${JSON.stringify(odps.errors)}`).toBe(true);
      expect(odcs(document.odcs), `${document.id} ODCS: ${JSON.stringify(odcs.errors)}`).toBe(true);
    }
    // The validators are not lenient: a document without its required fields is refused.
    const { id: _id, ...withoutId } = documents[0]!.odps;
    expect(odps(withoutId)).toBe(false);
    expect(odcs({ ...documents[0]!.odcs, servers: [{ server: 'x', type: 'no-such-server-type' }] })).toBe(false);
  });

  it('carry the declaration: status, owners, input ports, output ports and SLA', () => {
    const orders = documents.find((d) => d.id === 'finance.orders')!;
    expect(orders.odps).toMatchObject({
      kind: 'DataProduct',
      status: 'active',
      domain: 'finance',
      version: '1.0.0',
      team: { members: [{ username: 'finance-team@example.com', role: 'owner' }] },
      inputPorts: [{ name: 'oms.orders', contractId: 'oms.orders.csv' }, { name: 'oms.order_lines', contractId: 'oms.order_lines.csv' }],
    });
    const ports = (orders.odps.outputPorts as { name: string; description: string; contractId: string }[]).map((port) => port.name);
    expect(ports).toEqual(['graphql', 'csv-export', 'salesAggregate']);
    expect((orders.odps.outputPorts as { description: string }[])[0]!.description).toContain('Query.orders, Query.orderList');
    expect(orders.odcs.slaProperties).toContainEqual({ property: 'latency', value: 24, unit: 'h', element: 'orders.ordered_at' });
    expect(orders.odcs.servers).toEqual([{ server: 'finance-warehouse', environment: 'prod', type: 'duckdb', database: '/srv/mesh/warehouses/finance.duckdb' }]);
  });

  it('carry the quality rules every load is gated by: the key\'s, then the product\'s own, as ODCS writes them', () => {
    const customers = documents.find((d) => d.id === 'customers.customers')!;
    const [object] = customers.odcs.schema as { quality: Record<string, unknown>[] }[];
    const byName = Object.fromEntries(object!.quality.map((rule) => [rule.name, rule]));
    expect(Object.keys(byName).slice(0, 2)).toEqual(['id_not_null', 'id_unique']);
    expect(byName.id_unique).toMatchObject({ type: 'library', metric: 'duplicateValues', arguments: { properties: ['id'] }, mustBe: 0, dimension: 'uniqueness', severity: 'error' });
    expect(byName.email_format).toMatchObject({ type: 'library', metric: 'invalidValues', arguments: { column: 'email', pattern: expect.any(String) }, dimension: 'conformity' });
    expect(byName.phone_present).toMatchObject({ metric: 'missingValues', unit: 'percent', mustBeLessOrEqualTo: 1, severity: 'warning' });
    const products = documents.find((d) => d.id === 'products.products')!;
    const [productObject] = products.odcs.schema as { quality: Record<string, unknown>[] }[];
    expect(productObject!.quality.find((rule) => rule.name === 'category_exists')).toMatchObject({ type: 'sql', query: expect.stringContaining('not in (select id from categories)') });
  });

  it('classify every column from the policy directives, with its mask and row policy, and no values', () => {
    const customers = documents.find((d) => d.id === 'customers.customers')!;
    const [object] = customers.odcs.schema as { properties: { name: string; physicalName: string; classification: string; tags?: string[]; customProperties: { property: string; value: string }[] }[]; customProperties?: { value: string }[] }[];
    const column = (name: string) => object!.properties.find((p) => p.name === name)!;
    expect(column('birthDate')).toMatchObject({ physicalName: 'birth_date', classification: 'restricted', tags: ['pii'] });
    expect(column('name').customProperties).toContainEqual({ property: 'mask', value: 'HASH' });
    expect(column('signupDate').customProperties).toEqual([{ property: 'accessRule', value: 'INTERNAL default' }]);
    expect(column('id')).toMatchObject({ primaryKey: true, primaryKeyPosition: 1, classification: 'internal' });
    expect(object!.customProperties?.[0]?.value).toMatch(/region is in the principal's regions claim, except for steward, admin/);
  });

  it('say, for every field a domain serves on another domain\'s type, which of its products feeds it and how', () => {
    for (const domain of domains) {
      const own = new Set(domain.dataProducts.map((product) => product.spec.type));
      // Entity types the domain extends (another domain owns them): their fields other than the key.
      const extended = domain.typeDefs.definitions.flatMap((definition) =>
        definition.kind === Kind.OBJECT_TYPE_DEFINITION && !own.has(definition.name.value) && definition.directives?.some((d) => d.name.value === 'key') && !definition.directives.some((d) => d.name.value === 'dataProduct')
          ? (definition.fields ?? []).filter((field) => !field.directives?.some((d) => d.name.value === 'external') && !['id', 'sku'].includes(field.name.value)).map((field) => `${definition.name.value}.${field.name.value}`)
          : [],
      );
      const fed = documents
        .filter((document) => document.id.startsWith(`${domain.name}.`))
        .flatMap((document) => ((document.odcs as any).schema[0].customProperties ?? []).filter((p: any) => p.property === 'feeds').flatMap((p: any) => p.value.flatMap((feed: any) => feed.fields)));
      expect(fed.sort(), domain.name).toEqual(extended.sort());
    }
    expect(documents.find((d) => d.id === 'finance.orders')!.odcs).toMatchObject({
      schema: [{ customProperties: expect.arrayContaining([{ property: 'feeds', value: expect.arrayContaining([{ fields: ['Product.unitsSold', 'Product.revenue'], how: expect.stringContaining('order_lines.sku = Product.sku') }]) }]) }],
    });
  });

  it('name a PostgreSQL warehouse by host, port, database and schema, never its credentials', () => {
    expect(warehouseServerOf('postgres://mesh:secret@db:5433/mesh?schema=finance')).toEqual({ type: 'postgresql', host: 'db', port: 5433, database: 'mesh', schema: 'finance' });
  });
});

describe('npm run catalog -- export', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'catalog-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const catalog = (...args: string[]) => spawnSync('npm', ['run', '-s', 'catalog', '--', ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, DATA_DIR: dir } });

  it('writes both documents of every product', async () => {
    const result = catalog('export', '--out', join(dir, 'out'));
    expect(result.status, result.stderr).toBe(0);
    const files = (await readdir(join(dir, 'out'))).sort();
    expect(files).toEqual(documents.flatMap((d) => [`${d.id}.odcs.json`, `${d.id}.odps.json`]).sort());
    const written = JSON.parse(await readFile(join(dir, 'out', 'finance.orders.odcs.json'), 'utf8'));
    expect(written.servers[0].database).toBe(join(dir, 'warehouses', 'finance.duckdb'));
    expect(result.stdout.split('\n').filter(Boolean)).toHaveLength(files.length);
  });

  it('refuses an unknown command, option or domain with exit code 2, naming it', () => {
    for (const [args, message] of [
      [['publish'], /unknown command 'publish'/],
      [['export', '--nope'], /unknown option '--nope'/],
      [['export', '--domain', 'marketing'], /option '--domain <name>' argument 'marketing' is invalid\. Allowed choices are customers, products, finance\./],
    ] as const) {
      const result = catalog(...args);
      expect({ args, status: result.status }).toEqual({ args, status: 2 });
      expect(result.stderr).toMatch(message);
      expect(result.stderr).not.toMatch(/at .*\.ts:\d+/);
    }
    const help = catalog('export', '--help');
    expect([help.status, help.stdout]).toEqual([0, expect.stringMatching(/Usage: npm run -s catalog -- export \[options\]/)]);
  });
});

describe('harmonization rules', () => {
  it('pass every product of this repository', () => {
    expect(checkHarmonization(domains.flatMap((domain) => productFactsOf(domain)))).toEqual([]);
  });

  it('name the product and the rule each break', () => {
    const products = domains.find((domain) => domain.name === 'products')!;
    const [facts] = productFactsOf(products);
    const broken = checkHarmonization([
      {
        ...facts!,
        name: 'Products-2',
        fields: [...facts!.fields, 'Unit_Cost'],
        metadata: { ...facts!.metadata, status: 'live', version: 'v1', owners: [{ role: 'steward' }], sla: [{ property: 'latency' }] },
      },
    ]);
    expect(broken.map((v) => v.rule).sort()).toEqual(['field-name', 'owner', 'product-name', 'sla', 'sla', 'status', 'version']);
    expect(broken.every((v) => v.product === 'products.Products-2')).toBe(true);
    expect(broken.find((v) => v.rule === 'status')!.message).toBe('products.Products-2: the status "live" is not one of draft, active, deprecated, retired.');
  });

  it('keep a subgraph whose product breaks one from starting', async () => {
    const products = domains.find((domain) => domain.name === 'products')!;
    const [first, ...rest] = products.dataProducts;
    const retitled = { ...first!, spec: { ...first!.spec, metadata: { ...first!.spec.metadata, status: 'experimental' as 'draft' } } };
    const failure = await startupFailureOf({ ...products, dataProducts: [retitled, ...rest] });
    expect(failure).toBeInstanceOf(HarmonizationError);
    expect((failure as Error).message).toContain('[status] products.products: the status "experimental" is not one of draft, active, deprecated, retired.');
  });
});
