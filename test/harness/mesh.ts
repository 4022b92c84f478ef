/**
 * Boots the real mesh for a test: generated raw files in a temp folder, real DuckDB warehouse
 * files built by each domain's ingestion, the three subgraphs and the gateway on free ports, and
 * real HTTP between them. Tests read the same warehouses (the instances the subgraphs serve from)
 * to compute expected answers independently in SQL, and to count the statements a query causes.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql, type Kysely } from 'kysely';
import { onPostgres, TEST_POSTGRES } from './postgres.js';
import { pino } from 'pino';
import { defineGatewayConfig } from '../../gateway/config.js';
import { DEFAULT_LIMITS } from '../../gateway/request-stages/allowances.js';
import { LOOPBACK_HOSTS } from '../../policy/host-check.js';
import { DEV_SIGNING_KEY, SIGNATURE_HEADER, signSubgraphRequest } from '../../policy/subgraph-signature.js';
import { DEFAULT_SUBGRAPH_CALLS } from '../../gateway/subgraph-calls/subgraph-calls.js';
import { DEFAULT_LOAD_SHEDDING } from '../../gateway/request-stages/load-shedding.js';
import { identityConfigFromEnv, mintDevToken, type DevTokenClaims } from '../../policy/identity-config.js';
import type { IdentityConfig } from '../../policy/identity.js';
import { DEV_HASH_KEY } from '../../policy/masking.js';
import { startGateway, type RunningGateway } from '../../gateway/server.js';
import { openFileAuditSink, type AuditSink, type ChainedRecord } from '../../policy/audit.js';
import type { GatewayConfig, SubgraphEndpoint } from '../../gateway/config.js';
import { openRegistry } from '../../gateway/registry/open.js';
import { publishRunningSubgraphs } from '../../gateway/registry/publish.js';
import type { SupergraphSourceConfig } from '../../gateway/supergraph/supergraph-source.js';
import type { ResponseCacheConfig } from '../../gateway/cache/response-cache.js';
import { domains as meshDomains } from '../../subgraphs/domains.js';
import type { Domain } from '../../subgraphs/kit/domain.js';
import { startSubgraphServer, type RunningServer } from '../../subgraphs/kit/subgraph-server.js';
import { ensureWarehouse, qualityHistoryAt, type WarehouseBuild } from '../../subgraphs/kit/warehouse/build.js';
import { startChangePublisher } from '../../subgraphs/kit/events/publisher.js';
import { loadFactsAt } from '../../subgraphs/kit/freshness.js';
import { profilesAt } from '../../subgraphs/kit/profiles.js';
import { openWarehouse } from '../../subgraphs/kit/warehouse/open.js';
import { followInputs, gatewayInputReader, inputsOf, keptKeys, type InputFollower } from '../../subgraphs/kit/events/inputs.js';
import { openChangeFeed } from '../../policy/events/feed-from-env.js';
import type { Warehouse } from '../../subgraphs/kit/warehouse/warehouse.js';
import { generateSourceData, type RawManifest } from '../../subgraphs/synthetic-sources/generate.js';

export type MeshDomain = 'customers' | 'products' | 'finance';

export interface GraphQLResponse<T = Record<string, any>> {
  data?: T | null;
  errors?: { message: string; path?: (string | number)[]; extensions?: Record<string, any> }[];
  extensions?: Record<string, any>;
}

export interface HttpAnswer<T> {
  status: number;
  headers: Headers;
  body: GraphQLResponse<T>;
}

export interface TestMesh {
  readonly dataDir: string;
  /** Each service's audit sink (gateway and subgraphs), writing `<dataDir>/audit/<service>.jsonl`. */
  readonly audits: Record<string, AuditSink>;
  auditPath(service: string): string;
  readonly manifest: RawManifest;
  readonly gateway: RunningGateway;
  readonly subgraphs: Record<string, RunningServer>;
  readonly warehouses: Record<string, Warehouse<any>>;
  readonly supergraphPath: string;
  readonly apiSchemaPath: string;
  /** The registry the gateway serves from (a directory in `dataDir`). */
  readonly registryUrl: string;
  /** POSTs a GraphQL request to the gateway, as a steward unless `headers.authorization` says otherwise. */
  query<T = Record<string, any>>(query: string, variables?: Record<string, unknown>, headers?: Record<string, string>): Promise<HttpAnswer<T>>;
  /** Rows of a SQL query run directly on a domain's warehouse (the test's own, independent SQL). */
  sql<R = Record<string, any>>(domain: string, text: string, parameters?: readonly unknown[]): Promise<R[]>;
  /** The statements each warehouse ran while `run` was in flight. */
  statementsDuring(run: () => Promise<unknown>): Promise<Record<MeshDomain, string[]>>;
  /** Stops one subgraph's server (its warehouse stays open). */
  stopSubgraph(name: string): Promise<void>;
  /** Merges what was delivered to a domain since its serving version and serves the new version, as a pipeline run does (undefined: nothing new). */
  load(domain: string): Promise<WarehouseBuild | undefined>;
  /** Publishes a domain's change events its serving version holds (the test mesh runs no publisher of its own). */
  publish(domain: string): Promise<void>;
  stop(): Promise<void>;
}

