/**
 * Records which schema coordinates each client's operations use, for the registry's
 * breaking-change check: counted in memory per client and flushed to the registry every `flushMs`
 * and at shutdown.
 *
 * The client is the token's (`azp`/`client_id`, verified), else the `apollographql-client-name`
 * header, recorded as `claimed:<name>`: a header is the caller's word, and never counts as the app
 * whose name it borrows (the catalog marks only verified clients as registered). A false claim can
 * only make a coordinate look used (a check then refuses a change it would have allowed), never
 * make one look unused, so the judgement stays on the safe side; names are checked for shape, and
 * the number of clients counted between two flushes is bounded, so a caller cannot grow the
 * gateway's memory.
 */
import type { ApolloServerPlugin } from '@apollo/server';
import type { DocumentNode } from 'graphql';
import type { Logger } from 'pino';
import type { Principal } from '../../policy/principal.js';
import { CLAIMED_PREFIX, CLIENT_NAME_HEADER, namedClient } from '../request-stages/client-identity.js';
import { coordinatesOf } from './coordinates.js';
import type { Registry, UsageRecord } from './registry.js';

/** The name usage is recorded under when a request names no client, or an unusable one. */
export const UNNAMED_CLIENT = 'unnamed';
/** Clients beyond this many between two flushes are counted as `other-clients`. */
export const MAX_CLIENTS_PER_FLUSH = 500;
const OVERFLOW_CLIENT = 'other-clients';
const CLIENT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export interface UsageRecordingOptions {
  readonly registry: Registry;
  /** How often counts are written to the registry (default 10 s). */
  readonly flushMs?: number;
  readonly log: Logger;
}

/** The name usage is recorded under: a verified client's, `claimed:<header>`, or `unnamed` (also for a name of another shape). */
export function clientNameOf(principal: Principal, header: string | undefined | null): string {
  const named = namedClient(principal, header);
  if (!named || !CLIENT_NAME.test(named.name)) return UNNAMED_CLIENT;
  return named.verified ? named.name : `${CLAIMED_PREFIX}${named.name}`;
}

export function useUsageRecording(options: UsageRecordingOptions): ApolloServerPlugin<{ readonly principal: Principal }> & { flush(): Promise<void> } {
  let counts = new Map<string, Map<string, number>>();
  let lastSeen = new Map<string, string>();
  const perDocument = new WeakMap<DocumentNode, Set<string>>();
  let flushing: Promise<void> = Promise.resolve();

  const flush = (): Promise<void> => {
    flushing = flushing.then(async () => {
      if (counts.size === 0) return;
      const taken = counts;
      const seen = lastSeen;
      counts = new Map();
      lastSeen = new Map();
      const records: UsageRecord[] = [];
      for (const [client, coordinates] of taken) {
        for (const [coordinate, count] of coordinates) records.push({ client, coordinate, count, lastSeen: seen.get(client)! });
      }
      try {
        await options.registry.recordUsage(records);
      } catch (error) {
        // Kept for the next flush: usage is what protects clients from a breaking publish.
        options.log.warn({ err: error, records: records.length }, 'usage could not be written to the registry; retrying at the next flush');
        for (const record of records) note(record.client, [record.coordinate], record.count, record.lastSeen);
      }
    });
    return flushing;
  };

  const note = (client: string, coordinates: Iterable<string>, count: number, at: string) => {
    const name = counts.has(client) || counts.size < MAX_CLIENTS_PER_FLUSH ? client : OVERFLOW_CLIENT;
    if (!counts.has(name)) counts.set(name, new Map());
    const forClient = counts.get(name)!;
    for (const coordinate of coordinates) forClient.set(coordinate, (forClient.get(coordinate) ?? 0) + count);
    if (!lastSeen.has(name) || lastSeen.get(name)! < at) lastSeen.set(name, at);
  };

  const timer = setInterval(() => void flush(), options.flushMs ?? 10_000);
  timer.unref();

  return {
    flush,
    async requestDidStart({ request, contextValue }) {
      const client = clientNameOf(contextValue.principal, request.http?.headers.get(CLIENT_NAME_HEADER));
      return {
        async didResolveOperation({ document, schema }) {
          let coordinates = perDocument.get(document);
          if (!coordinates) {
            coordinates = coordinatesOf(schema, document);
            perDocument.set(document, coordinates);
          }
          note(client, coordinates, 1, new Date().toISOString());
        },
      };
    },
    async serverWillStart() {
      return {
        async serverWillStop() {
          clearInterval(timer);
          await flush();
        },
      };
    },
  };
}
