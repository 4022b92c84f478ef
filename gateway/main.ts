/**
 * Starts the gateway: `tsx gateway/main.ts` (configuration from the environment, see config.ts).
 * With `GATEWAY_WORKERS` above 1 (default under `NODE_ENV=production`: one per core), a primary
 * process runs that many gateway workers on the same port (gateway/launcher/cluster.ts).
 */
import { pino } from 'pino';
import { dirname } from 'node:path';
import { openAuditSinkFromEnv } from '../policy/audit-config.js';
import { announceReady, clusterMetrics, runPrimary, workerCountFromEnv, workerNumber } from './launcher/cluster.js';
import { gatewayConfigFromEnv } from './config.js';
import { startGateway } from './server.js';
import cluster from 'node:cluster';
import { defineCommand, runCommand, serviceAction } from '../policy/command-line.js';

async function main(): Promise<void> {
  // Configuration mistakes stop the start before any worker is forked.
  const config = gatewayConfigFromEnv();
  const workers = workerCountFromEnv();
  const worker = workerNumber();
  const log = pino({ level: config.logLevel, base: { service: 'gateway', ...(worker === null ? {} : { worker }) } });
  if (workers > 1 && cluster.isPrimary) {
    runPrimary({ workers, log });
    return;
  }
  // Each worker keeps an audit chain of its own: one writer per chain.
  const service = worker === null ? 'gateway' : `gateway-${worker}`;
  const audit = await openAuditSinkFromEnv({ service, defaultDir: dirname(config.auditPath) });
  const gateway = await startGateway(config, log, { audit, ...(worker === null ? {} : { cluster: { worker, workers, metrics: clusterMetrics } }) });
  // Once, whichever signal comes first: Ctrl-C reaches every process of the mesh, and the launcher then sends SIGTERM too.
  let stopping: Promise<void> | undefined;
  const shutdown = () =>
    (stopping ??= (async () => {
      await gateway.stop(); // requests in flight finish, and write their records
      await audit.close();
      process.exit(0);
    })());
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
  try {
    await gateway.ready;
  } catch {
    await gateway.stop();
    await audit.close();
    process.exit(1);
  }
  log.info({ url: gateway.url }, `gateway ready at ${gateway.url}`);
  if (worker !== null) announceReady(gateway.url);
}

const command = defineCommand(
  'npm run gateway --',
  'Starts the gateway. Its configuration comes from the environment (gateway/config.ts, README): PORT, SUPERGRAPH_SOURCE, AUTH_ISSUERS, GATEWAY_WORKERS, and more. Exit 0 when stopped by a signal, 1 when it cannot start.',
).action(serviceAction(main));

await runCommand(command);
