/**
 * Gateway configuration, from the environment. Every value has a default that runs the embedded
 * mesh on one machine.
 */
import { IdeSignInConfigError, ideSignInFromEnv, type IdeSignInConfig } from './ide/ide-sign-in.js';
import { DEFAULT_RESPONSE_CACHE, type ResponseCacheConfig } from './cache/response-cache.js';
import type { SubgraphEndpoint } from './subgraph-calls/subgraph-endpoint.js';
import { join, resolve } from 'node:path';
import type { IdentityConfig } from '../policy/identity.js';
import { identityConfigFromEnv } from '../policy/identity-config.js';
import { isLevel } from '../policy/rules.js';
import { allowedHostsFromEnv } from '../policy/host-check.js';
import { SigningKeyError, signingKeyFromEnv } from '../policy/subgraph-signature.js';
import { DEFAULT_SUBGRAPH_CALLS, type SubgraphCallsConfig } from './subgraph-calls/subgraph-calls.js';
import { DEFAULT_LOAD_SHEDDING, type LoadSheddingConfig } from './request-stages/load-shedding.js';
import { limitsConfigFromEnv, LimitsConfigError, type LimitsConfig } from './request-stages/allowances.js';
import type { PreplanMode } from './request-stages/preplan-policy.js';
import { DEFAULT_MESH_MANIFEST, readMeshManifest } from '../policy/mesh-manifest.js';
import { registryUrlFromEnv } from './registry/open.js';
import type { SupergraphSourceConfig, UnclassifiedTreatment } from './supergraph/supergraph-source.js';
import { DEFAULT_SUBSCRIPTION_BOUNDS } from './subscriptions/run.js';
import { changeFeedSettingsFromEnv, type ChangeFeedSettings } from '../policy/events/feed-from-env.js';

export type { SubgraphEndpoint } from './subgraph-calls/subgraph-endpoint.js';

