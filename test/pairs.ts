/**
 * `npm run bench:pairs`: the analyst-mix ratios measured by alternation, which a shared machine's
 * drift cannot bias as it biases two cases run one after the other (Vitest's bench).
 *
 * One process holds the mesh on the default data set (scale 1), a second set of subgraphs and a
 * gateway with the policy layer off over the same warehouses, and a gateway with it on; both
 * gateways compose the same way (from their running subgraphs, no reload poll), so they differ by
 * the policy layer alone. Each round runs every case once, in a shuffled order, and the ratios are
 * taken of the cases' medians and means over ROUNDS rounds (default 150, after WARMUP 20):
 *
 * - gateway hop: a page of 50 customers through the gateway against the same call made directly
 *   to the customers subgraph (signed as the gateway signs it, with the same token); and what a hop
 *   costs before any of the gateway's features (test/harness/hop-floor.ts): a bare proxy, Apollo
 *   Server and Apollo Gateway alone, and plain Apollo Gateway as its documentation starts it, each
 *   against the same call made directly to the subgraphs they call (which do not check signatures);
 * - policy layer: the analyst mix (customers, a cross-domain join, aggregates) through the gateway
 *   with the policy layer on against the gateway and subgraphs with it off; and the same mix over
 *   the next pages each round (rows not read before: no mask has hashed their values yet).
 *
 * PROFILE=<file> writes a CPU profile of the measured rounds, CASES=<case,…> runs some cases only
 * (one side of a ratio): see where the difference goes (test/cpuprofile-top.ts reads the profile).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { defineCommand, runCommand } from '../policy/command-line.js';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { domains } from '../subgraphs/domains.js';
import { ANALYST, ANALYST_MIX, answered, runAnalystMix, subgraphSet, subgraphsAt } from './harness/analyst-mix.js';
import { startApolloAlone, startBareProxy, startPlainApollo } from './harness/hop-floor.js';
import { postGraphQL, postSubgraph, startTestGateway, startTestMesh, testGatewayConfig, tokenFor } from './harness/mesh.js';

// No arguments: its settings are the environment's (above); --help says so.
await runCommand(defineCommand('npm run bench:pairs --', 'Measures the gateway hop and the policy layer by alternation (ratios of medians, means and CPU time). Env: ROUNDS (150), WARMUP (20), CASES (case,…), PROFILE (file).'));

const ROUNDS = Number(process.env.ROUNDS ?? 150);
const WARMUP = Number(process.env.WARMUP ?? 20);

const mesh = await startTestMesh({ scale: 1 });
const offSubgraphs = await subgraphSet(mesh, { enforcePolicy: false });
const offGateway = await startTestGateway(testGatewayConfig({ dataDir: mesh.dataDir, name: 'off', supergraph: subgraphsAt(offSubgraphs) }), { enforcePolicy: false });
const onGateway = await startTestGateway(
  testGatewayConfig({ dataDir: mesh.dataDir, name: 'on', supergraph: subgraphsAt(domains.map(({ name }) => mesh.subgraphs[name]!)) }),
);
await Promise.all([offGateway.ready, onGateway.ready]);
// The floors: the same subgraphs served again without the signature check, and the supergraph the
// gateway composed, pointed at them.
const unsignedSubgraphs = await subgraphSet(mesh, { verifySignatures: false });
let floorSupergraph = await readFile(join(mesh.dataDir, 'supergraph-on.graphql'), 'utf8');
for (const [i, { name }] of domains.entries()) {
  const [from, to] = [`"${mesh.subgraphs[name]!.url}"`, `"${unsignedSubgraphs[i]!.url}"`];
  if (!floorSupergraph.includes(from)) throw new Error(`the composed supergraph does not name ${name} at ${from}`);
  floorSupergraph = floorSupergraph.replaceAll(from, to);
}
const unsignedCustomers = unsignedSubgraphs[domains.findIndex(({ name }) => name === 'customers')]!.url;
const floors = {
  proxy: await startBareProxy(unsignedCustomers),
  apolloAlone: await startApolloAlone(floorSupergraph),
  apolloPlain: await startPlainApollo(floorSupergraph),
};

const steward = { authorization: `Bearer ${tokenFor()}` };
const CUSTOMERS_PAGE = '{ customers(first: 50, orderBy: {field: NAME}) { nodes { id name email country } } }';
// The same mix over rows not read before: each round the next pages of customers and orders
// (both sides read the same pages), so masks hash values they have not hashed yet.
const COLD_MIX = [
  'query ($after: String) { customers(first: 50, after: $after) { nodes { id name email country segment lifetimeValue } pageInfo { endCursor } } }',
  'query ($after: String) { orders(first: 100, after: $after) { nodes { id total status customer { name } lines { quantity product { name } } } pageInfo { endCursor } } }',
  ANALYST_MIX[2],
];
const cursors = { coldOff: [null, null] as (string | null)[], coldOn: [null, null] as (string | null)[] };
const runColdMix = async (url: string, side: keyof typeof cursors) => {
  for (const [i, query] of COLD_MIX.entries()) {
    const answer = await postGraphQL<any>(url, query, i < 2 ? { after: cursors[side][i] } : undefined, ANALYST);
    if (answer.status !== 200 || answer.body.errors) throw new Error(`query failed: ${JSON.stringify(answer.body)}`);
    if (i < 2) cursors[side][i] = (Object.values(answer.body.data!)[0] as { pageInfo: { endCursor: string | null } }).pageInfo.endCursor;
  }
};

const cases = {
  direct: () => answered(postSubgraph(mesh.subgraphs.customers!.url, CUSTOMERS_PAGE, undefined, steward)),
  gateway: () => answered(postGraphQL(onGateway.url, CUSTOMERS_PAGE, undefined, steward)),
  directUnsigned: () => answered(postGraphQL(unsignedCustomers, CUSTOMERS_PAGE, undefined, steward)),
  proxy: () => answered(postGraphQL(floors.proxy.url, CUSTOMERS_PAGE, undefined, steward)),
  apolloAlone: () => answered(postGraphQL(floors.apolloAlone.url, CUSTOMERS_PAGE, undefined, steward)),
  apolloPlain: () => answered(postGraphQL(floors.apolloPlain.url, CUSTOMERS_PAGE, undefined, steward)),
  policyOff: () => runAnalystMix(offGateway.url),
  policyOn: () => runAnalystMix(onGateway.url),
  coldOff: () => runColdMix(offGateway.url, 'coldOff'),
  coldOn: () => runColdMix(onGateway.url, 'coldOn'),
} satisfies Record<string, () => Promise<void>>;
type Case = keyof typeof cases;
// CASES=policyOn (a comma-separated list) runs only those: one side of a ratio, for a profile.
const only = (process.env.CASES?.split(',') ?? Object.keys(cases)) as Case[];
const times = Object.fromEntries(Object.keys(cases).map((name) => [name, [] as number[]])) as Record<Case, number[]>;
// The process's CPU time (every thread: the warehouses' too) per case, summed: the work each did,
// which waits and a busy neighbour change less than they change the clock.
const cpu = Object.fromEntries(Object.keys(cases).map((name) => [name, 0])) as Record<Case, number>;

// PROFILE=<file.cpuprofile>: a CPU profile of the measured rounds alone (not of the mesh's start).
const profiler = process.env.PROFILE ? new Session() : null;
profiler?.connect();
for (let round = 0; round < WARMUP + ROUNDS; round++) {
  if (profiler && round === WARMUP) {
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.start');
  }
  const order = only.sort(() => Math.random() - 0.5);
  for (const name of order) {
    const started = performance.now();
    const cpuBefore = process.cpuUsage();
    await cases[name]();
    if (round >= WARMUP) {
      times[name].push(performance.now() - started);
      const { user, system } = process.cpuUsage(cpuBefore);
      cpu[name] += (user + system) / 1000;
    }
  }
}

if (profiler) {
  const { profile } = await profiler.post('Profiler.stop');
  await writeFile(process.env.PROFILE!, JSON.stringify(profile));
  console.log(`profile written to ${process.env.PROFILE}`);
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};
const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
const row = (label: string, baseline: Case, measured: Case) =>
  times[baseline].length === 0 || times[measured].length === 0
    ? ''
    : `| ${label} | ${median(times[baseline]).toFixed(2)} | ${median(times[measured]).toFixed(2)} | ${(median(times[measured]) / median(times[baseline])).toFixed(3)} | ${(mean(times[measured]) / mean(times[baseline])).toFixed(3)} | ${(cpu[measured] / cpu[baseline]).toFixed(3)} |`;
console.log(`\n${ROUNDS} rounds (after ${WARMUP} warm-up), each case once a round in a shuffled order\n`);
console.log('| ratio | baseline median ms | measured median ms | ratio of medians | ratio of means | ratio of CPU time |');
console.log('| --- | --- | --- | --- | --- | --- |');
console.log(row('gateway hop: 50 customers via the gateway / the subgraph directly', 'direct', 'gateway'));
console.log(row('  the floor: a bare proxy / the subgraph directly', 'directUnsigned', 'proxy'));
console.log(row('  the floor: Apollo Server and Apollo Gateway alone / the subgraph directly', 'directUnsigned', 'apolloAlone'));
console.log(row('  plain Apollo Gateway (standalone server, RemoteGraphQLDataSource) / the subgraph directly', 'directUnsigned', 'apolloPlain'));
console.log(row('policy layer: analyst mix on / off', 'policyOff', 'policyOn'));
console.log(row('policy layer: the mix over rows not read before, on / off', 'coldOff', 'coldOn'));

for (const floor of Object.values(floors)) await floor.stop();
for (const server of unsignedSubgraphs) await server.stop();
await onGateway.stop();
await offGateway.stop();
for (const server of offSubgraphs) await server.stop();
await mesh.stop();
