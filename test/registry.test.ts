/**
 * The registry's checks over the real domains' SDLs: what a domain team learns before publishing.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kind, parse, print, visit, type ObjectTypeDefinitionNode } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkSubgraph } from '../gateway/registry/checks.js';
import { openFileRegistry } from '../gateway/registry/file-registry.js';
import { checkProposal, publishSubgraph, rollbackSubgraph } from '../gateway/registry/publish.js';
import type { Registry } from '../gateway/registry/registry.js';
import { policySchemaExtension } from '../policy/directives.js';
import { governanceRules } from '../policy/governance.rules.js';
import { domains } from '../subgraphs/domains.js';
import { printDomainSdl } from '../subgraphs/kit/domain-schema.js';

const SDL = Object.fromEntries(domains.map((domain) => [domain.name, printDomainSdl(domain)])) as Record<'customers' | 'products' | 'finance', string>;
const urlOf = (name: string) => `http://${name}.mesh.internal/graphql`;

/** The SDL without one field of one type. */
function withoutField(sdl: string, type: string, field: string): string {
  return print(
    visit(parse(sdl), {
      ObjectTypeDefinition: (node) => (node.name.value === type ? { ...node, fields: node.fields?.filter((f) => f.name.value !== field) } : undefined),
      InputObjectTypeDefinition: (node) => (node.name.value === type ? { ...node, fields: node.fields?.filter((f) => f.name.value !== field) } : undefined),
      EnumTypeDefinition: (node) => (node.name.value === type ? { ...node, values: node.values?.filter((v) => v.name.value !== field) } : undefined),
    }),
  );
}

/** The SDL with a field added to a type (SDL of the field, directives included). */
function withField(sdl: string, type: string, fieldSdl: string): string {
  const [added] = (parse(`type X { ${fieldSdl} }`).definitions[0] as ObjectTypeDefinitionNode).fields!;
  return print(
    visit(parse(sdl), {
      ObjectTypeDefinition: (node) => (node.name.value === type ? { ...node, fields: [...(node.fields ?? []), added!] } : undefined),
    }),
  );
}

/** A new subgraph's SDL with our policy header. */
const subgraphSdl = (body: string, header = policySchemaExtension(['@key'])) => `${header}\n${body}`;

let dir: string;
let registry: Registry;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'registry-checks-'));
  registry = await openFileRegistry(dir);
  for (const name of ['customers', 'products', 'finance'] as const) {
    const { report } = await publishSubgraph(registry, { name, url: urlOf(name), sdl: SDL[name], publishedBy: 'platform' });
    expect(report.accepted).toBe(true);
  }
  await registry.registerDocuments([
    {
      client: 'crm-app',
      name: 'customer-list.graphql',
      body: 'query CustomerList { customers(first: 20, filter: { region: [EMEA] }) { nodes { id name email } } }',
      registeredBy: 'crm-team',
    },
  ]);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const errorsOf = (findings: readonly { severity: string; code: string; coordinate: string | null }[]) =>
  findings.filter((f) => f.severity === 'error').map((f) => [f.code, f.coordinate]);

