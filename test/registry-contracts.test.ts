/**
 * Data product documents at publish (issue 13, parts 2 and 3): the registry keeps the ODPS and ODCS
 * documents of every published version, reports a breaking contract change (a removed column, a
 * loosened SLA) like a breaking schema change, and refuses a publish that breaks a harmonization
 * rule, naming the product and the rule. Over the real domains' SDL and documents.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, print, visit } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProductDocument } from '../gateway/catalog/domain-entries.js';
import { runRegistryCli } from '../gateway/registry/cli.js';
import { openFileRegistry } from '../gateway/registry/file-registry.js';
import { checkProposal, publishSubgraph, rollbackSubgraph } from '../gateway/registry/publish.js';
import type { Registry } from '../gateway/registry/registry.js';
import { domains } from '../subgraphs/domains.js';
import { printDomainSdl } from '../subgraphs/kit/domain-schema.js';
import { domainProductDocuments } from '../subgraphs/kit/product-documents.js';

const urlOf = (name: string) => `http://${name}.mesh.internal/graphql`;
const sdlOf = (name: string) => printDomainSdl(domains.find((domain) => domain.name === name)!);
const documentsOf = (name: string): ProductDocument[] =>
  JSON.parse(JSON.stringify(domainProductDocuments(domains.find((domain) => domain.name === name)!, { type: 'duckdb', database: `data/warehouses/${name}.duckdb` })));

/** The customers product's documents, changed by `change` (a copy). */
function customersWith(change: (product: any) => void): ProductDocument[] {
  const documents = documentsOf('customers');
  change(documents[0]);
  return documents;
}

const problems = (report: { findings: readonly { severity: string; code: string; coordinate: string | null; message: string }[] }, severity = 'error') =>
  report.findings.filter((f) => f.severity === severity).map((f) => ({ code: f.code, coordinate: f.coordinate, message: f.message }));

let dir: string;
let registry: Registry;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'registry-contracts-'));
  registry = await openFileRegistry(join(dir, 'registry'));
  for (const name of ['customers', 'products', 'finance']) {
    const { report, published } = await publishSubgraph(registry, { name, url: urlOf(name), sdl: sdlOf(name), dataProducts: documentsOf(name), publishedBy: 'platform' });
    expect(problems(report)).toEqual([]);
    expect(published?.dataProducts?.map((p) => p.id)).toEqual(documentsOf(name).map((p) => p.id));
  }
});

afterAll(async () => {
  await registry?.close();
  await rm(dir, { recursive: true, force: true });
});

const check = (dataProducts: ProductDocument[] | undefined, sdl = sdlOf('customers')) =>
  checkProposal(registry, { name: 'customers', url: urlOf('customers'), sdl, ...(dataProducts ? { dataProducts } : {}) });

