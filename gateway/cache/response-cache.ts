/**
 * A response cache that knows the policy and the data (in memory by default; `RESPONSE_CACHE=redis`
 * shares it between replicas, `off` turns it off).
 *
 * A query's answer is kept under a key made of the supergraph version it was planned on, the
 * operation (its document hash and name) and its variables, and the caller's **policy class**: what
 * the policy reads of a principal (signed in or not, whether the token names a subject, roles,
 * scopes, purpose, and the attributes row policies match). Two analysts of the same roles and
 * regions share entries; an analyst and a steward never do; the raw token is not part of it.
 *
 * An entry records the **data product versions** the answer was computed from (each subgraph says
 * which of its products it read, and the load of each). It is served only while every one of them
 * is still the serving version: the gateway learns each product's serving version from every
 * subgraph answer and by asking each subgraph (`POST /versions`, signed) every
 * `RESPONSE_CACHE_VERSIONS_POLL_MS`, and at once at a product's change event (change-events.ts). A
 * publish or hot reload changes the supergraph version, and so every key. The TTL (`RESPONSE_CACHE_TTL_SECONDS`) is a second bound, never the first.
 *
 * Not cached: mutations, answers with errors, answers that read no data product or read the
 * catalog (which changes without a data version), answers that held strictly audited values
 * (RESTRICTED by default: each read of them must be recorded by its subgraph, durably, before the
 * value leaves, and a cached copy would skip that), and requests that say `Cache-Control: no-store`
 * (nor looked up for `no-cache`). A hit is answered with `Age` and `Cache-Control: private`, and
 * `extensions.cache` when asked (`x-include-cache: true`); the audit records it like any other
 * operation. Metrics: `mesh_response_cache_requests_total{outcome}`, `mesh_response_cache_bytes`.
 */