describe('breaking changes, judged by usage', () => {
  it('refuses removing a field a registered client document uses, naming the field and the client', async () => {
    const report = await checkProposal(registry, { name: 'customers', url: urlOf('customers'), sdl: withoutField(SDL.customers, 'Customer', 'email') });
    expect(report.accepted).toBe(false);
    expect(report.findings.filter((f) => f.severity === 'error')).toEqual([
      {
        code: 'BREAKING_CHANGE_IN_USE',
        severity: 'error',
        coordinate: 'Customer.email',
        message: "Field 'email' was removed from object type 'Customer' Used by crm-app (registered: customer-list.graphql).",
        clients: ['crm-app (registered: customer-list.graphql)'],
      },
    ]);
  });

  it('passes removing a field nobody uses, with a warning', async () => {
    const report = await checkProposal(registry, { name: 'customers', url: urlOf('customers'), sdl: withoutField(SDL.customers, 'Customer', 'phone') });
    expect(report.accepted).toBe(true);
    expect(report.findings.filter((f) => f.severity === 'warning')).toEqual([
      expect.objectContaining({ code: 'BREAKING_CHANGE_UNUSED', coordinate: 'Customer.phone' }),
    ]);
  });

  it('counts usage the gateway recorded within the window, and names that client', async () => {
    const proposal = { name: 'customers', url: urlOf('customers'), sdl: withoutField(SDL.customers, 'Customer', 'segment') };
    await registry.recordUsage([{ client: 'old-dashboard', coordinate: 'Customer.segment', count: 40, lastSeen: new Date(Date.now() - 90 * 86_400_000).toISOString() }]);
    expect((await checkProposal(registry, proposal)).accepted).toBe(true); // 90 days ago: outside the 30-day window
    expect((await checkProposal(registry, proposal, { usageDays: 120 })).accepted).toBe(false);
    await registry.recordUsage([{ client: 'bi-tool', coordinate: 'Customer.segment', count: 3, lastSeen: new Date().toISOString() }]);
    const report = await checkProposal(registry, proposal);
    expect(errorsOf(report.findings)).toEqual([['BREAKING_CHANGE_IN_USE', 'Customer.segment']]);
    expect(report.findings.find((f) => f.severity === 'error')!.clients).toEqual(['bi-tool']);
  });

  it('refuses a new required argument, a removed enum value and a tightened input where clients use them', async () => {
    const required = SDL.customers.replace('customers(first: Int,', 'customers(tenant: String!, first: Int,');
    expect(errorsOf((await checkProposal(registry, { name: 'customers', url: urlOf('customers'), sdl: required })).findings)).toEqual([
      ['BREAKING_CHANGE_IN_USE', 'Query.customers.tenant'],
    ]);
    const noEmea = withoutField(SDL.customers, 'Region', 'EMEA');
    expect(errorsOf((await checkProposal(registry, { name: 'customers', url: urlOf('customers'), sdl: noEmea })).findings)).toContainEqual([
      'BREAKING_CHANGE_IN_USE',
      'Region.EMEA',
    ]);
    const tightened = print(
      visit(parse(SDL.customers), {
        InputValueDefinition: (node) =>
          node.name.value === 'region' && node.type.kind !== Kind.NON_NULL_TYPE ? { ...node, type: { kind: Kind.NON_NULL_TYPE, type: node.type } } : undefined,
      }),
    );
    expect(errorsOf((await checkProposal(registry, { name: 'customers', url: urlOf('customers'), sdl: tightened })).findings)).toContainEqual([
      'BREAKING_CHANGE_IN_USE',
      'CustomerFilter.region',
    ]);
  });
});

describe('composition', () => {
  it('refuses a subgraph that does not compose with the others, with composition\'s own error, and writes nothing', async () => {
    const before = await registry.revision();
    const loyalty = subgraphSdl(`
      type Query { tier(id: ID!): String @classify(level: "INTERNAL") }
      type Customer @key(fields: "id") @classify(level: "INTERNAL") { id: ID! name: Int }
    `);
    const { report, published } = await publishSubgraph(registry, { name: 'loyalty', url: urlOf('loyalty'), sdl: loyalty, publishedBy: 'ann' });
    expect(report.accepted).toBe(false);
    expect(published).toBeNull();
    expect(report.findings.filter((f) => f.code === 'COMPOSITION_FAILED').map((f) => [f.coordinate, f.message])).toEqual([
      ['Customer.name', expect.stringMatching(/^\[FIELD_TYPE_MISMATCH\] .*"String" in subgraph "customers" but type "Int" in subgraph "loyalty"/)],
      ['Customer.name', expect.stringMatching(/^\[INVALID_FIELD_SHARING\] Non-shareable field "Customer\.name"/)],
    ]);
    expect(await registry.revision()).toBe(before);
    expect(await registry.history('loyalty')).toEqual([]);
  });

  it('reports SDL that does not parse', async () => {
    const report = await checkProposal(registry, { name: 'loyalty', url: urlOf('loyalty'), sdl: 'type Query {' });
    expect(report.findings).toEqual([expect.objectContaining({ code: 'SDL_INVALID', severity: 'error', message: expect.stringMatching(/Syntax Error/) })]);
  });
});