export interface TestMeshOptions {
  /** Data set scale (default 0.02: 200 customers, 20 products, 2,000 orders). */
  readonly scale?: number;
  readonly seed?: number;
  /** The warehouses' adapter (default DuckDB files; PostgreSQL: a database of its own, dropped at stop). */
  readonly warehouse?: 'duckdb' | 'postgres';
  /** The domains to serve (default: the three of `subgraphs/domains.ts`), e.g. one with a rule changed. */
  readonly domains?: readonly Domain<any, any>[];
  /** The issuers every part trusts (default: the development issuer, as `npm start`). */
  readonly identity?: IdentityConfig;
  /** How long the start waits for the domains' inputs to be read whole and merged (default 2 minutes). */
  readonly inputsTimeoutMs?: number;
  /**
   * The token a domain reads its inputs with (default: a steward's of the development issuer). With
   * an `identity` of other issuers and none given, the inputs are not read (lifetime values stay null).
   */
  readonly inputsToken?: (domain: string) => string | Promise<string>;
}


/**
 * A gateway configuration for tests: a free port, silent, files under `dataDir` (suffixed by
 * `name` when several gateways share a folder), the development identity, filter mode.
 */
export function testGatewayConfig(options: {
  readonly dataDir: string;
  readonly supergraph: SupergraphSourceConfig;
  readonly name?: string;
  readonly overrides?: Partial<GatewayConfig>;
}): GatewayConfig {
  const suffix = options.name ? `-${options.name}` : '';
  return defineGatewayConfig({
    port: 0,
    host: '127.0.0.1',
    supergraph: options.supergraph,
    usageFlushMs: 200,
    exportMaxRows: 5_000,
    supergraphPath: join(options.dataDir, `supergraph${suffix}.graphql`),
    apiSchemaPath: join(options.dataDir, `api-schema${suffix}.graphql`),
    composeTimeoutMs: 20_000,
    bodyLimit: '1mb',
    logLevel: 'silent',
    identity: testIdentity,
    allowedHosts: LOOPBACK_HOSTS,
    subgraphSigningKey: DEV_SIGNING_KEY,
    policyMode: 'filter',
    auditPath: join(options.dataDir, 'audit', `gateway${suffix}.jsonl`),
    limits: DEFAULT_LIMITS,
    subgraphCalls: DEFAULT_SUBGRAPH_CALLS,
    loadShedding: DEFAULT_LOAD_SHEDDING,
    rateLimitStore: { redisUrl: null, redisPrefix: 'mesh-rate' },
    ...options.overrides,
  });
}

/**
 * A gateway on the mesh's registry with the response cache on, in memory (or as `cache` says): the
 * registry and the subgraphs' versions polled every `pollMs` (default 100).
 */
