/**
 * The gateway on every core: with `GATEWAY_WORKERS` above 1 (or `auto`, the default under
 * `NODE_ENV=production`, as Hive Gateway does), a primary process forks one gateway worker per core
 * with Node's cluster module; they share the port, and the primary hands them connections in turn.
 *
 * - Each worker is a whole gateway: it loads and hot-reloads the supergraph itself (registry poll or
 *   file watch), so a publish reaches every worker.
 * - Metrics add up: any worker's `/metrics` asks the primary, which gathers every worker's registry
 *   (prom-client's AggregatorRegistry: counters and histograms summed).
 * - Audit chains stay whole: each worker writes its own chain (`gateway-<n>.jsonl`, or service
 *   `gateway-<n>` in the audit database); `npm run audit:verify` checks each.
 * - Rate limits: with Redis the buckets are shared; without, each worker counts its share of each
 *   allowance (the allowance divided by the workers), as connections are spread evenly.
 * - A worker that dies is replaced; one that dies at start again and again stops the gateway.
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import { AggregatorRegistry, type Registry } from 'prom-client';

export class WorkersConfigError extends Error {
  override name = 'WorkersConfigError';
}

/** How many gateway workers to run: `GATEWAY_WORKERS` (`auto` or a whole number), default `auto` in production, else 1. */
export function workerCountFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const value = env.GATEWAY_WORKERS || (env.NODE_ENV === 'production' ? 'auto' : '1');
  if (value === 'auto') return availableParallelism();
  if (!/^[1-9]\d{0,2}$/.test(value)) throw new WorkersConfigError(`GATEWAY_WORKERS must be "auto" or a whole number from 1 to 999, got "${value.slice(0, 40)}".`);
  return Number(value);
}

const METRICS_REQUEST = 'gateway:metrics-request';
const METRICS_RESPONSE = 'gateway:metrics-response';
const READY = 'gateway:ready';

/** This process's worker number, when it is a gateway worker of a cluster (null otherwise). */
export function workerNumber(): number | null {
  return cluster.isWorker ? cluster.worker!.id : null;
}

/**
 * In a worker: what its `/metrics` answers, every worker's metrics added up (asked of the primary).
 * The worker's own registry is the one the primary gathers.
 */
export function clusterMetrics(registry: Registry): () => Promise<string> {
  // prom-client answers the primary's requests for this worker's metrics once an aggregator exists here.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([registry]);
  let next = 0;
  const pending = new Map<number, { resolve: (text: string) => void; reject: (error: Error) => void }>();
  process.on('message', (message: { type?: string; id?: number; text?: string; error?: string }) => {
    if (message?.type !== METRICS_RESPONSE || message.id === undefined) return;
    const waiting = pending.get(message.id);
    pending.delete(message.id);
    if (message.error !== undefined) waiting?.reject(new Error(message.error));
    else waiting?.resolve(message.text ?? '');
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = next++;
      pending.set(id, { resolve, reject });
      process.send!({ type: METRICS_REQUEST, id });
    });
}

/** In a worker: tells the primary it serves. */
export function announceReady(url: string): void {
  process.send?.({ type: READY, url });
}

/** Rapid deaths of workers (within this long of their start) that stop the gateway. */
const CRASH_WINDOW_MS = 10_000;
const MAX_RAPID_CRASHES = 5;

/**
 * The primary: forks `workers` workers (this same program), replaces those that die, answers their
 * requests for the cluster's metrics, and stops them all on SIGINT or SIGTERM (each drains its
 * requests and closes its audit chain).
 */
export function runPrimary(options: { readonly workers: number; readonly log: Logger }): void {
  const { workers, log } = options;
  const aggregator = new AggregatorRegistry();
  const started = new Map<number, number>();
  const ready = new Set<number>();
  let rapidCrashes = 0;
  let stopping = false;

  const fork = () => {
    const worker = cluster.fork();
    started.set(worker.id, Date.now());
  };
  cluster.on('message', (worker: Worker, message: { type?: string; id?: number; url?: string }) => {
    if (message?.type === METRICS_REQUEST) {
      aggregator.clusterMetrics().then(
        (text) => worker.send({ type: METRICS_RESPONSE, id: message.id, text }),
        (error: Error) => worker.send({ type: METRICS_RESPONSE, id: message.id, error: error.message }),
      );
    } else if (message?.type === READY) {
      ready.add(worker.id);
      if (ready.size === workers) log.info({ url: message.url, workers }, `gateway ready at ${message.url} (${workers} workers)`);
    }
  });
  cluster.on('exit', (worker, code, signal) => {
    ready.delete(worker.id);
    if (stopping) {
      // Every worker gone: exit with the code the stop set (1 after rapid deaths, else 0).
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
      return;
    }
    const lived = Date.now() - (started.get(worker.id) ?? 0);
    rapidCrashes = lived < CRASH_WINDOW_MS ? rapidCrashes + 1 : 0;
    if (rapidCrashes >= MAX_RAPID_CRASHES) {
      log.fatal({ worker: worker.id, code, signal }, `gateway workers died ${rapidCrashes} times in a row right after starting; stopping`);
      stopping = true;
      for (const other of Object.values(cluster.workers ?? {})) other?.process.kill('SIGTERM');
      process.exitCode = 1;
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(1);
      return;
    }
    log.error({ worker: worker.id, code, signal }, 'a gateway worker died; starting another');
    fork();
  });
  const stop = () => {
    if (stopping) return;
    stopping = true;
    const running = Object.values(cluster.workers ?? {});
    if (running.length === 0) process.exit(0);
    for (const worker of running) worker?.process.kill('SIGTERM');
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  for (let i = 0; i < workers; i++) fork();
}
