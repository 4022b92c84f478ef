/**
 * `npm start`: the whole mesh on one machine, on the embedded default.
 *
 * Each part runs as it would in production, one process per service: each subgraph of `SUBGRAPHS`,
 * on the port of its URL, and the gateway. A subgraph builds its own domain's warehouse from the raw
 * files when it is missing or stale; the first subgraph starts alone, so that it alone generates the
 * shared raw files on a first start, and the others follow in parallel. Once they serve, each
 * subgraph's SDL is published to the registry (as a domain team's deploy would: checked first, and
 * a no-op when unchanged), and then the gateway starts on what the registry composed. Their JSON logs are printed readably here.
 *
 * It supervises: a service that exits is started again after a backoff (0.5 s, doubling to 10 s),
 * while every other service keeps serving; the gateway answers a down domain's fields as null with
 * SUBGRAPH_UNAVAILABLE meanwhile. A service that exits 5 times within a minute is reported as failed
 * and left down. Only Ctrl-C (SIGINT) or SIGTERM stops the mesh, and it stops every process it started.
 *
 * In development it also runs the live synthetic sources (`LIVE_SOURCES`, every 60 s by default),
 * and has the domains' pipelines run as often (`PIPELINES_EVERY`), so that the data keeps arriving.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { prettyFactory } from 'pino-pretty';
import { defineCommand, runCommand, serviceAction } from '../../policy/command-line.js';
import { liveSourcesFromEnv } from '../../policy/live-sources.js';
import { readMeshManifest } from '../../policy/mesh-manifest.js';
import { gatewayConfigFromEnv, subgraphEndpointsFromEnv, type SubgraphEndpoint } from '../config.js';
import { openRegistry } from '../registry/open.js';
import { publishRunningSubgraphs } from '../registry/publish.js';

/** The services run as this launcher does: compiled (`npm run build`) with plain node, or TypeScript through tsx. */
const compiled = import.meta.url.endsWith('.js');
const extension = compiled ? 'js' : 'ts';
const nodeOptions = compiled ? [] : ['--import', 'tsx'];
const subgraphsMain = fileURLToPath(new URL(`../../subgraphs/main.${extension}`, import.meta.url));
const gatewayMain = fileURLToPath(new URL(`../main.${extension}`, import.meta.url));
const pretty = prettyFactory({ colorize: process.stdout.isTTY ?? false, ignore: 'pid,hostname', translateTime: 'HH:MM:ss' });
const children = new Set<ChildProcess>();
/** Services given up on: they kept exiting. */
const failed = new Set<string>();
let stopping = false;

/** Restarts within this window count towards giving up on a service. */
const RESTART_WINDOW_MS = 60_000;
/** A service that exits this many times within the window is reported as failed and left down. */
const MAX_RESTARTS = 5;
const FIRST_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 10_000;

/** Starts a service and starts it again whenever it exits, until the mesh stops or it keeps failing. */
function run(label: string, script: string, args: readonly string[], env: NodeJS.ProcessEnv): void {
  const exits: number[] = [];
  const start = () => {
    const child = spawn(process.execPath, [...nodeOptions, script, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    console.log(`[launcher] ${label} started (pid ${child.pid})`);
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => {
        process.stdout.write(line.startsWith('{') ? pretty(line) : `[${label}] ${line}\n`);
      });
    }
    child.once('exit', (code, signal) => {
      children.delete(child);
      if (stopping) return;
      const now = Date.now();
      exits.push(now);
      while (exits.length > 0 && exits[0]! < now - RESTART_WINDOW_MS) exits.shift();
      const how = signal ?? `exit code ${code}`;
      if (exits.length >= MAX_RESTARTS) {
        failed.add(label);
        console.error(`[launcher] ${label} failed: it stopped ${exits.length} times within ${RESTART_WINDOW_MS / 1000} s (last: ${how}); it stays down, the other services keep serving. Fix it, then restart the mesh.`);
        return;
      }
      const backoff = Math.min(FIRST_BACKOFF_MS * 2 ** (exits.length - 1), MAX_BACKOFF_MS);
      console.error(`[launcher] ${label} stopped (${how}); restarting it in ${backoff / 1000} s, the other services keep serving.`);
      setTimeout(() => {
        if (!stopping) start();
      }, backoff);
    });
  };
  start();
}

/**
 * How long a stopping service may take before it is killed: longer than its own drain (Apollo's
 * 10 s for requests in flight; the gateway's workers each drain theirs) and its audit chain's close,
 * so that no service is cut short and no worker is left behind its killed primary.
 */