import { createHash } from 'node:crypto';
import { HeaderMap, type ApolloServerPlugin, type GraphQLRequestContextResponseForOperation } from '@apollo/server';
import type { FormattedExecutionResult, GraphQLSchema } from 'graphql';
import { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { Counter, Gauge, type Registry } from 'prom-client';
import { policyClassOf, type Principal } from '../../policy/principal.js';
import type { DataProductVersion } from '../subgraph-calls/subgraph-data-source.js';

export interface ResponseCacheConfig {
  /** `memory` (the default: each gateway process its own), `redis` (shared by every replica and worker), or `off`. */
  readonly store: 'off' | 'memory' | 'redis';
  /** With `redis`: where (env `RESPONSE_CACHE_REDIS_URL`), and the keys' prefix (env `RESPONSE_CACHE_REDIS_PREFIX`, default `mesh-cache`). */
  readonly redisUrl?: string | null;
  readonly redisPrefix?: string;
  /** The second bound of an entry's life (default 300). */
  readonly ttlSeconds: number;
  /** The memory entries may take (default 64 MiB). */
  readonly maxBytes: number;
  /** How often each subgraph is asked for its products' serving versions (default 1000). */
  readonly versionsPollMs: number;
}

export const DEFAULT_RESPONSE_CACHE: ResponseCacheConfig = { store: 'memory', ttlSeconds: 300, maxBytes: 64 * 1024 * 1024, versionsPollMs: 1_000 };

/** The request header that asks for `extensions.cache`. */
export const INCLUDE_CACHE_HEADER = 'x-include-cache';

/** Each data product's serving version as the gateway knows it: from subgraph answers and the version poll. */
export class ProductVersions {
  readonly #current = new Map<string, string>();

  static stamp(version: DataProductVersion): string {
    return `${version.version ?? ''}@${version.loadedAt ?? ''}`;
  }

  /** What a subgraph says it serves now (its `/versions`): authoritative. */
  observe(versions: Iterable<DataProductVersion>): void {
    for (const version of versions) this.#current.set(version.id, ProductVersions.stamp(version));
  }

  /**
   * What an answer was computed from, for products not known yet: an answer computed before a new
   * load may arrive after the poll saw the load, and must not take the version back.
   */
  learn(versions: Iterable<DataProductVersion>): void {
    for (const version of versions) if (!this.#current.has(version.id)) this.#current.set(version.id, ProductVersions.stamp(version));
  }

  /** The products whose version it knows (`<domain>.<product>`). */
  products(): IterableIterator<string> {
    return this.#current.keys();
  }

  /** Whether every product an entry read is still served in the version it read. */
  current(read: readonly (readonly [string, string])[]): boolean {
    return read.every(([id, stamp]) => this.#current.get(id) === stamp);
  }
}

/** An answer as kept: what the executor answered, and the products (with versions) it read. */
interface StoredAnswer {
  readonly result: FormattedExecutionResult;
  readonly products: Record<string, DataProductVersion>;
}

interface Entry {
  readonly body: string;
  readonly storedAt: number;
  /** Product id and version stamp, for each product the answer read. */
  readonly read: readonly (readonly [string, string])[];
  /** Rows the subgraphs returned (the actual cost, reported again on a hit). */
  readonly rows: number;
}

/** What the cache needs of a request's context. */
export interface ResponseCacheContext {
  readonly principal: Principal;
  readonly actualRows?: { rows: number };
  readonly dataProductsRead?: Map<string, DataProductVersion>;
  /** Set when the answer read something that changes without a data version (the catalog). */
  readonly volatile?: { read: boolean };
  /** Set when a subgraph said its answer held strictly audited values. */
  readonly strictlyAudited?: { read: boolean };
  /** The cache's verdict on this request, for `extensions.cache` and the headers. */
  cache?: { outcome: 'hit' | 'miss' | 'bypass'; age?: number };
}

export interface ResponseCache {
  readonly plugin: ApolloServerPlugin<ResponseCacheContext>;
  readonly versions: ProductVersions;
  close(): Promise<void>;
}

/** Where entries live. A store that fails answers a miss and keeps nothing: a request never fails for the cache. */
interface EntryStore {
  get(key: string): Promise<Entry | undefined>;
  set(key: string, entry: Entry): Promise<void>;
  /** Bytes held in this process (null for a shared store). */
  bytes(): number | null;
  close(): Promise<void>;
}

function memoryStore(config: ResponseCacheConfig): EntryStore {
  const entries = new LRUCache<string, Entry>({ maxSize: config.maxBytes, sizeCalculation: (entry) => Math.max(1, entry.body.length + 64 * entry.read.length + 64), ttl: config.ttlSeconds * 1000 });
  return {
    get: async (key) => entries.get(key),
    set: async (key, entry) => void entries.set(key, entry),
    bytes: () => entries.calculatedSize,
    close: async () => entries.clear(),
  };
}

function redisStore(config: ResponseCacheConfig, log: ResponseCacheLog): EntryStore {
  if (!config.redisUrl) throw new Error('RESPONSE_CACHE=redis needs RESPONSE_CACHE_REDIS_URL.');
  // Commands fail at once while disconnected (no offline queue): a request never waits for Redis.
  const redis = new Redis(config.redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 0, connectTimeout: 1_000, retryStrategy: (times) => Math.min(times * 200, 2_000), lazyConnect: false });
  const prefix = `${config.redisPrefix ?? 'mesh-cache'}:`;
  let failing = false;
  const failed = (error: unknown) => {
    if (!failing) log.warn({ err: error }, 'response cache: Redis does not answer; answers are computed and not kept until it does');
    failing = true;
  };
  redis.on('error', failed);
  redis.on('ready', () => {
    if (failing) log.info('response cache: Redis answers again');
    failing = false;
  });
  return {
    async get(key) {
      try {
        const text = await redis.get(prefix + key);
        return text === null ? undefined : (JSON.parse(text) as Entry);
      } catch (error) {
        failed(error);
        return undefined;
      }
    },
    async set(key, entry) {
      try {
        await redis.set(prefix + key, JSON.stringify(entry), 'PX', config.ttlSeconds * 1000);
      } catch (error) {
        failed(error);
      }
    },
    bytes: () => null,
    close: async () => void (await redis.quit().catch(() => redis.disconnect())),
  };
}

/** What the cache logs (a pino logger fits). */
export interface ResponseCacheLog {
  warn(fields: object, message: string): void;
  info(message: string): void;
}

const noStore = (value: string | undefined) => /\bno-store\b/i.test(value ?? '');
const noCache = (value: string | undefined) => /\bno-cache\b/i.test(value ?? '');

export function createResponseCache(options: {
  readonly config: ResponseCacheConfig;
  /** The supergraph version an API schema was composed from. */
  readonly versionOf: (schema: GraphQLSchema) => string | undefined;
  readonly registry: Registry;
  readonly log: ResponseCacheLog;
  readonly now?: () => number;
}): ResponseCache {
  const { config } = options;
  const now = options.now ?? Date.now;
  const entries = config.store === 'redis' ? redisStore(config, options.log) : memoryStore(config);
  const versions = new ProductVersions();
  const requests = new Counter({ name: 'mesh_response_cache_requests_total', help: 'Queries looked up in the response cache: hit, miss, or bypass (not cacheable, or the caller said no-cache/no-store).', labelNames: ['outcome'], registers: [options.registry] });
  new Gauge({
    name: 'mesh_response_cache_bytes',
    help: 'Bytes of answers the response cache holds in this process (0 with Redis: see mesh_response_cache_stored_bytes_total).',
    registers: [options.registry],
    collect() {
      this.set(entries.bytes() ?? 0);
    },
  });
  const storedBytes = new Counter({ name: 'mesh_response_cache_stored_bytes_total', help: 'Bytes of answers this gateway put in the response cache.', registers: [options.registry] });

  const keyOf = (context: GraphQLRequestContextResponseForOperation<ResponseCacheContext>): string | null => {
    const supergraph = options.versionOf(context.schema);
    if (!supergraph || context.operation.operation !== 'query' || !context.queryHash) return null;
    return createHash('sha256')
      .update(JSON.stringify([supergraph, context.queryHash, context.operationName ?? '', context.request.variables ?? {}, policyClassOf(context.contextValue.principal)]))
      .digest('hex');
  };

  const plugin: ApolloServerPlugin<ResponseCacheContext> = {
    async requestDidStart({ request }) {
      const directive = request.http?.headers.get('cache-control') ?? undefined;
      let key: string | null = null;
      return {
        async responseForOperation(context) {
          key = keyOf(context);
          if (key === null) {
            context.contextValue.cache = { outcome: 'bypass' };
            return null;
          }
          const entry = noCache(directive) || noStore(directive) ? undefined : await entries.get(key);
          // Served only while every product it read is served in the version it read, and within the TTL.
          if (!entry || !versions.current(entry.read) || now() - entry.storedAt > config.ttlSeconds * 1000) {
            context.contextValue.cache = { outcome: 'miss' };
            return null;
          }
          const age = Math.floor((now() - entry.storedAt) / 1000);
          context.contextValue.cache = { outcome: 'hit', age };
          const stored = JSON.parse(entry.body) as StoredAnswer;
          // What a computed answer would have told the other plugins: its actual rows, the products it read.
          if (context.contextValue.actualRows) context.contextValue.actualRows.rows = entry.rows;
          for (const product of Object.values(stored.products)) context.contextValue.dataProductsRead?.set(product.id, product);
          return { http: { headers: new HeaderMap() }, body: { kind: 'single', singleResult: stored.result } };
        },
        async willSendResponse({ response, contextValue }) {
          const verdict = contextValue.cache ?? { outcome: 'bypass' as const };
          if (response.body.kind !== 'single') return;
          const result = response.body.singleResult;
          if (verdict.outcome === 'miss' && key !== null && !noStore(directive)) {
            const read = [...(contextValue.dataProductsRead?.values() ?? [])];
            const storable = !result.errors?.length && result.data && read.length > 0 && !contextValue.volatile?.read && contextValue.strictlyAudited?.read !== true;
            if (storable) {
              // What the executor answered (data, and the masks it explains); other extensions are added per request.
              const policyExtension = result.extensions?.policy;
              const stored: StoredAnswer = { result: { data: result.data, ...(policyExtension ? { extensions: { policy: policyExtension } } : {}) }, products: Object.fromEntries(read.map((product) => [product.id, product])) };
              versions.learn(read);
              const body = JSON.stringify(stored);
              await entries.set(key, { body, storedAt: now(), read: read.map((product) => [product.id, ProductVersions.stamp(product)] as const), rows: contextValue.actualRows?.rows ?? 0 });
              storedBytes.inc(body.length);
            } else verdict.outcome = 'bypass';
          }
          requests.inc({ outcome: verdict.outcome });
          if (verdict.outcome === 'hit') {
            response.http.headers.set('age', String(verdict.age ?? 0));
            response.http.headers.set('cache-control', `private, max-age=${Math.max(0, config.ttlSeconds - (verdict.age ?? 0))}`);
          } else if (verdict.outcome === 'miss') {
            response.http.headers.set('cache-control', `private, max-age=${config.ttlSeconds}`);
          }
          if (request.http?.headers.get(INCLUDE_CACHE_HEADER) === 'true') {
            result.extensions = { ...result.extensions, cache: { outcome: verdict.outcome, ...(verdict.outcome === 'hit' ? { age: verdict.age ?? 0 } : {}) } };
          }
        },
      };
    },
  };

  return {
    plugin,
    versions,
    close: () => entries.close(),
  };
}

/** What a subgraph answers at `POST /versions`: its products' serving versions. */
export interface SubgraphVersions {
  readonly domain: string;
  readonly products: readonly DataProductVersion[];
}

/**
 * Asks each served subgraph for its products' serving versions every `intervalMs` (signed, as the
 * catalog's reads are); a subgraph that does not answer keeps its last known versions.
 */
export function pollProductVersions(options: {
  readonly versions: ProductVersions;
  readonly subgraphs: () => readonly { readonly name: string; readonly url: string }[];
  readonly fetchVersions: (subgraph: { readonly name: string; readonly url: string }) => Promise<SubgraphVersions>;
  readonly intervalMs: number;
}): { poll(): Promise<void>; pollAfterNow(): Promise<void>; stop(): void } {
  let running: Promise<void> | null = null;
  const poll = () => {
    running ??= Promise.all(
      options.subgraphs().map(async (subgraph) => {
        try {
          const answer = await options.fetchVersions(subgraph);
          // A subgraph vouches for its own products only.
          options.versions.observe(answer.products.filter((product) => typeof product?.id === 'string' && product.id.startsWith(`${subgraph.name}.`)));
        } catch {
          // Unreachable for now: its entries stay valid on the last versions it gave.
        }
      }),
    ).then(
      () => {
        running = null;
      },
      () => {
        running = null;
      },
    );
    return running;
  };
  const timer = setInterval(() => void poll(), options.intervalMs);
  timer.unref();
  return {
    poll,
    // A poll that starts now or later: one in flight may have asked before what the caller knows of was served.
    pollAfterNow: () => (running ? running.then(() => poll()) : poll()),
    stop: () => clearInterval(timer),
  };
}

/**
 * For a change event's subscribers: settles once the versions were polled after the event came
 * (one poll per event, whoever asks first), so that an answer the cache keeps is never older than
 * the version the event is about (a subgraph publishes after it serves the version).
 */
export function freshAfter(poll: { pollAfterNow(): Promise<void> }): (change: { readonly event: { readonly id: string } }) => Promise<void> {
  const polled = new LRUCache<string, Promise<void>>({ max: 1_000 });
  return (change) => {
    let done = polled.get(change.event.id);
    if (!done) {
      done = poll.pollAfterNow();
      polled.set(change.event.id, done);
    }
    return done;
  };
}
