/**
 * Starts the gateway: `tsx gateway/main.ts` (configuration from the environment, see config.ts).
 */
import { pino } from 'pino';
import { dirname } from 'node:path';
import { openAuditSinkFromEnv } from '../policy/audit-config.js';
import { gatewayConfigFromEnv } from './config.js';
import { startGateway } from './server.js';

async function main(): Promise<void> {
  const config = gatewayConfigFromEnv();
  const log = pino({ level: config.logLevel, base: { service: 'gateway' } });
  const audit = await openAuditSinkFromEnv({ service: 'gateway', defaultDir: dirname(config.auditPath) });
  const gateway = await startGateway(config, log, { audit });
  const shutdown = async () => {
    await gateway.stop(); // requests in flight finish, and write their records
    await audit.close();
    process.exit(0);
  };
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
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
