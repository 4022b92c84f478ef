/**
 * Starts the gateway: `tsx gateway/main.ts` (configuration from the environment, see config.ts).
 */
import { pino } from 'pino';
import { gatewayConfigFromEnv } from './config.js';
import { startGateway } from './server.js';

async function main(): Promise<void> {
  const config = gatewayConfigFromEnv();
  const log = pino({ level: config.logLevel, base: { service: 'gateway' } });
  const gateway = await startGateway(config, log);
  const shutdown = async () => {
    await gateway.stop();
    process.exit(0);
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
  try {
    await gateway.ready;
  } catch {
    await gateway.stop();
    process.exit(1);
  }
  log.info({ url: gateway.url }, `gateway ready at ${gateway.url}`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