const STOP_GRACE_MS = 15_000;

async function stopAll(exitCode: number): Promise<never> {
  stopping = true;
  const exits = [...children].map((child) => new Promise((resolve) => child.once('exit', resolve)));
  for (const child of children) child.kill('SIGTERM');
  await Promise.race([Promise.all(exits), new Promise((resolve) => setTimeout(resolve, STOP_GRACE_MS))]);
  for (const child of children) child.kill('SIGKILL');
  process.exit(exitCode);
}

/** Whether something already listens on a port (another mesh, say): binding it fails. */
async function portTaken(port: number, host: string): Promise<string | null> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    probe.listen({ port, host, exclusive: true }, () => probe.close(() => resolve(null)));
  });
}

/**
 * Every port the mesh would listen on must be free before anything starts: a mesh already running
 * would answer the readiness checks (and the launcher would call a mesh ready that is not its own)
 * while each new service failed on EADDRINUSE.
 */
async function refuseTakenPorts(services: readonly { readonly label: string; readonly port: number; readonly host: string }[]): Promise<void> {
  const taken: string[] = [];
  for (const { label, port, host } of services) {
    const problem = await portTaken(port, host);
    if (problem) taken.push(`  ${label.padEnd(10)} ${host}:${port} (${problem === 'EADDRINUSE' ? 'in use' : problem})`);
  }
  if (taken.length === 0) return;
  // A failure to start: the command exits 1 with this message (serviceAction).
  throw new Error(`The mesh cannot start: ${taken.length === 1 ? 'a port it needs is' : 'ports it needs are'} not free (is another mesh running?):\n${taken.join('\n')}\nStop what listens there, or choose other ports (PORT for the gateway, SUBGRAPHS for the domains).`);
}