export interface GatewayConfig {
  /** HTTP port (env `PORT`, default 4000). */
  readonly port: number;
  /** Interface to bind (env `HOST`, default `127.0.0.1`; `0.0.0.0` in containers). */
  readonly host: string;
  /**
   * Where the supergraph comes from (env `SUPERGRAPH_SOURCE`): `registry` (default; hot reload on
   * each publish), `file` (env `SUPERGRAPH_FILE`, any Federation 2 supergraph; reloaded when it
   * changes) or `subgraphs` (composed once at start from env `SUBGRAPHS`).
   */
  readonly supergraph: SupergraphSourceConfig;
  /** How often recorded usage is written to the registry (env `USAGE_FLUSH_MS`, default 10000; registry source only). */
  readonly usageFlushMs: number;
  /** Where the served supergraph SDL is written (env `SUPERGRAPH_PATH`, default `data/supergraph.graphql`). */
  readonly supergraphPath: string;
  /** Where the client-facing API schema is written (env `API_SCHEMA_PATH`, default `data/api-schema.graphql`). */
  readonly apiSchemaPath: string;
  /**
   * How long to wait at start for a first supergraph: every subgraph answering, or a first publish
   * to the registry (env `COMPOSE_TIMEOUT_MS`, default 60000).
   */
  readonly composeTimeoutMs: number;
  /** Largest accepted request body (env `BODY_LIMIT`, default `1mb`). */
  readonly bodyLimit: string;
  /** Log level (env `LOG_LEVEL`, default `info`). */
  readonly logLevel: string;
  /** How bearer tokens are verified (env `AUTH_*`, see policy/identity-config.ts). */
  readonly identity: IdentityConfig;
  /** The key the gateway signs subgraph requests with (env `SUBGRAPH_SIGNING_KEY`; a development key by default, required in production). */
  readonly subgraphSigningKey: string;
  /** Host names the gateway answers for (env `ALLOWED_HOSTS`; loopback names in development); null: any. */
  readonly allowedHosts: readonly string[] | null;
  /**
   * What the gateway does with fields the principal may not see, before planning (env
   * `POLICY_MODE`): `filter` (default) removes them and answers null with an error; `reject`
   * refuses the whole operation.
   */
  readonly policyMode: PreplanMode;
  /**
   * The response cache (see cache/response-cache.ts): env `RESPONSE_CACHE` (`memory`, the default,
   * `redis` or `off`), `RESPONSE_CACHE_TTL_SECONDS` (300), `RESPONSE_CACHE_MAX_BYTES` (64 MiB),
   * `RESPONSE_CACHE_VERSIONS_POLL_MS` (1000). Absent from a configuration built in code: off.
   */
  readonly responseCache?: ResponseCacheConfig;
  /**
   * The data products' change feed (env `EVENTS_NATS_URL`, else `<DATA_DIR>/events`): with the
   * response cache on, a change event invalidates the entries that read the product at once.
   * Absent from a configuration built in code: the versions poll alone invalidates.
   */
  readonly changeFeed?: ChangeFeedSettings;
  /**
   * How far a subscriber may fall behind before its subscription is ended (SUBSCRIPTION_SLOW_CONSUMER):
   * events waiting (env `SUBSCRIPTION_MAX_QUEUED_EVENTS`, default 1000) and bytes the connection
   * holds unsent (env `SUBSCRIPTION_MAX_BUFFERED_BYTES`, default 1 MiB). Per-principal bounds are limits.
   */
  readonly subscriptions?: { readonly maxQueuedEvents: number; readonly maxBufferedBytes: number };
  /** The most rows one CSV export may hold (env `EXPORT_MAX_ROWS`, default 100000). */
  readonly exportMaxRows: number;
  /** Where the IDE's browser bundle is built and cached (env `IDE_CACHE_DIR`, default `node_modules/.cache/data-mesh-ide`). */
  readonly ideCacheDir?: string;
  /** The IDE's OpenID Connect sign-in (env `IDE_OIDC_*`, see gateway/ide/ide-sign-in.ts); absent: the development sign-in and a pasted token only. */
  readonly ideSignIn?: IdeSignInConfig | null;
  /** The gateway's audit log (env `AUDIT_DIR`, default `<DATA_DIR>/audit`; file `gateway.jsonl`). */
  readonly auditPath: string;
  /**
   * The registry API at `/registry/v1` (gateway/registry/api.ts), with the registry source only: env
   * `REGISTRY_API` (`on`, the default, or `off`) and `REGISTRY_GOVERNANCE_ROLES` (the governance
   * group's roles, comma-separated, default `admin`). Absent from a configuration built in code: off.
   */
  readonly registryApi?: { readonly governanceRoles: readonly string[] } | null;
  /**
   * Operation limits, cost budgets and rate allowances per principal kind, role and client (env
   * `GATEWAY_LIMITS` as JSON or `GATEWAY_LIMITS_FILE`; defaults in gateway/request-stages/allowances.ts).
   */
  readonly limits: LimitsConfig;
  /** Timeouts, idle sockets, circuit breakers and the response budget of subgraph calls (see gateway/subgraph-calls/subgraph-calls.ts). */
  readonly subgraphCalls: SubgraphCallsConfig;
  /** Bounds on operations in flight and on the heap (see gateway/request-stages/load-shedding.ts). */
  readonly loadShedding: LoadSheddingConfig;
  /**
   * Where the rate-limit buckets live: Redis at `redisUrl` (env `RATE_LIMIT_REDIS_URL`), shared by
   * every replica, with keys under `redisPrefix` (env `RATE_LIMIT_REDIS_PREFIX`, default
   * `mesh-rate`); this gateway's memory when null (the default).
   */
  readonly rateLimitStore: { readonly redisUrl: string | null; readonly redisPrefix: string };
}

export class GatewayConfigError extends Error {
  override name = 'GatewayConfigError';
}

export function defineGatewayConfig(config: GatewayConfig): GatewayConfig {
  if (config.supergraph.kind === 'subgraphs') checkSubgraphList(config.supergraph.subgraphs);
  return config;
}