describe('governance lint', () => {
  it('names each rule a subgraph breaks, with the field or type', async () => {
    const marketing = subgraphSdl(`
      type Query { campaigns: [Campaign!] @classify(level: "INTERNAL") }
      type Campaign @key(fields: "id") @classify(level: "INTERNAL") {
        id: ID!
        audienceEmail: String @classify(level: "INTERNAL", tags: ["pii"])
        budget: Float @classify(level: "CONFIDENTIAL") @requireRoles(anyOf: ["intern"])
      }
      type Segment { size: Int }
    `);
    const report = await checkProposal(registry, { name: 'marketing', url: urlOf('marketing'), sdl: marketing });
    expect(report.accepted).toBe(false);
    expect(errorsOf(report.findings)).toEqual([
      ['GOVERNANCE_RULE_VIOLATION', 'Campaign.audienceEmail'],
      ['GOVERNANCE_RULE_VIOLATION', 'Campaign.budget'],
      ['GOVERNANCE_UNCLASSIFIED', 'Segment.size'],
      ['GOVERNANCE_DATA_PRODUCT_UNOWNED', 'Campaign'],
      ['GOVERNANCE_DATA_PRODUCT_UNDOCUMENTED', 'Campaign'],
    ]);
    expect(report.findings.find((f) => f.coordinate === 'Campaign.audienceEmail')!.message).toMatch(/below the global minimum CONFIDENTIAL for "pii"/);
    expect(report.findings.find((f) => f.coordinate === 'Campaign.budget')!.message).toMatch(/intern is not among them/);
  });

  it('refuses another version of the policy spec, or its directives redefined', async () => {
    const oldSpec = SDL.products.replace('https://specs.datamesh.dev/policy/v1.3', 'https://specs.datamesh.dev/policy/v1.1');
    const report = await checkProposal(registry, { name: 'products', url: urlOf('products'), sdl: oldSpec });
    expect(report.findings.filter((f) => f.code === 'GOVERNANCE_POLICY_SPEC_MISMATCH').map((f) => f.message)).toEqual([
      'The subgraph links https://specs.datamesh.dev/policy/v1.1; policy/ ships https://specs.datamesh.dev/policy/v1.3.',
    ]);
    const redefined = SDL.products.replace('directive @mask(strategy: String!,', 'directive @mask(strategy: String,');
    const second = await checkProposal(registry, { name: 'products', url: urlOf('products'), sdl: redefined });
    expect(errorsOf(second.findings)).toContainEqual(['GOVERNANCE_POLICY_SPEC_MISMATCH', '@mask']);
  });

  it('refuses a pii field that is neither masked nor restricted, under rules that would leave it open', async () => {
    const rules = {
      ...governanceRules,
      levels: { ...governanceRules.levels, CONFIDENTIAL: { authenticated: true } },
      tags: { ...governanceRules.tags, pii: { minimumLevel: 'CONFIDENTIAL' as const } },
    };
    const state = await registry.state();
    const report = await checkSubgraph({ state, proposal: { name: 'customers', url: urlOf('customers'), sdl: SDL.customers }, usage: [], documents: [], rules });
    expect(errorsOf(report.findings)).toEqual(
      // Address.country declares a mask of its own (REDACT): it stays protected under these rules.
      ['Customer.name', 'Customer.email', 'Customer.phone', 'Customer.addresses', ...['id', 'kind', 'line1', 'city', 'postalCode', 'isPrimary'].map((f) => `Address.${f}`)].map(
        (coordinate) => ['GOVERNANCE_PII_UNPROTECTED', coordinate],
      ),
    );
  });

  it('passes every domain of this repository', async () => {
    for (const name of ['customers', 'products', 'finance'] as const) {
      const report = await checkProposal(registry, { name, url: urlOf(name), sdl: SDL[name] });
      expect(report.findings.filter((f) => f.severity !== 'info'), name).toEqual([]);
    }
  });
});