export function cachedGatewayConfig(
  mesh: Pick<TestMesh, 'dataDir' | 'registryUrl'>,
  options: { readonly name: string; readonly pollMs?: number; readonly cache?: Partial<ResponseCacheConfig> },
): GatewayConfig {
  const pollMs = options.pollMs ?? 100;
  return testGatewayConfig({
    dataDir: mesh.dataDir,
    name: options.name,
    supergraph: { kind: 'registry', registryUrl: mesh.registryUrl, pollMs },
    overrides: { responseCache: { store: 'memory', ttlSeconds: 300, maxBytes: 16 * 1024 * 1024, versionsPollMs: pollMs, ...options.cache } },
  });
}

/** Publishes each running subgraph's SDL to a registry (what a domain team's deploy does). */
export async function publishRunning(registryUrl: string, subgraphs: readonly SubgraphEndpoint[], publishedBy = 'test'): Promise<void> {
  const registry = await openRegistry(registryUrl);
  try {
    for (const { name, report } of await publishRunningSubgraphs(registry, subgraphs, { publishedBy })) {
      if (!report.accepted) throw new Error(`${name} was refused: ${JSON.stringify(report.findings.filter((f) => f.severity === 'error'))}`);
    }
  } finally {
    await registry.close();
  }
}

/** A gateway with its own audit sink (at `config.auditPath`), closed when the gateway stops. */
export async function startTestGateway(
  config: GatewayConfig,
  options: { enforcePolicy?: boolean; enforceLimits?: boolean; signSubgraphCalls?: boolean } = {},
): Promise<RunningGateway & { audit: AuditSink }> {
  const audit = await openFileAuditSink({ path: config.auditPath });
  const gateway = await startGateway(config, testLog, { audit, ...options });
  return {
    ...gateway,
    audit,
    async stop() {
      await gateway.stop();
      await audit.close();
    },
  };
}

/** A port nothing listens on: bound once by the OS, then released. */
export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The development issuer, anonymous requests allowed: what `npm start` uses. */
export const testIdentity = identityConfigFromEnv({});

/** A steward with a declared purpose: may read every field and every row. */
export const STEWARD: DevTokenClaims = { subject: 'test-steward', roles: ['steward'], purpose: 'customer-support' };

/** A development token with exactly these claims (a steward's by default). */
export function tokenFor(claims: DevTokenClaims = STEWARD): string {
  return mintDevToken(claims);
}

/** Every log line the mesh of a test wrote (tests check that no protected value reaches a log). */
export const logLines: string[] = [];

export const testLog = pino({ level: process.env.TEST_LOG_LEVEL ?? 'info' }, { write: (line: string) => void logLines.push(line) });

export async function postGraphQL<T>(
  url: string,
  query: string,
  variables?: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<HttpAnswer<T>> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as GraphQLResponse<T> };
}

/**
 * POSTs a GraphQL request straight to a subgraph, signed with the development signing key as the
 * gateway signs it: what a caller holding the key (the gateway, a platform tool) can ask.
 */