function checkSubgraphList(subgraphs: readonly SubgraphEndpoint[]): void {
  const names = new Set<string>();
  for (const { name, url } of subgraphs) {
    if (!/^[a-z][a-z0-9_-]*$/.test(name)) throw new GatewayConfigError(`Subgraph name "${name}" must be lower-case letters, digits, - or _.`);
    if (names.has(name)) throw new GatewayConfigError(`Subgraph "${name}" is listed twice.`);
    names.add(name);
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new GatewayConfigError(`Subgraph "${name}" has an invalid URL "${url}".`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new GatewayConfigError(`Subgraph "${name}" URL must be http or https, got "${url}".`);
    }
  }
  if (subgraphs.length === 0) throw new GatewayConfigError('No subgraphs to compose.');
}

/** The subgraphs the mesh manifest lists (env `MESH_MANIFEST`, default the built-in customers, products and finance on 4001-4003). */
export function manifestSubgraphs(env: NodeJS.ProcessEnv = process.env): readonly SubgraphEndpoint[] {
  try {
    return readMeshManifest(env.MESH_MANIFEST || DEFAULT_MESH_MANIFEST).domains.map(({ name, url }) => ({ name, url }));
  } catch (error) {
    throw new GatewayConfigError((error as Error).message);
  }
}

export function parseSubgraphList(value: string): SubgraphEndpoint[] {
  return value
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry) => {
      const at = entry.indexOf('=');
      if (at <= 0) throw new GatewayConfigError(`SUBGRAPHS entry "${entry}" is not name=url.`);
      return { name: entry.slice(0, at), url: entry.slice(at + 1) };
    });
}

function responseCacheFrom(env: NodeJS.ProcessEnv): ResponseCacheConfig {
  const store = env.RESPONSE_CACHE || DEFAULT_RESPONSE_CACHE.store;
  if (store !== 'off' && store !== 'memory' && store !== 'redis') throw new GatewayConfigError(`RESPONSE_CACHE must be off, memory or redis, got "${store.slice(0, 40)}".`);
  const redisUrl = store === 'redis' ? redisUrlFrom(env, 'RESPONSE_CACHE_REDIS_URL') : null;
  if (store === 'redis' && redisUrl === null) throw new GatewayConfigError('RESPONSE_CACHE=redis needs RESPONSE_CACHE_REDIS_URL (redis:// or rediss://).');
  return {
    store,
    redisUrl,
    redisPrefix: env.RESPONSE_CACHE_REDIS_PREFIX || 'mesh-cache',
    ttlSeconds: atLeastOne(env, 'RESPONSE_CACHE_TTL_SECONDS', DEFAULT_RESPONSE_CACHE.ttlSeconds),
    maxBytes: atLeastOne(env, 'RESPONSE_CACHE_MAX_BYTES', DEFAULT_RESPONSE_CACHE.maxBytes),
    versionsPollMs: atLeastOne(env, 'RESPONSE_CACHE_VERSIONS_POLL_MS', DEFAULT_RESPONSE_CACHE.versionsPollMs),
  };
}

/** A whole number of at least 1 (a TTL, a size or an interval of 0 would make the setting meaningless). */
function atLeastOne(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const value = positiveInteger(env, name, fallback);
  if (value < 1) throw new GatewayConfigError(`${name} must be at least 1, got "${env[name]}".`);
  return value;
}

function positiveInteger(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new GatewayConfigError(`${name} must be a whole number, got "${raw}".`);
  return value;
}

function atLeastOneFrom(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const value = positiveInteger(env, name, fallback);
  if (value < 1) throw new GatewayConfigError(`${name} must be at least 1.`);
  return value;
}

function policyModeFrom(value: string | undefined): PreplanMode {
  if (!value) return 'filter';
  if (value !== 'filter' && value !== 'reject') throw new GatewayConfigError(`POLICY_MODE must be filter or reject, got "${value}".`);
  return value;
}

