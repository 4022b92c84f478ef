/**
 * What the benchmarks share (`test/mesh.bench.ts`, `test/pairs.ts`): the analyst query mix and its
 * principal, the mesh's subgraphs served again with other options, and a gateway over them.
 */
import { DEV_HASH_KEY } from '../../policy/masking.js';
import { domains } from '../../subgraphs/domains.js';
import { startSubgraphServer, type SubgraphServerOptions } from '../../subgraphs/kit/subgraph-server.js';
import { postGraphQL, testIdentity, testLog, tokenFor, type TestMesh } from './mesh.js';

/** Resolves when the answer is a 200 without errors; throws otherwise (a benchmark must not time failures). */
export async function answered(answer: Promise<{ status: number; body: { errors?: unknown } }>): Promise<void> {
  const { status, body } = await answer;
  if (status !== 200 || body.errors) throw new Error(`query failed: ${JSON.stringify(body)}`);
}

/** An analyst of every region: the same rows with the policy layer on and off, pii masked when on. */
export const ANALYST = { authorization: `Bearer ${tokenFor({ subject: 'ana', roles: ['analyst'], regions: ['EMEA', 'AMERICAS', 'APAC'], purpose: 'analytics' })}` };

/** The analyst query mix: a page of customers with lifetime values, orders joined across three domains, product aggregates. */
export const ANALYST_MIX = [
  '{ customers(first: 50) { nodes { id name email country segment lifetimeValue } } }',
  '{ orders(first: 100) { nodes { id total status customer { name } lines { quantity product { name } } } } }',
  '{ products(first: 100) { nodes { sku name listPrice revenue unitsSold } } }',
] as const;

export async function runAnalystMix(url: string): Promise<void> {
  for (const query of ANALYST_MIX) await answered(postGraphQL(url, query, undefined, ANALYST));
}

/** The mesh's three subgraphs served again over its warehouses, started with `options`. */
export function subgraphSet(mesh: TestMesh, options: Pick<SubgraphServerOptions, 'enforcePolicy' | 'verifySignatures'>) {
  return Promise.all(
    domains.map((domain) =>
      startSubgraphServer({ domain, warehouse: mesh.warehouses[domain.name]!, log: testLog, identity: testIdentity, hashKey: DEV_HASH_KEY, audit: mesh.audits[domain.name]!, port: 0, ...options }),
    ),
  );
}

/** A gateway's supergraph source: these subgraphs (one per domain, in order), composed at start. */
export function subgraphsAt(servers: readonly { url: string }[]) {
  return { kind: 'subgraphs' as const, subgraphs: domains.map(({ name }, i) => ({ name, url: servers[i]!.url })) };
}
