/**
 * `npm run bench`, the registry's part: what the checks cost over composition alone, and what hot
 * reloads cost the clients querying meanwhile. Each figure is a ratio against a baseline measured
 * in the same run.
 */
import { composeServices } from '@apollo/composition';
import { parse } from 'graphql';
import { afterAll, bench, describe } from 'vitest';
import { checkSubgraph } from '../gateway/registry/checks.js';
import { openRegistry } from '../gateway/registry/open.js';
import type { UsageRecord } from '../gateway/registry/registry.js';
import { governanceRules } from '../policy/governance.rules.js';
import { DEV_HASH_KEY } from '../policy/masking.js';
import { customers } from '../subgraphs/customers/index.js';
import { printDomainSdl } from '../subgraphs/kit/domain-schema.js';
import { startSubgraphServer } from '../subgraphs/kit/subgraph-server.js';
import { openFileAuditSink } from '../policy/audit.js';
import { postGraphQL, startTestMesh, testIdentity, testLog, tokenFor } from './harness/mesh.js';

const mesh = await startTestMesh();
const registry = await openRegistry(mesh.registryUrl);
const state = (await registry.state())!;

// A second instance of the customers subgraph: publishing the other URL is a new supergraph.
const greenAudit = await openFileAuditSink({ path: mesh.auditPath('customers-green') });
const green = await startSubgraphServer({
  domain: customers,
  warehouse: mesh.warehouses.customers!,
  log: testLog,
  identity: testIdentity,
  hashKey: DEV_HASH_KEY,
  audit: greenAudit,
  port: 0,
});
afterAll(async () => {
  await green.stop();
  await greenAudit.close();
  await registry.close();
  await mesh.stop();
});

const options = { time: 3_000, warmupTime: 500 };

const proposal = {
  name: 'customers',
  url: mesh.subgraphs.customers!.url,
  sdl: printDomainSdl(customers).replace('  """Billing address first', '  "Loyalty tier."\n  loyaltyTier: String @classify(level: "INTERNAL")\n  """Billing address first'),
};
// A month of usage from 20 clients, over every coordinate of the API schema's Customer type.
const usage: UsageRecord[] = Array.from({ length: 20 }, (_, c) =>
  ['id', 'name', 'email', 'country', 'region', 'segment', 'signupDate', 'orders', 'lifetimeValue'].map((field) => ({
    client: `client-${c}`,
    coordinate: `Customer.${field}`,
    count: 100,
    lastSeen: new Date().toISOString(),
  })),
).flat();

describe('a publish check: a field added to customers', () => {
  bench('composition of the three subgraphs alone (baseline)', () => {
    const result = composeServices(state.subgraphs.map(({ name, url, sdl }) => ({ name, url, typeDefs: parse(sdl) })));
    if (result.errors) throw new Error('composition failed');
  }, options);
  bench('every check: governance lint, composition, breaking changes judged against usage', async () => {
    const report = await checkSubgraph({ state, proposal, usage, documents: [], rules: governanceRules });
    if (!report.accepted) throw new Error('refused');
  }, options);
});

const authorization = `Bearer ${tokenFor()}`;
const QUERY = '{ customers(first: 20) { nodes { id name segment lifetimeValue } } }';
async function ok(): Promise<void> {
  const { status, body } = await postGraphQL(mesh.gateway.url, QUERY, undefined, { authorization });
  if (status !== 200 || body.errors) throw new Error(`query failed: ${JSON.stringify(body)}`);
}

// While the second case runs, the registry's serving customers URL alternates between the two
// instances every 250 ms. Both supergraphs are composed beforehand: the publishing (a CI job's work,
// in another process in real life) must not compete with the gateway for this process's CPU.
async function composedWith(url: string) {
  const report = await checkSubgraph({ state, proposal: { name: 'customers', url, sdl: printDomainSdl(customers) }, usage: [], documents: [], rules: governanceRules });
  const composed = report.composed!;
  return {
    subgraph: { name: 'customers', url, sdl: printDomainSdl(customers), publishedBy: 'bench', note: null, dataProducts: report.dataProducts },
    supergraphSdl: composed.supergraphSdl,
    apiSchemaSdl: composed.apiSchemaSdl,
    supergraphVersion: composed.version,
  };
}
const commits = [await composedWith(green.url), await composedWith(mesh.subgraphs.customers!.url)];
let reloading = false;
let flips = 0;
let publisher: Promise<void> = Promise.resolve();
async function keepPublishing(): Promise<void> {
  while (reloading) {
    const commit = commits[flips++ % 2]!;
    await registry.transaction(async () => ({ commit, result: null }));
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe('hot reload: a customers page with lifetime values, through the gateway', () => {
  bench('a steady supergraph (baseline)', ok, options);
  bench(
    'a new supergraph published every 250 ms meanwhile',
    ok,
    {
      ...options,
      setup: () => {
        reloading = true;
        publisher = keepPublishing();
      },
      teardown: async () => {
        reloading = false;
        await publisher;
        console.log(`${flips} supergraphs published during the reload case`);
      },
    },
  );
});