/** The subgraphs of this machine's mesh (env `SUBGRAPHS`, default the mesh manifest's). */
export function subgraphEndpointsFromEnv(env: NodeJS.ProcessEnv = process.env): readonly SubgraphEndpoint[] {
  const subgraphs = env.SUBGRAPHS ? parseSubgraphList(env.SUBGRAPHS) : manifestSubgraphs(env);
  checkSubgraphList(subgraphs);
  return subgraphs;
}

function unclassifiedFrom(value: string | undefined): UnclassifiedTreatment {
  if (!value || value === 'deny') return 'deny';
  if (value === 'allow' || isLevel(value)) return value;
  throw new GatewayConfigError(`UNCLASSIFIED_FIELDS must be deny, allow or a level (PUBLIC, INTERNAL, CONFIDENTIAL, RESTRICTED), got "${value}".`);
}

function supergraphSourceFrom(env: NodeJS.ProcessEnv): SupergraphSourceConfig {
  const kind = env.SUPERGRAPH_SOURCE || 'registry';
  const pollMs = positiveInteger(env, 'RELOAD_POLL_MS', 1_000);
  if (kind !== 'file' && env.UNCLASSIFIED_FIELDS) {
    throw new GatewayConfigError('UNCLASSIFIED_FIELDS applies to SUPERGRAPH_SOURCE=file only: our own subgraphs must classify every field.');
  }
  switch (kind) {
    case 'registry':
      return { kind, registryUrl: registryUrlFromEnv(env), pollMs };
    case 'file':
      if (!env.SUPERGRAPH_FILE) throw new GatewayConfigError('SUPERGRAPH_SOURCE=file needs SUPERGRAPH_FILE, the supergraph SDL to serve.');
      return { kind, path: resolve(env.SUPERGRAPH_FILE), pollMs, unclassified: unclassifiedFrom(env.UNCLASSIFIED_FIELDS) };
    case 'subgraphs':
      return { kind, subgraphs: subgraphEndpointsFromEnv(env) };
    default:
      throw new GatewayConfigError(`SUPERGRAPH_SOURCE must be registry, file or subgraphs, got "${kind}".`);
  }
}

function subgraphCallsFrom(env: NodeJS.ProcessEnv): SubgraphCallsConfig {
  const defaults = DEFAULT_SUBGRAPH_CALLS;
  const timeouts: Record<string, number> = {};
  for (const entry of (env.SUBGRAPH_TIMEOUTS ?? '').split(',').map((e) => e.trim()).filter(Boolean)) {
    const [name, value] = entry.split('=');
    const ms = Number(value);
    if (!name || !Number.isInteger(ms) || ms < 1) throw new GatewayConfigError(`SUBGRAPH_TIMEOUTS entry "${entry}" is not name=milliseconds.`);
    timeouts[name] = ms;
  }
  const atLeastOne = (name: string, fallback: number) => {
    const value = positiveInteger(env, name, fallback);
    if (value < 1) throw new GatewayConfigError(`${name} must be at least 1.`);
    return value;
  };
  return {
    timeoutMs: atLeastOne('SUBGRAPH_TIMEOUT_MS', defaults.timeoutMs),
    timeouts,
    idleSocketMs: atLeastOne('SUBGRAPH_IDLE_SOCKET_MS', defaults.idleSocketMs),
    circuitVolume: atLeastOne('CIRCUIT_VOLUME', defaults.circuitVolume),
    coolDownMs: atLeastOne('CIRCUIT_COOL_DOWN_MS', defaults.coolDownMs),
    maxResponseBytes: atLeastOne('MAX_RESPONSE_BYTES', defaults.maxResponseBytes),
  };
}

/** A Redis URL from the environment (null when unset); never echoed in an error, as it may carry a password. */
function redisUrlFrom(env: NodeJS.ProcessEnv, name: 'RATE_LIMIT_REDIS_URL' | 'RESPONSE_CACHE_REDIS_URL'): string | null {
  const value = env[name];
  if (!value) return null;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new GatewayConfigError(`${name} is not a URL.`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new GatewayConfigError(`${name} must be redis:// or rediss://, got "${url.protocol}".`);
  return value;
}

/** Reads a part of the configuration that has its own error class; its mistakes become GatewayConfigErrors. */
function configured<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof SigningKeyError || error instanceof LimitsConfigError || error instanceof IdeSignInConfigError) throw new GatewayConfigError(error.message);
    throw error;
  }
}