describe('breaking contract changes', () => {
  it('refuses a removed column, naming the product and column, unless the major version announces it', async () => {
    const removed = customersWith((p) => (p.odcs.schema[0].properties = p.odcs.schema[0].properties.filter((c: any) => c.name !== 'email')));
    const report = await check(removed);
    expect(report.accepted).toBe(false);
    expect(problems(report)).toEqual([
      expect.objectContaining({ code: 'CONTRACT_BREAKING_CHANGE', coordinate: 'customers.customers.email', message: expect.stringContaining('the column "email" is removed') }),
    ]);

    const announced = await check(customersWith((p) => {
      p.odcs.schema[0].properties = p.odcs.schema[0].properties.filter((c: any) => c.name !== 'email');
      p.odps.version = p.odcs.version = '2.0.0';
    }));
    expect(announced.accepted).toBe(true);
    expect(problems(announced, 'warning')).toContainEqual(expect.objectContaining({ code: 'CONTRACT_BREAKING_CHANGE_ANNOUNCED', coordinate: 'customers.customers.email' }));
  });

  it('refuses a loosened SLA (availability down, latency longer in another unit, retention shorter), and allows a tightened one', async () => {
    const sla = (edit: Record<string, { value: number; unit?: string }>) =>
      customersWith((p) => {
        for (const property of p.odcs.slaProperties) if (edit[property.property]) Object.assign(property, edit[property.property]);
      });
    const before = Object.fromEntries(documentsOf('customers')[0]!.odcs.slaProperties.map((s) => [s.property, s]));
    expect(before.latency).toMatchObject({ value: 24, unit: 'h' });
    const loosened = await check(sla({ availability: { value: 99 }, latency: { value: 2, unit: 'd' }, retention: { value: 5, unit: 'y' } }));
    expect(loosened.accepted).toBe(false);
    expect(problems(loosened).map((f) => f.coordinate).sort()).toEqual(['customers.customers.sla.availability', 'customers.customers.sla.latency', 'customers.customers.sla.retention']);
    expect(problems(loosened).map((f) => f.code)).toEqual(['CONTRACT_BREAKING_CHANGE', 'CONTRACT_BREAKING_CHANGE', 'CONTRACT_BREAKING_CHANGE']);
    expect(problems(loosened).map((f) => f.message).join('\n')).toMatch(/"latency" is loosened from 24 h to 2 d/);

    // The same latency in another unit is no change; a shorter one is a safe change.
    expect((await check(sla({ latency: { value: 1, unit: 'd' } }))).findings.filter((f) => f.coordinate?.includes('.sla.'))).toEqual([]);
    const tightened = await check(sla({ latency: { value: 12, unit: 'h' }, availability: { value: 99.9 } }));
    expect(tightened.accepted).toBe(true);
    expect(problems(tightened, 'info').filter((f) => f.code === 'CONTRACT_SAFE_CHANGE').map((f) => f.coordinate).sort()).toEqual(['customers.customers.sla.availability', 'customers.customers.sla.latency']);

    const dropped = await check(customersWith((p) => (p.odcs.slaProperties = p.odcs.slaProperties.filter((s: any) => s.property !== 'retention'))));
    expect(problems(dropped)).toEqual([expect.objectContaining({ code: 'CONTRACT_BREAKING_CHANGE', coordinate: 'customers.customers.sla.retention' })]);
  });

  it('refuses a removed product, and a column made optional or retyped', async () => {
    const report = await check([]);
    expect(problems(report)).toContainEqual(expect.objectContaining({ code: 'CONTRACT_BREAKING_CHANGE', coordinate: 'customers.customers', message: expect.stringContaining('removed') }));
    const changed = await check(customersWith((p) => {
      const country = p.odcs.schema[0].properties.find((c: any) => c.name === 'country');
      country.required = false;
      const signup = p.odcs.schema[0].properties.find((c: any) => c.name === 'signupDate');
      signup.logicalType = 'string';
    }));
    expect(problems(changed).map((f) => f.coordinate).sort()).toEqual(['customers.customers.country', 'customers.customers.signupDate']);
  });

  it('keeps the serving documents for an SDL published without any, and refuses one whose type drops a contracted column', async () => {
    const same = await check(undefined);
    expect(same.unchanged).toBe(true);
    expect(same.dataProducts).toEqual(documentsOf('customers'));
    const withoutPhone = print(visit(parse(sdlOf('customers')), { ObjectTypeDefinition: (node) => (node.name.value === 'Customer' ? { ...node, fields: node.fields?.filter((f) => f.name.value !== 'phone') } : undefined) }));
    const report = await check(undefined, withoutPhone);
    expect(report.accepted).toBe(false);
    expect(problems(report)).toContainEqual(expect.objectContaining({ code: 'CONTRACT_BREAKING_CHANGE', coordinate: 'customers.customers.phone', message: expect.stringContaining('no longer serves') }));
  });
});

describe('harmonization rules at publish', () => {
  it('refuses a product that breaks a rule, naming the product and the rule', async () => {
    const report = await check(customersWith((p) => {
      p.odps.status = 'beta';
      p.odps.team.members = p.odps.team.members.filter((m: any) => m.role !== 'owner');
    }));
    expect(report.accepted).toBe(false);
    expect(problems(report)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ code: 'HARMONIZATION_RULE_VIOLATION', coordinate: 'customers.customers', message: expect.stringMatching(/^\[status\] customers\.customers: the status "beta"/) }),
        expect.objectContaining({ code: 'HARMONIZATION_RULE_VIOLATION', coordinate: 'customers.customers', message: expect.stringMatching(/^\[owner\] customers\.customers: no owner has the role "owner"/) }),
      ]),
    );
  });

  it('refuses a product addressed under another domain, and a field name against the convention', async () => {
    const foreign = await check(customersWith((p) => (p.id = p.odps.id = 'finance.customers')));
    expect(problems(foreign)).toContainEqual(expect.objectContaining({ code: 'HARMONIZATION_RULE_VIOLATION', coordinate: 'finance.customers', message: expect.stringMatching(/^\[address\]/) }));
    const snake = sdlOf('customers').replace(/(\n\s+)segment:/, '$1customer_segment:');
    expect(snake).toContain('customer_segment:');
    const report = await check(undefined, snake);
    expect(problems(report)).toContainEqual(expect.objectContaining({ code: 'HARMONIZATION_RULE_VIOLATION', message: expect.stringMatching(/^\[field-name\] customers\.customers: the field "customer_segment"/) }));
  });

  it('writes nothing when refused', async () => {
    const before = await registry.history('customers');
    const { published } = await publishSubgraph(registry, { name: 'customers', url: urlOf('customers'), sdl: sdlOf('customers'), dataProducts: customersWith((p) => (p.odps.status = 'beta')), publishedBy: 'ann' });
    expect(published).toBeNull();
    expect(await registry.history('customers')).toEqual(before);
  });
});

