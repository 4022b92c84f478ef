/**
 * The subgraph bootstrap: every domain is served the same way, by this one factory.
 *
 * Routes: `/graphql` (POST and GET, Federation 2 subgraph), `/catalog` (POST, signed callers only:
 * the ODPS and ODCS documents of the domain's data products, from which the gateway composes the
 * federated catalog and the registry keeps each published version's), `/versions` (POST, signed
 * callers only: each product's serving version, for the gateway's response cache), `/health/live`,
 * `/health/ready` (the warehouse answers). Each GraphQL request gets a fresh repository, so DataLoader batches and caches
 * only within that request.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginInlineTraceDisabled,
  ApolloServerPluginLandingPageDisabled,
} from '@apollo/server/plugin/disabled';
import { expressMiddleware } from '@as-integrations/express5';
import express from 'express';
import { Kind, type DocumentNode } from 'graphql';
import { sql } from 'kysely';
import { Counter, Gauge } from 'prom-client';
import type { Logger } from 'pino';
import { RequestPolicy } from '../../policy/decide.js';
import { useErrorMasking } from '../../policy/error-masking.js';
import { governanceRules } from '../../policy/governance.rules.js';
import { checkHarmonization, type HarmonizationViolation, type ProductFacts } from '../../policy/harmonization.rules.js';
import { allowMethods, assignRequestId, authenticate, httpErrorHandler, notFound } from '../../policy/http.js';
import { LOOPBACK_HOSTS, refuseForeignHosts } from '../../policy/host-check.js';
import { useRepresentationCheck } from './representations.js';
import { DEV_SIGNING_KEY, keepRawBody, requireGatewaySignature } from '../../policy/subgraph-signature.js';
import { createTokenVerifier, type IdentityConfig } from '../../policy/identity.js';
import { readPolicy, type PolicyIndex, type PolicyViolation } from '../../policy/policy-index.js';
import type { Principal } from '../../policy/principal.js';
import type { GovernanceRules, Level } from '../../policy/rules.js';
import { AuditCollector, type AuditSink } from '../../policy/audit.js';
import { useSubgraphAudit } from '../../policy/audit-plugins.js';
import { createMetrics, usePolicyMetrics, useRequestMetrics } from '../../policy/metrics.js';
import type { Domain, DomainContext } from './domain.js';
import { enforceFieldPolicy, keyFieldsOf } from './field-policy.js';
import type { RequestAccess } from './filters.js';
import { rowPolicyValuesOf, withoutFullGrant } from './row-values.js';
import { RequestLoaders } from './loaders.js';
import { buildDomainSchema, subgraphTypeDefs } from './domain-schema.js';
import { domainProductDocuments, warehouseServerOf, type ProductDocuments } from './product-documents.js';
import { freshnessOf, slaSecondsOf, type LoadFacts } from './freshness.js';
import { behindOf, inputSettled, type InputStatus } from './events/inputs.js';
import { servingLineage, type LineageEvent } from './lineage.js';
import { startQualityMonitor, type ProductRun } from './quality-monitor.js';
import type { QualityRun } from './quality-store.js';
import { dialectAdapter, warehouseFailureOf } from './warehouse/dialects.js';
import { pipelinesOf } from './pipelines/plan.js';
import { pipelineMetrics } from './pipelines/run-metrics.js';
import { PIPELINE_ERROR_STATUS, PipelineError, type RunEvent } from './pipelines/runner.js';
import type { PipelineRunRecord } from './pipelines/run-log.js';
import type { Anomaly } from './pipelines/anomalies.js';
import type { Warehouse } from './warehouse/warehouse.js';
import { codedError } from '../../policy/errors.js';
import { discoveryFindings, type DiscoveryFinding, type ProductProfile } from '../../policy/discovery.js';

export interface SubgraphServerOptions {
  // Any domain with its own warehouse: the two are paired by the caller.
  readonly domain: Domain<any, any>;
  readonly warehouse: Warehouse<any>;
  readonly log: Logger;
  /** How tokens are verified: this subgraph trusts no one, not even the gateway. */
  readonly identity: IdentityConfig;
  /** The global governance rules (default: `policy/governance.rules.ts`). */
  readonly rules?: GovernanceRules;
  /** The HMAC key of the HASH mask (see `hashKeyFromEnv`). */
  readonly hashKey: string;
  /** Where the audit records go (one per operation); the caller closes it after `stop()`. */
  readonly audit: AuditSink;
  /** Operations with values at or above this level are audited durably first (default RESTRICTED). */
  readonly strictAuditLevel?: Level;
  /**
   * Default `true`. `false` serves without the policy layer (no field decisions, masks, row
   * policies or audit) so that benchmarks can measure its cost; no configuration turns it off.
   */
  readonly enforcePolicy?: boolean;
  /** Port to listen on; 0 picks a free one. */
  readonly port: number;
  /** Interface to bind (default `127.0.0.1`; `0.0.0.0` in containers). */
  readonly host?: string;
  /** Largest accepted request body (default `1mb`). */
  readonly bodyLimit?: string;
  /**
   * The key the gateway signs its calls with (see policy/subgraph-signature.ts; default the
   * development key) and whether unsigned callers may query ordinary fields (default false).
   */
  readonly signature?: { readonly key: string; readonly previousKey?: string | undefined; readonly directAccess: boolean };
  /**
   * Default `true`. `false` skips the signature check altogether, so that benchmarks can measure
   * its cost; no configuration turns it off.
   */
  readonly verifySignatures?: boolean;
  /** Host names this server answers for (DNS rebinding protection; see policy/host-check.ts); null: any. Default: the loopback names. */
  readonly allowedHosts?: readonly string[] | null;
  /** The data quality runs stored so far (`qualityHistoryAt(url)`: the serving version's and a rejected load's; default none). */
  readonly qualityHistory?: readonly QualityRun[];
  /** Runs the quality checks on the serving warehouse every this many ms (default 0: only at load). */
  readonly qualityIntervalMs?: number;
  /** When the serving version was loaded and its products' newest records (`loadFactsAt(url, domain)`; default: unknown). */
  readonly loadFacts?: LoadFacts;
  /** The clock freshness is measured with (tests move it). */
  readonly now?: () => Date;
  /** Given the serving step's OpenLineage events at start (table column -> GraphQL field, with masking). */
  readonly onLineage?: (events: readonly LineageEvent[]) => void;
  /** What this process's load did before serving: `swapped` in, `rejected` by its checks, or `failed`; none when the warehouse was current. */
  readonly loadOutcome?: 'swapped' | 'rejected' | 'failed';
  /**
   * The column profiles of the serving version's load (`profilesAt(url)`; default none): judged
   * against the policy at start (a refused start on an error finding), and served with each
   * product's documents at `/catalog`.
   */
  readonly profiles?: readonly ProductProfile[];
}