function registryApiFrom(env: NodeJS.ProcessEnv): GatewayConfig['registryApi'] {
  const setting = env.REGISTRY_API || 'on';
  if (setting !== 'on' && setting !== 'off') throw new GatewayConfigError(`REGISTRY_API must be on or off, got "${setting.slice(0, 20)}".`);
  if (setting === 'off') return null;
  const roles = (env.REGISTRY_GOVERNANCE_ROLES || 'admin').split(',').map((role) => role.trim()).filter(Boolean);
  if (roles.length === 0) throw new GatewayConfigError('REGISTRY_GOVERNANCE_ROLES must name at least one role.');
  return { governanceRoles: roles };
}

export function gatewayConfigFromEnv(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const dataDir = resolve(env.DATA_DIR || 'data');
  const identity = identityConfigFromEnv(env);
  return defineGatewayConfig({
    port: positiveInteger(env, 'PORT', 4000),
    host: env.HOST || '127.0.0.1',
    supergraph: supergraphSourceFrom(env),
    usageFlushMs: positiveInteger(env, 'USAGE_FLUSH_MS', 10_000),
    exportMaxRows: positiveInteger(env, 'EXPORT_MAX_ROWS', 100_000),
    responseCache: responseCacheFrom(env),
    changeFeed: configured(() => changeFeedSettingsFromEnv(dataDir, env)),
    subscriptions: {
      maxQueuedEvents: atLeastOneFrom(env, 'SUBSCRIPTION_MAX_QUEUED_EVENTS', DEFAULT_SUBSCRIPTION_BOUNDS.maxQueuedEvents),
      maxBufferedBytes: atLeastOneFrom(env, 'SUBSCRIPTION_MAX_BUFFERED_BYTES', DEFAULT_SUBSCRIPTION_BOUNDS.maxBufferedBytes),
    },
    supergraphPath: resolve(env.SUPERGRAPH_PATH || join(dataDir, 'supergraph.graphql')),
    apiSchemaPath: resolve(env.API_SCHEMA_PATH || join(dataDir, 'api-schema.graphql')),
    composeTimeoutMs: positiveInteger(env, 'COMPOSE_TIMEOUT_MS', 60_000),
    bodyLimit: env.BODY_LIMIT || '1mb',
    logLevel: env.LOG_LEVEL || 'info',
    identity,
    ideSignIn: configured(() => ideSignInFromEnv(env, identity)),
    allowedHosts: allowedHostsFromEnv(env),
    subgraphSigningKey: configured(() => signingKeyFromEnv(env)),
    policyMode: policyModeFrom(env.POLICY_MODE),
    auditPath: resolve(env.AUDIT_DIR || join(dataDir, 'audit'), 'gateway.jsonl'),
    registryApi: configured(() => registryApiFrom(env)),
    limits: configured(() => limitsConfigFromEnv(env)),
    subgraphCalls: subgraphCallsFrom(env),
    rateLimitStore: { redisUrl: redisUrlFrom(env, 'RATE_LIMIT_REDIS_URL'), redisPrefix: env.RATE_LIMIT_REDIS_PREFIX || 'mesh-rate' },
    loadShedding: {
      ...DEFAULT_LOAD_SHEDDING,
      maxInFlight: positiveInteger(env, 'MAX_IN_FLIGHT', DEFAULT_LOAD_SHEDDING.maxInFlight),
      ...(env.MAX_HEAP_MB ? { maxHeapBytes: positiveInteger(env, 'MAX_HEAP_MB', 0) * 1024 * 1024 } : {}),
    },
    ...(env.IDE_CACHE_DIR ? { ideCacheDir: resolve(env.IDE_CACHE_DIR) } : {}),
  });
}