describe('documents of every version, from the command line', () => {
  it('publishes with --documents, keeps each version\'s documents, and rolls back to them', async () => {
    const out = join(dir, 'export');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(out, { recursive: true });
    const write = async (documents: ProductDocument[]) => {
      for (const { id, odps, odcs } of documents) {
        await writeFile(join(out, `${id}.odps.json`), JSON.stringify(odps));
        await writeFile(join(out, `${id}.odcs.json`), JSON.stringify(odcs));
      }
    };
    const schemaFile = join(dir, 'customers.graphql');
    await writeFile(schemaFile, sdlOf('customers'));
    const registryDir = join(dir, 'registry');
    const tighter = customersWith((p) => {
      p.odps.version = p.odcs.version = '1.1.0';
      p.odcs.slaProperties.find((s: any) => s.property === 'availability').value = 99.9;
    });
    await write(tighter);
    const published = await runRegistryCli(['publish', 'customers', '--schema', schemaFile, '--documents', out, '--registry', registryDir, '--by', 'ann']);
    expect(published.exitCode, published.output).toBe(0);
    const history = await runRegistryCli(['history', 'customers', '--registry', registryDir]);
    expect(history.output).toMatch(/\* v2 .* products customers\.customers@1\.1\.0/);
    expect(history.output).toMatch(/ {2}v1 .* products customers\.customers@1\.0\.0/);
    const shown = JSON.parse((await runRegistryCli(['documents', 'customers', '--version', '1', '--registry', registryDir])).output);
    expect(shown.dataProducts).toEqual(documentsOf('customers'));

    // A rollback restores the earlier contract with its schema (its loosening is a warning then).
    const rolled = await rollbackSubgraph(registry, { name: 'customers', publishedBy: 'ann' });
    expect(rolled.published?.dataProducts).toEqual(documentsOf('customers'));
    expect(problems(rolled.report, 'warning')).toContainEqual(expect.objectContaining({ code: 'CONTRACT_BREAKING_CHANGE', coordinate: 'customers.customers.sla.availability' }));

    const missing = await runRegistryCli(['check', 'customers', '--schema', schemaFile, '--documents', join(dir, 'nowhere'), '--registry', registryDir]);
    expect(missing).toMatchObject({ exitCode: 2, output: expect.stringContaining('REGISTRY_DOCUMENTS_UNAVAILABLE') });
    const { version: _dropped, ...withoutVersion } = documentsOf('customers')[0]!.odps as any;
    await writeFile(join(out, 'customers.customers.odps.json'), JSON.stringify(withoutVersion));
    const malformed = await runRegistryCli(['check', 'customers', '--schema', schemaFile, '--documents', out, '--registry', registryDir]);
    expect(malformed).toMatchObject({ exitCode: 2, output: expect.stringMatching(/REGISTRY_DOCUMENTS_UNAVAILABLE.*odps\.version must be a non-empty string/) });
    await writeFile(join(out, 'customers.customers.odcs.json'), '{ not json');
    const broken = await runRegistryCli(['check', 'customers', '--schema', schemaFile, '--documents', out, '--registry', registryDir]);
    expect(broken).toMatchObject({ exitCode: 2, output: expect.stringContaining('customers.customers.odcs.json') });
    const both = await runRegistryCli(['check', 'customers', '--introspect', urlOf('customers'), '--documents', out, '--registry', registryDir]);
    expect(both).toMatchObject({ exitCode: 2, output: expect.stringContaining('REGISTRY_USAGE') });
  });
});
