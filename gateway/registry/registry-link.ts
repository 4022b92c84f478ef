/**
 * What the gateway takes from, and gives to, the registry it serves from: it records which schema
 * coordinates each client uses (for the breaking-change check), and it reads the trusted documents
 * apps registered, every few reload polls (documents are registered apart from publishes).
 */
import type { Logger } from 'pino';
import { openRegistry } from './open.js';
import type { UsageRecord } from './registry.js';
import { trustedDocumentsOf, type TrustedDocuments } from '../request-stages/trusted-documents.js';
import { useUsageRecording } from './usage-recording.js';

export interface RegistryLink {
  /** The Apollo Server plugin that records usage. */
  readonly usage: ReturnType<typeof useUsageRecording>;
  /** The trusted documents last read. */
  trusted(): TrustedDocuments;
  /** Usage recorded since a time (the catalog's "used by"). */
  usageSince(since: Date): Promise<UsageRecord[]>;
  /** The clients that registered documents, as last read. */
  registeredClients(): ReadonlySet<string>;
  /** Stops reading; call after Apollo Server stopped (its last usage flush needs the registry). */
  close(): Promise<void>;
}

export async function linkRegistry(options: {
  readonly registryUrl: string;
  /** How often usage is flushed (`USAGE_FLUSH_MS`). */
  readonly usageFlushMs: number;
  /** The reload poll (`RELOAD_POLL_MS`): trusted documents are read every five of them. */
  readonly pollMs: number;
  readonly log: Logger;
}): Promise<RegistryLink> {
  const registry = await openRegistry(options.registryUrl);
  let trusted = trustedDocumentsOf([]);
  let registered: ReadonlySet<string> = new Set();
  const refresh = async () => {
    try {
      const documents = await registry.documents();
      trusted = trustedDocumentsOf(documents);
      registered = new Set(documents.map((document) => document.client));
    } catch (error) {
      options.log.warn({ err: error }, 'trusted documents could not be read from the registry; keeping the last ones read');
    }
  };
  await refresh();
  const timer = setInterval(() => void refresh(), options.pollMs * 5);
  timer.unref();
  return {
    usage: useUsageRecording({ registry, flushMs: options.usageFlushMs, log: options.log }),
    trusted: () => trusted,
    usageSince: (since) => registry.usage(since),
    registeredClients: () => registered,
    async close() {
      clearInterval(timer);
      await registry.close();
    },
  };
}