export async function postSubgraph<T>(
  url: string,
  query: string,
  variables?: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<HttpAnswer<T>> {
  // postGraphQL sends exactly this body: the signature covers it.
  const body = JSON.stringify({ query, variables });
  return postGraphQL<T>(url, query, variables, { ...headers, [SIGNATURE_HEADER]: signSubgraphRequest({ key: DEV_SIGNING_KEY, body, authorization: headers.authorization }) });
}

export async function startTestMesh(options: TestMeshOptions = {}): Promise<TestMesh> {
  const domains = options.domains ?? meshDomains;
  const dataDir = await mkdtemp(join(tmpdir(), 'mesh-test-'));
  const rawDir = join(dataDir, 'raw');
  const manifest = await generateSourceData({ rawDir, scale: options.scale ?? 0.02, ...(options.seed ? { seed: options.seed } : {}) });
  const warehouses: Record<string, Warehouse<any>> = {};
  const subgraphs: Record<string, RunningServer> = {};
  const auditPath = (service: string) => join(dataDir, 'audit', `${service}.jsonl`);
  const audits: Record<string, AuditSink> = {};
  const urlOf: Record<string, string> = {};
  // Each PostgreSQL mesh has a database of its own, so that runs never collide.
  const database = options.warehouse === 'postgres' ? `mesh_test_${process.pid}_${randomUUID().slice(0, 8)}` : null;
  if (database) await onPostgres(`CREATE DATABASE ${database}`);
  for (const domain of domains) {
    audits[domain.name] = await openFileAuditSink({ path: auditPath(domain.name) });
    const url = database
      ? `${TEST_POSTGRES}/${database}?schema=${domain.name}`
      : `duckdb:${join(dataDir, 'warehouses', `${domain.name}.duckdb`)}`;
    urlOf[domain.name] = url;
    await ensureWarehouse({ domain, url, rawDir: join(rawDir, domain.name), sourceFingerprint: manifest.fingerprint, sourceExtractedAt: manifest.extractedAt });
    warehouses[domain.name] = openWarehouse(url);
    const qualityHistory = await qualityHistoryAt(url);
    const loadFacts = await loadFactsAt(url, domain);
    subgraphs[domain.name] = await startSubgraphServer({
      qualityHistory,
      loadFacts,
      profiles: await profilesAt(url),
      domain,
      warehouse: warehouses[domain.name]!,
      log: testLog,
      identity: options.identity ?? testIdentity,
      hashKey: DEV_HASH_KEY,
      audit: audits[domain.name]!,
      port: 0,
    });
  }
  // The production path: each subgraph published to the registry, the gateway serving what it composed.
  const registryUrl = join(dataDir, 'registry');
  await publishRunning(registryUrl, domains.map(({ name }) => ({ name, url: subgraphs[name]!.url })));
  // The gateway follows the embedded change feed in the mesh's folder (`<dataDir>/events`): subscriptions are served.
  const config = testGatewayConfig({ dataDir, supergraph: { kind: 'registry', registryUrl, pollMs: 100 }, overrides: { changeFeed: { dataDir, natsUrl: null }, ...(options.identity ? { identity: options.identity } : {}) } });
  const { supergraphPath, apiSchemaPath } = config;
  const gateway = await startTestGateway(config);
  audits.gateway = gateway.audit;
  await gateway.ready;
  const load = async (name: string): Promise<WarehouseBuild | undefined> => {
    const domain = domains.find((candidate) => candidate.name === name)!;
    const url = urlOf[name]!;
    const build = await ensureWarehouse({ domain, url, rawDir: join(rawDir, name), sourceFingerprint: manifest.fingerprint, sourceExtractedAt: manifest.extractedAt });
    if (!build.built) {
      if (build.loadError !== undefined || build.rejectedKeptAt !== undefined) throw new Error(`the ${name} load failed: ${build.loadError ?? `rejected, kept at ${build.rejectedKeptAt}`}`);
      return undefined;
    }
    const next = openWarehouse(url);
    await subgraphs[name]!.swap({ warehouse: next, qualityHistory: await qualityHistoryAt(url), loadFacts: await loadFactsAt(url, domain), profiles: await profilesAt(url) });
    warehouses[name] = next;
    return build;
  };
  // A domain fed by another's product (customers' lifetime values, from finance.orders) reads it
  // through this gateway and follows its change feed, as its subgraph process does under npm start.
  const followers: InputFollower[] = [];
  for (const domain of domains) {
    if (!inputsOf(domain).every(({ input }) => domains.some(({ name }) => input.product.startsWith(`${name}.`))) || inputsOf(domain).length === 0) continue;
    if (options.identity && !options.inputsToken) continue; // no token the mesh's issuers trust
    const follower = followInputs({
      domain,
      rawDir: join(rawDir, domain.name),
      openFeed: () => openChangeFeed({ dataDir, natsUrl: null }, DEV_SIGNING_KEY, `inputs-${domain.name}`),
      reader: gatewayInputReader({ url: gateway.url, token: async () => (options.inputsToken ? options.inputsToken(domain.name) : tokenFor({ subject: `${domain.name}-inputs`, roles: ['steward'], regions: [], client: `${domain.name}-inputs` })) }),
      load: async () => void (await load(domain.name)),
      servingKeys: (input) => keptKeys(warehouses[domain.name]!.db as Kysely<any>, domain, input),
      log: testLog,
    });
    subgraphs[domain.name]!.attachInputs(() => follower.status());
    followers.push(follower);
    await follower.caughtUp(options.inputsTimeoutMs);
  }

  const stopped = new Set<string>();
  const stewardToken = tokenFor();
  return {
    dataDir,
    audits,
    auditPath,
    manifest,
    gateway,
    subgraphs,
    warehouses,
    supergraphPath,
    apiSchemaPath,
    registryUrl,
    query: (query, variables, headers) =>
      postGraphQL(gateway.url, query, variables, { authorization: `Bearer ${stewardToken}`, ...headers }),
    async sql(domain, text, parameters = []) {
      const db = warehouses[domain]!.db as Kysely<unknown>;
      const strings = text.split('?');
      const template = Object.assign(strings, { raw: strings }) as unknown as TemplateStringsArray;
      const result = await sql(template, ...parameters).execute(db);
      return result.rows as any[];
    },
    async statementsDuring(run) {
      const seen = Object.fromEntries(domains.map(({ name }) => [name, [] as string[]])) as Record<MeshDomain, string[]>;
      const unsubscribes = domains.map(({ name }) =>
        warehouses[name]!.onStatement((event) => seen[name as MeshDomain].push(event.sql)),
      );
      try {
        await run();
      } finally {
        unsubscribes.forEach((unsubscribe) => unsubscribe());
      }
      return seen;
    },
    async stopSubgraph(name) {
      stopped.add(name);
      await subgraphs[name]!.stop();
    },
    load,
    async publish(name) {
      const domain = domains.find((candidate) => candidate.name === name)!;
      const publisher = startChangePublisher({ openFeed: () => openChangeFeed({ dataDir, natsUrl: null }, DEV_SIGNING_KEY), domain, url: urlOf[name]!, signingKey: DEV_SIGNING_KEY, log: testLog });
      await publisher.publish();
      await publisher.stop();
    },
    async stop() {
      for (const follower of followers) await follower.stop();
      await gateway.stop();
      for (const [name, server] of Object.entries(subgraphs)) if (!stopped.has(name)) await server.stop();
      for (const domain of domains) await audits[domain.name]!.close();
      for (const warehouse of Object.values(warehouses)) await warehouse.close();
      if (database) await onPostgres(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts a subgraph of `domain` on an in-memory warehouse, for a domain expected to be refused at
 * start: resolves with what the start threw (or with the server, stopped, when it did start).
 */
export async function startupFailureOf(domain: Domain<any, any>, options: { hashKey?: string } = {}): Promise<unknown> {
  const warehouse = openWarehouse('duckdb::memory:', { readOnly: false });
  const audit = await openFileAuditSink({ path: join(tmpdir(), `startup-${process.pid}-${randomUUID().slice(0, 8)}.jsonl`) });
  try {
    const server = await startSubgraphServer({ domain, warehouse, log: testLog, identity: testIdentity, hashKey: options.hashKey ?? DEV_HASH_KEY, audit, port: 0 });
    await server.stop();
    return server;
  } catch (error) {
    return error;
  } finally {
    await audit.close();
    await warehouse.close();
  }
}

/** The records of an audit log file, in order (none when it is not written yet). */
export async function readAuditRecords(path: string): Promise<ChainedRecord[]> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as ChainedRecord);
}

/**
 * POSTs a CSV export over node:http, which (unlike fetch) hands over the response's trailers and
 * says whether the transfer was cut before its end.
 */
export async function exportWithTrailers(
  url: string,
  body: Record<string, unknown>,
  authorization: string,
): Promise<{ status: number; headers: IncomingHttpHeaders; text: string; trailers: Record<string, string | undefined>; aborted: boolean }> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), authorization } }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      const done = (aborted: boolean) => resolve({ status: response.statusCode ?? 0, headers: response.headers, text, trailers: { ...response.trailers }, aborted });
      response.once('end', () => done(false));
      response.once('aborted', () => done(true));
      response.once('error', () => done(true));
    });
    request.once('error', reject);
    request.end(payload);
  });
}