/** A version of the domain's warehouse to serve, with what its load recorded. */
export interface ServingVersion {
  readonly warehouse: Warehouse<any>;
  readonly qualityHistory?: readonly QualityRun[];
  readonly loadFacts?: LoadFacts;
  readonly profiles?: readonly ProductProfile[];
}

export interface RunningServer {
  /** The GraphQL endpoint, e.g. `http://127.0.0.1:4001/graphql`. */
  readonly url: string;
  readonly port: number;
  /**
   * Serves a new version from now on (a pipeline run built it): requests that started keep the one
   * they started on, to their end; the replaced warehouse is closed once none can still read it
   * (`RETIRED_CLOSE_MS`). Refused, the serving version staying, when the new profiles break the
   * policy (as at start).
   */
  swap(next: ServingVersion): Promise<void>;
  /** Counts a pipeline run's event in /metrics (pipelines/run-metrics.ts). */
  recordRun(event: RunEvent): void;
  /** Counts the anomalies a run of a pipeline showed, in /metrics. */
  recordAnomalies(pipeline: string, found: readonly Anomaly[]): void;
  /** The domain's pipelines, for `/catalog` (each product's schedule, next run, pause, latest runs) and `/pipelines` (the operators' command). */
  attachPipelines(control: PipelineControl): void;
  /** Where the domain's inputs are (events/inputs.ts), for each product's freshness in `/catalog`. */
  attachInputs(status: () => readonly InputStatus[]): void;
  /** The warehouse served now (the caller closes it after `stop`). */
  serving(): Warehouse<any>;
  stop(): Promise<void>;
}