describe('publish, history and rollback', () => {
  it('publishes only a change, keeps history, and rolls back to an earlier version as a new one', async () => {
    const name = 'products';
    const unchanged = await publishSubgraph(registry, { name, url: urlOf(name), sdl: SDL.products, publishedBy: 'ann' });
    expect(unchanged.published).toBeNull();
    expect(unchanged.report.findings).toEqual([expect.objectContaining({ code: 'UNCHANGED' })]);

    const added = withField(SDL.products, 'Product', 'ecoScore: Int @classify(level: "PUBLIC")');
    const v2 = await publishSubgraph(registry, { name, url: urlOf(name), sdl: added, publishedBy: 'ann' });
    expect(v2.published).toMatchObject({ version: 2, publishedBy: 'ann', note: null });
    expect(v2.report.findings.filter((f) => f.code === 'SAFE_CHANGE').map((f) => f.coordinate)).toContain('Product.ecoScore');
    expect((await registry.state())!.apiSchemaSdl).toMatch(/ecoScore: Int/);

    const back = await rollbackSubgraph(registry, { name, publishedBy: 'bob' });
    expect(back.published).toMatchObject({ version: 3, publishedBy: 'bob', note: 'rollback to version 1', sdl: SDL.products });
    expect((await registry.state())!.apiSchemaSdl).not.toMatch(/ecoScore/);
    expect((await registry.history(name)).map((v) => [v.version, v.note])).toEqual([
      [3, 'rollback to version 1'],
      [2, null],
      [1, null],
    ]);
    await expect(rollbackSubgraph(registry, { name, version: 9, publishedBy: 'bob' })).rejects.toMatchObject({ code: 'REGISTRY_UNKNOWN_VERSION' });
    await expect(rollbackSubgraph(registry, { name: 'nobody', publishedBy: 'bob' })).rejects.toMatchObject({ code: 'REGISTRY_UNKNOWN_SUBGRAPH' });
  });

  it('refuses a routing URL that is not http(s) or carries credentials', async () => {
    for (const url of ['file:///etc/passwd', 'http://user:pw@h/graphql', 'not a url']) {
      await expect(publishSubgraph(registry, { name: 'customers', url, sdl: SDL.customers, publishedBy: 'ann' })).rejects.toMatchObject({
        code: 'REGISTRY_INVALID_URL',
      });
    }
  });
});

describe('a field one domain takes over from another (@override)', () => {
  it("publishes in either order: customers' lifetimeValue taking over finance's, then finance without it, the supergraph serving it throughout", async () => {
    const moved = await mkdtemp(join(tmpdir(), 'registry-override-'));
    const store = await openFileRegistry(moved);
    try {
      // Before: finance resolved it (summing the orders per request); customers did not have it.
      const before = {
        customers: withoutField(SDL.customers, 'Customer', 'lifetimeValue'),
        products: SDL.products,
        finance: withField(SDL.finance, 'Customer', 'lifetimeValue: Float @cost(weight: 10) @classify(level: "CONFIDENTIAL", tags: ["financial"])'),
      };
      for (const [name, sdl] of Object.entries(before)) expect((await publishSubgraph(store, { name, url: urlOf(name), sdl, publishedBy: 'platform' })).report.accepted, name).toBe(true);
      const resolvedBy = async () => {
        const supergraph = (await store.state())!.supergraphSdl;
        const customer = /type Customer[^{]*\{([^}]*)\}/s.exec(supergraph)![1]!;
        return /lifetimeValue: Float (@join__field\([^)]*\))/.exec(customer)?.[1] ?? null;
      };
      expect(await resolvedBy()).toMatch(/graph: FINANCE/);
      // The customers team deploys first: it takes the field over, finance's copy still there.
      const taken = await publishSubgraph(store, { name: 'customers', url: urlOf('customers'), sdl: SDL.customers, publishedBy: 'customers-team' });
      expect(taken.report.accepted, JSON.stringify(taken.report.findings)).toBe(true);
      expect(await resolvedBy()).toMatch(/graph: CUSTOMERS, override: "finance"/);
      // Then finance drops it: nothing breaks for the field's consumers.
      const dropped = await publishSubgraph(store, { name: 'finance', url: urlOf('finance'), sdl: SDL.finance, publishedBy: 'finance-team' });
      expect(dropped.report.accepted, JSON.stringify(dropped.report.findings)).toBe(true);
      expect(await resolvedBy()).toMatch(/graph: CUSTOMERS/);
    } finally {
      await store.close();
      await rm(moved, { recursive: true, force: true });
    }
  });
});
