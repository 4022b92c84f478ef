/**
 * `npm start`: the whole mesh on one machine, on the embedded default.
 *
 * 1. prepares the data (generates the raw files and builds every domain's DuckDB warehouse the
 *    first time; reuses them afterwards),
 * 2. starts each subgraph the gateway is configured with as its own process, on the port of its URL,
 * 3. starts the gateway, waits until it is ready, and prints where to send queries.
 *
 * Each part runs as it would in production (one process per service); their JSON logs are printed
 * readably here. Ctrl-C stops everything; if any part dies, the others are stopped too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { prettyFactory } from 'pino-pretty';
import { gatewayConfigFromEnv } from './config.js';

const subgraphsMain = fileURLToPath(new URL('../subgraphs/main.ts', import.meta.url));
const gatewayMain = fileURLToPath(new URL('./main.ts', import.meta.url));
const pretty = prettyFactory({ colorize: process.stdout.isTTY ?? false, ignore: 'pid,hostname', translateTime: 'HH:MM:ss' });
const children = new Set<ChildProcess>();
let stopping = false;

function run(label: string, script: string, args: readonly string[], env: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => {
      process.stdout.write(line.startsWith('{') ? pretty(line) : `[${label}] ${line}\n`);
    });
  }
  child.once('exit', (code, signal) => {
    children.delete(child);
    if (!stopping && label !== 'prepare') {
      console.error(`\n${label} stopped (${signal ?? `exit code ${code}`}); stopping the mesh.`);
      void stopAll(1);
    }
  });
  return child;
}

async function stopAll(exitCode: number): Promise<never> {
  stopping = true;
  const exits = [...children].map((child) => new Promise((resolve) => child.once('exit', resolve)));
  for (const child of children) child.kill('SIGTERM');
  await Promise.race([Promise.all(exits), new Promise((resolve) => setTimeout(resolve, 5_000))]);
  for (const child of children) child.kill('SIGKILL');
  process.exit(exitCode);
}

async function waitForExit(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => child.once('exit', (code) => resolve(code ?? 1)));
}

async function main(): Promise<void> {
  process.once('SIGINT', () => void stopAll(0));
  process.once('SIGTERM', () => void stopAll(0));
  const config = gatewayConfigFromEnv();

  console.log('Preparing data (generated on first start, then reused)…');
  const prepareCode = await waitForExit(run('prepare', subgraphsMain, ['prepare'], {}));
  if (prepareCode !== 0) {
    console.error('Preparing the data failed; see above.');
    await stopAll(1);
  }

  for (const { name, url } of config.subgraphs) {
    const { port, hostname } = new URL(url);
    run(name, subgraphsMain, ['serve', name], { PORT: port, HOST: hostname.replace(/^\[|\]$/g, '') });
  }
  run('gateway', gatewayMain, [], {});

  const readyUrl = new URL('/health/ready', config.host === '0.0.0.0' ? `http://127.0.0.1:${config.port}` : `http://${config.host}:${config.port}`);
  const deadline = Date.now() + config.composeTimeoutMs + 30_000;
  while (Date.now() < deadline) {
    const ready = await fetch(readyUrl).then((r) => r.ok).catch(() => false);
    if (ready) {
      const url = `http://localhost:${config.port}/graphql`;
      console.log(`\nThe mesh is ready.\n  Gateway:   ${url}`);
      for (const { name, url: subgraphUrl } of config.subgraphs) console.log(`  ${name.padEnd(10)} ${subgraphUrl}`);
      console.log(`Try:  curl -s ${url} -H 'content-type: application/json' -d '{"query":"{ customers(first: 2) { nodes { name lifetimeValue } } }"}'\n`);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  console.error('The gateway did not become ready in time; see the logs above.');
  await stopAll(1);
}

void main();