/** A product's pipeline, as the domain's `/catalog` reports it. */
export interface PipelineStatus {
  readonly everySeconds: number | null;
  readonly nextRunAt: string | null;
  readonly paused: boolean;
  readonly runs: readonly PipelineRunRecord[];
}

/** What the subgraph's routes may ask of its pipelines' runner. */
export interface PipelineControl {
  status(productId: string): Promise<PipelineStatus | null>;
  /** A run now; `acceptAnomalies`: its anomalies are warnings, and its measures a new baseline. */
  run(pipeline: string, options?: { readonly acceptAnomalies?: boolean }): Promise<string>;
  /** A backfill: everything again, or with `from` and `to` (days) only that range of the product's time column. */
  backfill(pipeline: string, options?: { readonly from?: unknown; readonly to?: unknown; readonly acceptAnomalies?: boolean }): Promise<string>;
  pause(pipeline: string): Promise<void>;
  resume(pipeline: string): Promise<void>;
}

/** A replaced warehouse is closed this long after its replacement: longer than any request may take. */
const RETIRED_CLOSE_MS = 60_000;

const READY_TIMEOUT_MS = 2_000;

async function warehouseAnswers(warehouse: Warehouse<any>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), READY_TIMEOUT_MS);
  });
  const probe = sql`select 1`
    .execute(warehouse.db)
    .then(() => true)
    .catch(() => false);
  try {
    return await Promise.race([probe, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Every row of every type: only for `enforcePolicy: false`. */
const NO_POLICY: RequestAccess = {
  rows: () => ({ kind: 'all' }),
  field: (typeName, fieldName) => ({
    allowed: true,
    policy: { coordinate: `${typeName}.${fieldName}`, level: 'PUBLIC', tags: [], requirement: { authenticated: false }, rule: 'policy off', type: { name: 'String', nonNull: false }, mask: null, shadow: { requirement: null, mask: null } },
    mask: null,
    shadow: { wouldDeny: null, wouldMask: null },
  }),
};

/** A subgraph that may not start: what is wrong, one line each. */
export class StartRefusedError extends Error {
  constructor(
    readonly subgraph: string,
    what: string,
    lines: readonly string[],
  ) {
    super(`The ${subgraph} subgraph${what}:\n${lines.map((line) => `- ${line}`).join('\n')}`);
  }
}

export class PolicyViolationsError extends StartRefusedError {
  override name = 'PolicyViolationsError';
  constructor(
    subgraph: string,
    readonly violations: readonly PolicyViolation[],
  ) {
    super(subgraph, ' breaks the governance rules', violations.map((v) => v.message));
  }
}

export class UndeclaredRowPolicyError extends Error {
  override name = 'UndeclaredRowPolicyError';
}

/**
 * A type with `@rowPolicy` must be served by a data product declaration (see data-product.ts),
 * which applies the policy on every path; served any other way, a path that forgets it would leak
 * every row. The subgraph refuses to start, naming the types.
 */
function assertRowPoliciesDeclared(domain: Domain<any, any>, typeDefs: DocumentNode, policyIndex: PolicyIndex): void {
  const declared = new Set(domain.dataProducts.map((product) => product.spec.type));
  const undeclared = typeDefs.definitions
    .filter((definition) => definition.kind === Kind.OBJECT_TYPE_DEFINITION || definition.kind === Kind.OBJECT_TYPE_EXTENSION)
    .map((definition) => (definition as { name: { value: string } }).name.value)
    .filter((typeName) => policyIndex.rowPolicy(typeName) !== null && !declared.has(typeName));
  if (undeclared.length > 0) {
    throw new UndeclaredRowPolicyError(
      `The ${domain.name} subgraph serves ${[...new Set(undeclared)].join(', ')} with @rowPolicy but declares no data product for it (defineDataProduct, in the domain's dataProducts): its rows would be filtered only where the code remembers to.`,
    );
  }
}

export class HarmonizationError extends StartRefusedError {
  override name = 'HarmonizationError';
  constructor(
    subgraph: string,
    readonly violations: readonly HarmonizationViolation[],
  ) {
    super(subgraph, "'s data products break the harmonization rules", violations.map((v) => `[${v.rule}] ${v.message}`));
  }
}

/** The serving data shows what the policy does not say (policy/discovery.ts): personal data behind a field not tagged pii, a HASH mask on few values. */
export class DiscoveryError extends StartRefusedError {
  override name = 'DiscoveryError';
  constructor(
    subgraph: string,
    readonly findings: readonly DiscoveryFinding[],
  ) {
    super(subgraph, "'s data breaks the governance rules (sensitive-data discovery)", findings.map((f) => `[${f.code}] ${f.message}`));
  }
}

/**
 * Says in a response which data products (and which version of each, loaded when) the answer was
 * computed from, when asked (`x-include-data-products: true`): `extensions.dataProducts`, which the
 * gateway gathers across subgraphs.
 */
function useProductVersions(domain: Domain<any, any>, loadedAt: () => string | null): ApolloServerPlugin<DomainContext<unknown>> {
  const versions = new Map(domain.dataProducts.map(({ spec }) => [spec.name, spec.metadata.version]));
  return {
    async requestDidStart({ request }) {
      // Only when asked (the gateway asks for a caller who asked): answers stay as they were otherwise.
      if (request.http?.headers.get('x-include-data-products') !== 'true') return;
      return {
        async willSendResponse({ contextValue, response }) {
          const read = contextValue.loaders?.productsRead;
          if (!read || read.size === 0 || response.body.kind !== 'single') return;
          response.body.singleResult.extensions = {
            ...response.body.singleResult.extensions,
            dataProducts: [...read].sort().map((name) => ({ id: `${domain.name}.${name}`, version: versions.get(name) ?? null, loadedAt: loadedAt() })),
          };
        },
      };
    },
  };
}

/** What the harmonization rules check of each of a domain's data products. */
export function productFactsOf(domain: Domain<any, any>, typeDefs: DocumentNode = subgraphTypeDefs(domain)): ProductFacts[] {
  return domain.dataProducts.map((product) => ({
    domain: domain.name,
    name: product.spec.name,
    fields: typeDefs.definitions.flatMap((definition) =>
      (definition.kind === Kind.OBJECT_TYPE_DEFINITION || definition.kind === Kind.OBJECT_TYPE_EXTENSION) && definition.name.value === product.spec.type
        ? (definition.fields ?? []).map((field) => field.name.value)
        : [],
    ),
    metadata: product.spec.metadata,
  }));
}

export async function startSubgraphServer(options: SubgraphServerOptions): Promise<RunningServer> {
  const { domain, log } = options;
  let warehouse: Warehouse<any> = options.warehouse;
  const typeDefs = subgraphTypeDefs(domain);
  const policyIndex = readPolicy(typeDefs, options.rules ?? governanceRules);
  if (policyIndex.violations.length > 0) throw new PolicyViolationsError(domain.name, policyIndex.violations);
  assertRowPoliciesDeclared(domain, typeDefs, policyIndex);
  const harmonization = checkHarmonization(productFactsOf(domain, typeDefs));
  if (harmonization.length > 0) throw new HarmonizationError(domain.name, harmonization);
  const rules = options.rules ?? governanceRules;
  /** The profiles of a version, judged against the policy: an error finding refuses it (at start, or a swap). */
  const judgedProfiles = (list: readonly ProductProfile[] | undefined) => {
    const byProduct = new Map((list ?? []).map((profile) => [profile.product, profile]));
    const discovery = discoveryFindings(
      domain.dataProducts.flatMap(({ spec }) => {
        const profile = byProduct.get(`${domain.name}.${spec.name}`);
        return profile ? [{ typeName: spec.type, profile }] : [];
      }),
      policyIndex,
      rules,
    );
    for (const found of discovery.filter((f) => f.severity === 'warning')) log.warn({ code: found.code, coordinate: found.coordinate }, found.message);
    if (discovery.some((f) => f.severity === 'error')) throw new DiscoveryError(domain.name, discovery.filter((f) => f.severity === 'error'));
    return byProduct;
  };
  let profiles = judgedProfiles(options.profiles);
  const verifier = createTokenVerifier(options.identity);

  const metrics = createMetrics(domain.name);
  metrics.watchAuditSink(options.audit);
  metrics.watchPool(() => warehouse.poolStats());
  const observe = (served: Warehouse<any>) => served.onStatement((event) => metrics.warehouseQuerySeconds.observe({ outcome: event.error ? 'error' : 'ok' }, event.durationMs / 1000));
  let unobserve = observe(warehouse);

  const app = express();
  app.disable('x-powered-by');
  const httpServer = createServer(app);
  // Set on purpose, above the gateway's idle-socket time (4 s): the gateway drops an idle
  // connection before the subgraph would close it under a request.
  httpServer.keepAliveTimeout = 10_000;
  httpServer.headersTimeout = 11_000;
  const masking = useErrorMasking({
    log,
    service: domain.name,
    classify: (error) => {
      const failure = warehouseFailureOf(error);
      if (failure === 'timeout') return codedError('WAREHOUSE_TIMEOUT', `The ${domain.name} warehouse did not answer in time; retry, or ask for less.`);
      if (failure === 'unavailable') return codedError('WAREHOUSE_UNAVAILABLE', `The ${domain.name} warehouse is unavailable; retry shortly.`);
      return null;
    },
  });
  const schema = buildDomainSchema(domain, typeDefs);
  const dialectSql = dialectAdapter(warehouse.dialect).sql;
  const enforce = options.enforcePolicy ?? true;
  const keyFields = keyFieldsOf(typeDefs);
  if (enforce) enforceFieldPolicy(schema, keyFields, options.strictAuditLevel ?? 'RESTRICTED');

  let facts: LoadFacts = options.loadFacts ?? { loadedAt: null, newest: {} };
  const apollo = new ApolloServer<DomainContext<unknown>>({
    schema,
    formatError: masking.formatError,
    plugins: [
      masking.plugin,
      useRepresentationCheck(keyFields),
      useRequestMetrics(metrics),
      useProductVersions(domain, () => facts.loadedAt),
      ...(enforce ? [useSubgraphAudit({ sink: options.audit, service: domain.name, log }), usePolicyMetrics(metrics)] : []),
      ApolloServerPluginDrainHttpServer({ httpServer }),
      ApolloServerPluginLandingPageDisabled(),
      // No usage reporting here; and a direct caller must not get per-field timing traces.
      ApolloServerPluginInlineTraceDisabled(),
      // No cache hints: the gateway's response cache decides what is kept (by policy class and data
      // version); without them no resolver is wrapped to collect hints.
      ApolloServerPluginCacheControlDisabled(),
    ],
    includeStacktraceInErrorResponses: false,
    // The process owns shutdown (stop, then flush the audit sink); Apollo must not race it.
    stopOnTerminationSignals: false,
    introspection: true,
    logger: log,
  });
  await apollo.start();

  app.use(assignRequestId);
  app.use(refuseForeignHosts(options.allowedHosts === undefined ? LOOPBACK_HOSTS : options.allowedHosts));
  app.get('/health/live', (_req, res) => {
    res.json({ status: 'live', service: domain.name });
  });
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  app.get('/health/ready', async (_req, res) => {
    const ready = await warehouseAnswers(warehouse);
    res.status(ready ? 200 : 503).json({
      status: ready ? 'ready' : 'unavailable',
      service: domain.name,
      warehouse: { dialect: warehouse.dialect, reachable: ready },
      audit: { pending: options.audit.pending, failures: options.audit.failures },
    });
  });
  // Whether the products fed by other domains' products hold them yet (read and merged once by this process, or
  // refused for a reason that does not pass by itself: its codes say which): `npm start` says the mesh is ready after.
  app.get('/health/inputs', (_req, res) => {
    const inputs = inputStatus();
    const settled = inputs.every(inputSettled);
    res.status(settled ? 200 : 503).json({
      status: !settled ? 'reading' : inputs.every((input) => input.merged) ? 'ready' : 'failing',
      service: domain.name,
      inputs: inputs.map(({ feeds, product, position, merged, error }) => ({ feeds, product, position, merged, error: error ? error.codes.join(', ') : null })),
    });
  });
  const signature = options.signature ?? { key: DEV_SIGNING_KEY, directAccess: false };
  if (signature.directAccess) {
    log.warn({ service: domain.name }, 'SUBGRAPH_DIRECT_ACCESS=allow: this subgraph answers callers other than the gateway (never _service, _entities or introspection); the gateway\'s limits and trusted documents do not hold for them');
  }
  // Data quality: the stored runs, and scheduled checks on the serving version (catalog and metrics).
  const quality = startQualityMonitor({
    domain,
    warehouse,
    stored: options.qualityHistory ?? [],
    intervalMs: options.qualityIntervalMs ?? 0,
    registry: metrics.registry,
    log,
  });
  // Freshness: each product's load time and SLA, as metrics (an alert compares them with the time).
  const now = options.now ?? (() => new Date());
  const lastUpdated = new Gauge({ name: 'data_product_last_updated_timestamp_seconds', help: 'When the serving version of each data product was loaded.', labelNames: ['product'], registers: [metrics.registry] });
  const freshnessSla = new Gauge({ name: 'data_product_freshness_sla_seconds', help: "Each data product's freshness threshold from its SLA (latency, else update frequency).", labelNames: ['product'], registers: [metrics.registry] });
  const publishLoadTime = () => {
    for (const { spec } of domain.dataProducts) if (facts.loadedAt) lastUpdated.set({ product: `${domain.name}.${spec.name}` }, Date.parse(facts.loadedAt) / 1000);
  };
  publishLoadTime();
  for (const { spec } of domain.dataProducts) {
    const sla = slaSecondsOf(spec.metadata.sla);
    if (sla !== null) freshnessSla.set({ product: `${domain.name}.${spec.name}` }, sla);
  }
  const pipelineCounts = pipelineMetrics(metrics.registry, pipelinesOf(domain), () => facts.loadedAt);
  const loads = new Counter({ name: 'data_product_loads_total', help: 'Loads of each data product by this process: swapped in, rejected by its quality checks, or failed.', labelNames: ['product', 'outcome'], registers: [metrics.registry] });
  for (const { spec } of domain.dataProducts) {
    for (const outcome of ['swapped', 'rejected', 'failed'] as const) loads.inc({ product: `${domain.name}.${spec.name}`, outcome }, outcome === options.loadOutcome ? 1 : 0);
  }
  options.onLineage?.(servingLineage(domain, { warehouse: warehouse.location, maskOf: (type, field) => policyIndex.field(type, field).mask?.strategy ?? null, ...(options.now ? { now: options.now } : {}) }));
  const slaOf = new Map(domain.dataProducts.map(({ spec }) => [`${domain.name}.${spec.name}`, spec.metadata.sla]));
  const signed = options.verifySignatures === false ? (_req: unknown, _res: unknown, next: () => void) => next() : requireGatewaySignature(signature);
  // The platform's routes (the gateway and the registry call them): POST with a small body, signed
  // by the gateway even when the subgraph allows direct access.
  const platformOnly = [
    allowMethods(['POST']),
    express.json({ limit: '1kb', verify: keepRawBody }),
    options.verifySignatures === false ? signed : requireGatewaySignature({ ...signature, directAccess: false }),
  ];
  // The catalog entries of the domain's products: what they are and promise, never a value; for
  // the platform (the gateway's catalog, the registry's publish), so signed even with direct access.
  let documents: readonly ProductDocuments[] | undefined;
  let pipelines: PipelineControl | null = null;
  let inputStatus: () => readonly InputStatus[] = () => [];
  // A product fed by other domains' products is as fresh as its inputs: how far behind each is, and whether its reads fail (alerts.yml).
  new Gauge({
    name: 'data_product_input_behind_events',
    help: "Events an input's change feed holds past what the product has read of it (another domain's product it is fed by).",
    labelNames: ['product', 'input'],
    registers: [metrics.registry],
    collect() {
      this.reset();
      for (const input of inputStatus()) {
        const behind = behindOf(input);
        if (behind !== null) this.set({ product: input.feeds, input: input.product }, behind);
      }
    },
  });
  new Gauge({
    name: 'data_product_input_failing',
    help: 'Whether the last read or merge of an input failed (1) or not (0); its code is in the catalog (freshness.inputs).',
    labelNames: ['product', 'input'],
    registers: [metrics.registry],
    collect() {
      this.reset();
      for (const input of inputStatus()) this.set({ product: input.feeds, input: input.product }, input.error ? 1 : 0);
    },
  });
  /** A product's inputs: how far each is read (`behind`: events its feed holds past that), and the last failure's codes. */
  const inputsOfProduct = (productId: string) =>
    inputStatus()
      .filter((input) => input.feeds === productId)
      .map((input) => ({ product: input.product, position: input.position, behind: behindOf(input), readAt: input.readAt, error: input.error ? input.error.codes.join(', ') : null }));
  const pipelineStatus = async (productId: string) => (pipelines ? pipelines.status(productId) : null);
  app.use(
    '/catalog',
    ...platformOnly,
    async (_req, res) => {
      // Each with its columns' profile from the serving version's load, which carries no value.
      documents ??= domainProductDocuments(domain, warehouseServerOf(warehouse.location), rules).map((document) => {
        const profile = profiles.get(document.id);
        return profile ? { ...document, profile } : document;
      });
      // The documents (what the registry keeps), and the live quality of each product (what it does not).
      // Checks travel without their sample keys and SQL: the catalog reveals no value.
      const withoutValues = (run: ProductRun) => ({ ...run, checks: run.checks.map(({ sampleKeys: _keys, sql: _sql, ...check }) => check) });
      const ofProduct = (id: string) => {
        const { status, lastRun, history } = quality.product(id);
        return { status, lastRun: lastRun && withoutValues(lastRun), history: history.map(withoutValues) };
      };
      res.json({
        domain: domain.name,
        products: documents,
        quality: Object.fromEntries(documents.map(({ id }) => [id, ofProduct(id)])),
        freshness: Object.fromEntries(documents.map(({ id }) => [id, { ...freshnessOf(facts, id, slaOf.get(id) ?? [], now()), inputs: inputsOfProduct(id) }])),
        pipelines: Object.fromEntries(await Promise.all(documents.map(async ({ id }) => [id, await pipelineStatus(id).catch(() => null)] as const))),
      });
    },
  );
  // The operators' command on the domain's pipelines (npm run pipelines): signed, as the platform's routes.
  app.use(
    '/pipelines',
    ...platformOnly,
    async (req, res) => {
      const { action, pipeline, from, to, acceptAnomalies } = (req.body ?? {}) as { action?: unknown; pipeline?: unknown; from?: unknown; to?: unknown; acceptAnomalies?: unknown };
      try {
        if (!pipelines) throw new PipelineError('PIPELINE_UNKNOWN', `The ${domain.name} subgraph runs no pipelines (PIPELINES=off).`);
        if (action === 'status') {
          res.json({ domain: domain.name, pipelines: await Promise.all(domain.dataProducts.map(async ({ spec }) => ({ id: `${domain.name}.${spec.name}`, ...(await pipelines!.status(`${domain.name}.${spec.name}`)) }))) });
          return;
        }
        if (typeof pipeline !== 'string' || !['run', 'backfill', 'pause', 'resume'].includes(String(action)) || (acceptAnomalies !== undefined && typeof acceptAnomalies !== 'boolean')) {
          res.status(400).json({
            error: { code: 'BAD_REQUEST', message: 'Send { "action": "status" } or { "action": "run" | "backfill" | "pause" | "resume", "pipeline": "<domain>.<product>" } (a backfill may add "from" and "to", days; a run or a backfill "acceptAnomalies": true).' },
          });
          return;
        }
        if (action === 'run') res.json({ pipeline, runId: await pipelines.run(pipeline, { acceptAnomalies: acceptAnomalies === true }) });
        else if (action === 'backfill') res.json({ pipeline, runId: await pipelines.backfill(pipeline, { from, to, acceptAnomalies: acceptAnomalies === true }) });
        else {
          await (action === 'pause' ? pipelines.pause(pipeline) : pipelines.resume(pipeline));
          res.json({ pipeline, paused: action === 'pause' });
        }
      } catch (error) {
        if (!(error instanceof PipelineError)) throw error;
        res.status(PIPELINE_ERROR_STATUS[error.code]).json({ error: { code: error.code, message: error.message.replace(/^[A-Z_]+: /, '') } });
      }
    },
  );
  // Each product's serving version (contract version and load time), for the gateway's response
  // cache to know when an answer it keeps was computed from data no longer served.
  app.use(
    '/versions',
    ...platformOnly,
    (_req, res) => {
      res.json({ domain: domain.name, products: domain.dataProducts.map(({ spec }) => ({ id: `${domain.name}.${spec.name}`, version: spec.metadata.version, loadedAt: facts.loadedAt })) });
    },
  );
  const rowValuesOf = async (served: Warehouse<any>) => (enforce ? await rowPolicyValuesOf(served, domain.dataProducts.map(({ spec }) => spec), policyIndex) : new Map<string, ReadonlySet<string>>());
  let rowValues = await rowValuesOf(warehouse);
  // A principal's decisions, maskers and row filters depend on the principal alone (the policy and
  // the hash key are the server's): made once per principal, which the verifier hands out again for
  // a token it has seen, instead of once per request.
  const policies = new WeakMap<Principal, RequestPolicy>();
  const policyOf = (principal: Principal): RequestPolicy => {
    let policy = policies.get(principal);
    if (!policy) {
      policy = new RequestPolicy(policyIndex, principal, options.hashKey);
      policies.set(principal, policy);
    }
    return policy;
  };
  app.use(
    '/graphql',
    express.json({ limit: options.bodyLimit ?? '1mb', verify: keepRawBody }),
    signed,
    authenticate(verifier),
    expressMiddleware(apollo, {
      context: async ({ res }) => {
        const requestId = res.locals.requestId as string;
        const principal = res.locals.principal as Principal;
        const policy = policyOf(principal);
        const audit = new AuditCollector();
        const access: RequestAccess = enforce
          ? {
              rows: (typeName) => withoutFullGrant(policy.rows(typeName), values.get(typeName)),
              field: (typeName, fieldName) => policy.field(typeName, fieldName),
              // A shadow rule's effect on arguments is audited beside its effect on values.
              wouldRefuse: (coordinate, argument, rule) => audit.count(coordinate, 'would-deny', `shadow: "${argument}" would be refused (${rule})`),
            }
          : NO_POLICY;
        const loaders = new RequestLoaders();
        // One version for the whole request: the warehouse and row-policy values read here.
        const values = rowValues;
        return {
          requestId,
          log: log.child({ requestId }),
          principal,
          policy,
          audit,
          loaders,
          repo: domain.createRepository(warehouse.db, loaders, access, dialectSql),
        };
      },
    }),
  );
  app.use(notFound);
  app.use(httpErrorHandler(log, domain.name));

  httpServer.listen(options.port, options.host ?? '127.0.0.1');
  await once(httpServer, 'listening');
  const { port } = httpServer.address() as AddressInfo;
  const host = options.host && options.host !== '0.0.0.0' ? options.host : '127.0.0.1';
  const retired = new Map<Warehouse<any>, NodeJS.Timeout>();
  const retire = (old: Warehouse<any>) => {
    const timer = setTimeout(() => {
      retired.delete(old);
      old.close().catch((error: unknown) => log.warn({ err: error }, 'a replaced warehouse could not be closed'));
    }, RETIRED_CLOSE_MS);
    timer.unref();
    retired.set(old, timer);
  };
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/graphql`,
    port,
    async swap(next) {
      const nextProfiles = judgedProfiles(next.profiles);
      const nextRowValues = await rowValuesOf(next.warehouse);
      // From here on, one synchronous step: a request sees the old version or the new one.
      const old = warehouse;
      warehouse = next.warehouse;
      profiles = nextProfiles;
      rowValues = nextRowValues;
      facts = next.loadFacts ?? { loadedAt: null, newest: {} };
      documents = undefined;
      unobserve();
      unobserve = observe(warehouse);
      quality.replace(warehouse, next.qualityHistory ?? []);
      publishLoadTime();
      for (const { spec } of domain.dataProducts) loads.inc({ product: `${domain.name}.${spec.name}`, outcome: 'swapped' });
      if (old !== warehouse) retire(old);
      log.info({ loadedAt: facts.loadedAt }, 'a new warehouse version is served');
    },
    serving: () => warehouse,
    recordRun: pipelineCounts.run,
    recordAnomalies: pipelineCounts.anomalies,
    attachPipelines(control) {
      pipelines = control;
    },
    attachInputs(status) {
      inputStatus = status;
    },
    async stop() {
      await apollo.stop(); // drains in-flight requests, then closes the HTTP server
      quality.stop();
      unobserve();
      // Nothing reads the replaced versions any more.
      for (const [old, timer] of retired) {
        clearTimeout(timer);
        await old.close().catch(() => undefined);
      }
      retired.clear();
    },
  };
}