async function main(): Promise<void> {
  process.once('SIGINT', () => void stopAll(0));
  process.once('SIGTERM', () => void stopAll(0));
  const config = gatewayConfigFromEnv();
  // In development, the synthetic sources deliver new rows on a schedule, and the domains' pipelines merge them as often.
  const live = liveSourcesFromEnv();
  // The domains the manifest lists without a module run elsewhere and join by publishing: not started here.
  const elsewhere = readMeshManifest().domains.filter((domain) => domain.module === null);
  const subgraphs = subgraphEndpointsFromEnv().filter(({ name }) => !elsewhere.some((domain) => domain.name === name));
  // Where each subgraph listens: its URL's port and host, given to it as PORT and HOST.
  const services = subgraphs.map(({ name, url }) => {
    const { port, hostname } = new URL(url);
    return { name, url, portText: port, port: Number(port || 80), host: hostname.replace(/^\[|\]$/g, '') };
  });
  await refuseTakenPorts([{ label: 'gateway', port: config.port, host: config.host }, ...services.map(({ name, port, host }) => ({ label: name, port, host }))]);

  console.log('Starting the mesh (the first start generates the data and builds the warehouses)…');
  // The gateway waits for its subgraphs as long as building the data may take on a first start.
  const composeTimeoutMs = Number(process.env.COMPOSE_TIMEOUT_MS || 15 * 60_000);
  const startGateway = () => run('gateway', gatewayMain, [], { COMPOSE_TIMEOUT_MS: String(composeTimeoutMs) });
  // Composing from the subgraphs, the gateway waits for them itself; from the registry, it starts
  // once every subgraph is published, so that its first supergraph already has them all.
  const fromRegistry = config.supergraph.kind === 'registry';
  if (!fromRegistry) startGateway();
  const schedule = live && !process.env.PIPELINES_EVERY ? { PIPELINES_EVERY: String(live) } : {};
  // A domain fed by another's product reads it through this gateway.
  const local = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const gatewayUrl = process.env.GATEWAY_URL || `http://${local.includes(':') ? `[${local}]` : local}:${config.port}/graphql`;
  const [first, ...rest] = services.map(({ name, url, portText, host }) => ({ name, url, env: { PORT: portText, HOST: host, GATEWAY_URL: gatewayUrl, ...schedule } }));
  if (first) {
    run(first.name, subgraphsMain, ['serve', first.name], first.env);
    await waitUntilReady(new URL('/health/ready', first.url), composeTimeoutMs, first.name);
  }
  for (const subgraph of rest) run(subgraph.name, subgraphsMain, ['serve', subgraph.name], subgraph.env);
  // Once the first subgraph has made the generated data.
  if (live) run('live', subgraphsMain, ['live'], {});
  if (fromRegistry && config.supergraph.kind === 'registry') {
    for (const subgraph of rest) await waitUntilReady(new URL('/health/ready', subgraph.url), composeTimeoutMs, subgraph.name);
    // A service given up on is not published: the registry keeps its last good version, if any.
    const serving = subgraphs.filter(({ name }) => !failed.has(name));
    await publishAll(config.supergraph.registryUrl, serving).catch((error: unknown) => {
      console.error(`[registry] publishing failed: ${error instanceof Error ? error.message : String(error)}`);
    });
    startGateway();
  }

  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const gatewayReady = new URL('/health/ready', `http://${host.includes(':') ? `[${host}]` : host}:${config.port}`);
  if (await waitUntilReady(gatewayReady, composeTimeoutMs)) {
    // Then the domains fed by another's product read it through the gateway (customers: the lifetime values from finance's orders).
    const unread: string[] = [];
    for (const { name, url: subgraphUrl } of services) {
      if (failed.has(name) || !(await waitUntilReady(new URL('/health/inputs', subgraphUrl), composeTimeoutMs, name))) continue;
      const { inputs } = (await (await fetch(new URL('/health/inputs', subgraphUrl))).json().catch(() => ({ inputs: [] }))) as { inputs: { product: string; error: string | null; merged: boolean }[] };
      for (const input of inputs.filter(({ merged }) => !merged)) unread.push(`  ${name} cannot read its input ${input.product} (${input.error}): its values of it stay unknown; see its log`);
    }
    const url = `http://localhost:${config.port}/graphql`;
    console.log(`\nThe mesh is ready.\n  Gateway:   ${url}\n  IDE:       http://localhost:${config.port}/ide/\n  Changes:   ${url}/stream (SSE), ws://localhost:${config.port}/graphql (WebSocket)`);
    for (const { name, url: subgraphUrl } of subgraphs) console.log(`  ${name.padEnd(10)} ${subgraphUrl}${failed.has(name) ? '  (failed: see above)' : ''}`);
    for (const { name, url: subgraphUrl } of elsewhere) console.log(`  ${name.padEnd(10)} ${subgraphUrl}  (runs elsewhere: joins by publishing)`);
    for (const line of unread) console.log(line);
    if (live) console.log(`  Live data: new and changed orders, customers and products every ${live} s, merged by each domain's pipelines (LIVE_SOURCES=off stops them)`);
    console.log(`Try:  curl -s ${url} -H 'content-type: application/json' -d '{"query":"{ products(first: 3) { nodes { name listPrice } } }"}'`);
    console.log('Customer and finance data need a token: TOKEN=$(npm run -s token -- --role analyst --region EMEA)\n');
    return;
  }
  console.error('The mesh did not become ready in time; see the logs above.');
  await stopAll(1);
}

/** Publishes each running subgraph's SDL, as its team's deploy would; a refusal is reported, not fatal. */
async function publishAll(registryUrl: string, subgraphs: readonly SubgraphEndpoint[]): Promise<void> {
  const registry = await openRegistry(registryUrl);
  try {
    for (const { name, report, published } of await publishRunningSubgraphs(registry, subgraphs, { publishedBy: 'npm start' })) {
      if (published) console.log(`[registry] published ${name} version ${published.version}`);
      else if (!report.accepted) {
        console.error(`[registry] ${name} was refused; the gateway serves the registry's last good supergraph:`);
        for (const f of report.findings.filter((x) => x.severity === 'error')) console.error(`  ${f.code} ${f.coordinate ?? ''} ${f.message}`);
      }
    }
  } finally {
    await registry.close();
  }
}

/** Polls a readiness endpoint until it answers 200 (true), the time is up or the service was given up on (false). */
async function waitUntilReady(url: URL, timeoutMs: number, label?: string): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !stopping && !(label && failed.has(label))) {
    if (await fetch(url).then((r) => r.ok).catch(() => false)) return true;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return false;
}

const command = defineCommand(
  'npm start --',
  'Starts the whole mesh on this machine (each subgraph, then the gateway), supervises it, and stops it on Ctrl-C. Configuration from the environment (README): PORT, SUBGRAPHS, DATA_DIR, SCALE, and more. Exit 0 when stopped by a signal, 1 when it cannot start.',
).action(serviceAction(main));

await runCommand(command);
