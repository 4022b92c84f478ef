/**
 * The gateway: Apollo Gateway inside Apollo Server, on Express, built from its parts. Reading
 * `startGateway` from top to bottom lists every feature, in the order a request meets them:
 *
 *   load shedding → identity → body → trusted documents → operation limits → cost limit →
 *   rate limits → Apollo Server (pre-plan policy, planning, resilient subgraph calls; error masking,
 *   metrics, cost report, audit, usage recording)
 *
 * It listens at once (liveness answers while it composes), serves `/graphql` (POST and GET) and
 * `/export/csv` once the first supergraph is served, and reports ready then.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { expressMiddleware } from '@as-integrations/express5';
import express, { type RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { AuditSink } from '../policy/audit.js';
import { useGatewayAudit } from '../policy/audit-plugins.js';
import { useErrorMasking } from '../policy/error-masking.js';
import { errorResponseBody } from '../policy/errors.js';
import { allowMethods, assignRequestId, authenticate, httpErrorHandler, notFound } from '../policy/http.js';
import { refuseForeignHosts } from '../policy/host-check.js';
import { createTokenVerifier } from '../policy/identity.js';
import { createMetrics, useRequestMetrics } from '../policy/metrics.js';
import type { Principal } from '../policy/principal.js';
import type { RequestIdContext } from '../policy/request-id.js';
import { createResponseCache, freshAfter, pollProductVersions } from './cache/response-cache.js';
import { invalidateOnChangeEvents } from './cache/change-events.js';
import { openChangeFeed } from '../policy/events/feed-from-env.js';
import { createProductHub } from './events/product-hub.js';
import { sseEndpoint } from './subscriptions/sse.js';
import { createSubscriptions, refuseSubscriptionsOverHttp, type SubscriptionsOptions } from './subscriptions/subscriptions.js';
import { attachWebSocket } from './subscriptions/ws.js';
import { CatalogDataSource, isCatalogSubgraph } from './catalog/catalog-subgraph.js';
import { createDomainEntries, fetchSubgraphVersions } from './catalog/domain-entries.js';
import type { GatewayConfig } from './config.js';
import { useCsvExport } from './exports/csv-export.js';
import { DEFAULT_IDE_CACHE, ideBundle } from './ide/build.js';
import { ideRouter, redirectBrowsersToIde } from './ide/ide-routes.js';
import { useHealthRoutes } from './observability/health-routes.js';
import { linkRegistry, type RegistryLink } from './registry/registry-link.js';
import { registryApi } from './registry/api.js';
import { openRegistry } from './registry/open.js';
import { createAllowances } from './request-stages/allowances.js';
import { clientOf } from './request-stages/client-identity.js';
import { createPageAdmission, useCostLimit, useCostReport } from './request-stages/cost.js';
import { useLoadShedding } from './request-stages/load-shedding.js';
import { useOperationLimits } from './request-stages/operation-limits.js';
import { useOperationResolution } from './request-stages/operation-resolution.js';
import { withPreplanPolicy } from './request-stages/preplan-policy.js';
import { useRateLimits } from './request-stages/rate-limits.js';
import { appendRecord, createRefusals, createTokenRejectionAudit, refusalRecord } from './request-stages/refusals.js';
import { refuseTrustedClients, trustedDocumentsOf, useTrustedDocuments } from './request-stages/trusted-documents.js';
import { createSubgraphCalls, type ResponseBudget } from './subgraph-calls/subgraph-calls.js';
import { INCLUDE_DATA_PRODUCTS_HEADER, SubgraphDataSource, useDataProductVersions, useSubgraphInputStatus, type DataProductVersion } from './subgraph-calls/subgraph-data-source.js';
import { createServingSupergraph, type GatewayReadiness } from './supergraph/serving-supergraph.js';

export type { GatewayReadiness, ReloadFailure, ServingSupergraphInfo } from './supergraph/serving-supergraph.js';

export interface GatewayContext extends RequestIdContext {
  readonly log: Logger;
  readonly principal: Principal;
  /** The caller's Authorization header, forwarded to the subgraphs (which verify it again). */
  readonly authorization: string | undefined;
  /** What the subgraphs may still answer to this operation, in bytes. */
  readonly responseBudget: ResponseBudget;
  /** The caller's client (token, header or address), for per-client metrics. */
  readonly clientName: string | null;
  /** The estimated cost the cost limit admitted (null when it did not run, as for CSV pages). */
  readonly estimatedCost: number | null;
  /** The caller's cost budget. */
  readonly costBudget: number;
  /** Rows the subgraphs returned to this operation (its actual cost). */
  readonly actualRows: { rows: number };
  /** The data products the answer was computed from, when the request asks for `extensions.dataProducts` or the response cache keeps answers. */
  readonly dataProductsRead: Map<string, DataProductVersion> | undefined;
  /** The caller asked for `extensions.dataProducts`. */
  readonly showDataProducts: boolean;
  /** Set when the answer read something that changes without a data version (the catalog): not cached. */
  readonly volatile: { read: boolean };
  /** Set when a subgraph's answer held strictly audited values: not cached. */
  readonly strictlyAudited: { read: boolean };
  /** The response cache's verdict on this request. */
  cache?: { outcome: 'hit' | 'miss' | 'bypass'; age?: number };
  /** Set when the operation resolves a subscription's event (gateway/subscriptions/): audited with it. */
  subscriptionEvent?: { readonly field: string; readonly position: string };
}

export interface RunningGateway {
  /** The GraphQL endpoint, e.g. `http://127.0.0.1:4000/graphql`. */
  readonly url: string;
  readonly port: number;
  /** Settles when the supergraph is composed and served, or composing failed. */
  readonly ready: Promise<void>;
  readiness(): GatewayReadiness;
  stop(): Promise<void>;
}

export interface GatewayParts {
  /** Where the gateway's audit records go; the caller closes it after `stop()`. */
  readonly audit: AuditSink;
  /**
   * Default `true`. `false` serves without the pre-plan policy and the gateway's audit, so that
   * benchmarks can measure their cost; no configuration turns it off.
   */
  readonly enforcePolicy?: boolean;
  /**
   * Default `true`. `false` serves without operation limits, cost limit and rate limits, so that
   * benchmarks can measure their cost; no configuration turns it off.
   */
  readonly enforceLimits?: boolean;
  /**
   * Default `true`. `false` sends subgraph requests unsigned, so that benchmarks can measure the
   * signature's cost (against subgraphs started with `verifySignatures: false`); no configuration turns it off.
   */
  readonly signSubgraphCalls?: boolean;
  /** Set in a cluster worker (gateway/launcher/cluster.ts): what `/metrics` answers (every worker's added up), and how many workers share the local rate buckets. */
  readonly cluster?: { readonly worker: number; readonly workers: number; readonly metrics: (own: Registry) => () => Promise<string> };
}

function endpointUrl(host: string, port: number): string {
  const shown = host === '0.0.0.0' || host === '::' ? 'localhost' : host;
  return `http://${shown.includes(':') ? `[${shown}]` : shown}:${port}/graphql`;
}

const pass: RequestHandler = (_req, _res, next) => next();

export async function startGateway(config: GatewayConfig, log: Logger, parts: GatewayParts): Promise<RunningGateway> {
  const enforcePolicy = parts.enforcePolicy ?? true;
  const enforceLimits = parts.enforceLimits ?? true;
  const metrics = createMetrics('gateway');
  metrics.watchAuditSink(parts.audit);
  const verifier = createTokenVerifier(config.identity);
  const allowanceOf = createAllowances(config.limits);
  const refuse = createRefusals({ sink: enforcePolicy ? parts.audit : undefined, metrics, log });
  const tokenRejected = createTokenRejectionAudit({ sink: enforcePolicy ? parts.audit : undefined, metrics, log });

  // Subgraph calls: one pool, timeouts, retry on reset, a circuit per subgraph, a response budget.
  const subgraphCalls = createSubgraphCalls({ config: config.subgraphCalls, metrics, log });
  // The supergraph served: first load, hot reload, policy and cost directives per schema, files, readiness.
  // The federated data product catalog, a platform subgraph answered in process (gateway/catalog/).
  const catalog = new CatalogDataSource({
    served: () => {
      const served = serving.served();
      return served && { ...served, examples: serving.examples() };
    },
    entries: createDomainEntries({ signingKey: config.subgraphSigningKey, timeoutMs: config.subgraphCalls.timeoutMs, log }),
    usage: (since) => registry?.usageSince(since) ?? null,
    registeredClients: () => registry?.registeredClients() ?? new Set(),
  });
  const serving = createServingSupergraph({
    config,
    log,
    metrics,
    buildService: ({ name, url }) => isCatalogSubgraph({ name, url: url ?? '' }) ? catalog : new SubgraphDataSource({ name, log, metrics, caller: subgraphCalls.forSubgraph(name, url!), signingKey: parts.signSubgraphCalls === false ? null : config.subgraphSigningKey }),
  });

  // Operation safety, before planning: shape limits, cost, rate (see gateway/request-stages/allowances.ts).
  const shedding = useLoadShedding({ config: config.loadShedding, refuse });
  const operationLimits = enforceLimits ? useOperationLimits({ allowanceOf, schema: () => serving.served()?.schema, refuse }) : pass;
  const costLimit = enforceLimits ? useCostLimit({ allowanceOf, served: () => serving.served(), refuse, metrics, clientOf: (req, res) => clientOf(req, res.locals.principal!) }) : pass;
  const rateLimits = useRateLimits({ allowanceOf, windowSeconds: config.limits.rateWindowSeconds, ...config.rateLimitStore, refuse, log, localShares: parts.cluster?.workers ?? 1 });
  const rateLimit = enforceLimits ? rateLimits.middleware : pass;
  const admitPage = createPageAdmission({ allowanceOf, served: () => serving.served(), spend: rateLimits.spend, metrics });

  // The response cache: answers kept per operation, policy class and data version (off unless configured).
  const responseCache = config.responseCache && config.responseCache.store !== 'off'
    ? createResponseCache({ config: config.responseCache, versionOf: (schema) => serving.versionOf(schema), registry: metrics.registry, log })
    : null;
  const versionPoll = responseCache
    ? pollProductVersions({
        versions: responseCache.versions,
        subgraphs: () => serving.served()?.subgraphs ?? [],
        fetchVersions: (subgraph) => fetchSubgraphVersions(subgraph, { signingKey: config.subgraphSigningKey, timeoutMs: config.subgraphCalls.timeoutMs }),
        intervalMs: config.responseCache!.versionsPollMs,
      })
    : null;
  // The gateway's one reader of each product's change feed (the cache's invalidation, the subscriptions).
  const hub = config.changeFeed ? createProductHub({ openFeed: () => openChangeFeed(config.changeFeed!, config.subgraphSigningKey, 'gateway'), log }) : null;
  // The cache is invalidated at once on a product's change event (the poll stays, as the fallback).
  const eventInvalidation = responseCache && versionPoll && hub
    ? invalidateOnChangeEvents({
        hub,
        products: () => responseCache.versions.products(),
        onChange: () => void versionPoll.poll(),
        log,
      })
    : null;

  // With the registry source: usage goes to the registry, trusted documents come from it.
  let registry: RegistryLink | undefined;
  const noDocuments = trustedDocumentsOf([]);
  const trusted = () => registry?.trusted() ?? noDocuments;

  const app = express();
  app.disable('x-powered-by');
  // No ETag over every answer: hashing each body (87 KB for the peer benchmark's query) costs more
  // than it saves; whether an answer may be reused is the response cache's to say.
  app.set('etag', false);
  const httpServer = createServer(app);
  const notReady: RequestHandler = (_req, res) => {
    res.status(503).json(errorResponseBody('GATEWAY_NOT_READY', `The gateway is not ready (${serving.readiness().status}).`, res.locals.requestId));
  };
  let serveGraphql: RequestHandler = notReady;
  let serveExport: RequestHandler = notReady;
  app.use(assignRequestId);
  // DNS rebinding protection, on every route (health and metrics included).
  app.use(refuseForeignHosts(config.allowedHosts));
  app.use(useHealthRoutes({ metrics, readiness: serving.readiness, circuits: subgraphCalls.circuits, rateLimits: rateLimits.status, ...(parts.cluster ? { metricsText: parts.cluster.metrics(metrics.registry), worker: parts.cluster.worker } : {}) }));
  const getOrPost = allowMethods(['GET', 'POST']);
  // Subscriptions over SSE (gateway/subscriptions/sse.ts); over WebSocket, upgrades of /graphql (ws.ts).
  let serveStream: RequestHandler = notReady;
  app.use('/graphql/stream', getOrPost, shedding.admission, (req, res, next) => serveStream(req, res, next));
  app.use('/graphql', getOrPost, redirectBrowsersToIde, shedding.middleware, (req, res, next) => serveGraphql(req, res, next));
  app.use('/export/csv', getOrPost, shedding.middleware, (req, res, next) => serveExport(req, res, next));
  // The registry as a service, for teams whose domains run elsewhere (registry source only).
  const registryStore = config.supergraph.kind === 'registry' && config.registryApi ? await openRegistry(config.supergraph.registryUrl) : null;
  if (registryStore) app.use('/registry/v1', registryApi({ registry: registryStore, verifier, audit: parts.audit, log, governanceRoles: config.registryApi!.governanceRoles }));
  // The analysts' IDE, built from the graphiql package (no CDN); its examples follow the served schema.
  const bundleDir = ideBundle(config.ideCacheDir ?? DEFAULT_IDE_CACHE);
  bundleDir.catch((error: unknown) => log.error({ err: error }, 'the IDE could not be built; /ide/ will fail until it is'));
  app.use(ideRouter({ bundleDir, identity: config.identity, signIn: config.ideSignIn ?? null }));
  app.use(notFound);
  app.use(httpErrorHandler(log, 'gateway'));

  // Subscriptions: the gateway's own path beside Apollo's (which does not execute them).
  let contextOfEvent: SubscriptionsOptions<GatewayContext>['contextOf'] | undefined;
  const subscriptions = createSubscriptions<GatewayContext>({
    hub,
    served: () => serving.served(),
    apollo: () => apollo,
    contextOf: (...args) => contextOfEvent!(...args),
    allowanceOf,
    spend: (principal, address, cost) => (enforceLimits ? rateLimits.spendFor(principal, address, cost) : Promise.resolve(null)),
    policyMode: config.policyMode,
    trusted: () => trusted(),
    // Once per event, whoever asks first: the versions polled after it came, so that no cached answer predates it.
    ...(versionPoll ? { fresh: freshAfter(versionPoll) } : {}),
    metrics,
    log,
    localShares: parts.cluster?.workers ?? 1,
    ...(config.subscriptions ? { bounds: config.subscriptions } : {}),
  });
  const streams = sseEndpoint({ subscriptions, verifier, refuse, log });
  const webSockets = attachWebSocket({
    httpServer,
    path: '/graphql',
    subscriptions,
    verifier,
    allowedHosts: config.allowedHosts,
    log,
    maxPayload: 1 << 20,
    tokenRejected: tokenRejected.record,
    refused: (request, code) => {
      metrics.refusals.inc({ code });
      if (enforcePolicy) appendRecord(parts.audit, log, refusalRecord(request, { code }));
    },
  });

  httpServer.listen(config.port, config.host);
  await once(httpServer, 'listening');
  const { port } = httpServer.address() as AddressInfo;
  let apollo: ApolloServer<GatewayContext> | undefined;

  const serve = async (): Promise<void> => {
    const apolloGateway = await serving.load();
    // The pre-plan policy: fields the principal may never see are dropped (or refused) before planning.
    const gateway = enforcePolicy ? withPreplanPolicy({ gateway: apolloGateway, policyIndex: serving.policyOf, mode: config.policyMode }) : apolloGateway;
    if (config.supergraph.kind === 'registry') {
      registry = await linkRegistry({ registryUrl: config.supergraph.registryUrl, usageFlushMs: config.usageFlushMs, pollMs: config.supergraph.pollMs, log });
    }
    const masking = useErrorMasking({ log, service: 'gateway' });
    apollo = new ApolloServer<GatewayContext>({
      gateway,
      formatError: masking.formatError,
      plugins: [
        masking.plugin,
        useOperationResolution(),
        useRequestMetrics(metrics),
        useCostReport(),
        useSubgraphInputStatus(),
        useDataProductVersions(),
        ...(responseCache ? [responseCache.plugin] : []),
        ...(enforcePolicy ? [useGatewayAudit({ sink: parts.audit, log })] : []),
        ...(registry ? [registry.usage] : []),
        ApolloServerPluginDrainHttpServer({ httpServer }),
        // Apollo's default landing page loads from a CDN; the self-hosted IDE replaces it.
        ApolloServerPluginLandingPageDisabled(),
      ],
      includeStacktraceInErrorResponses: false,
      // Documents by hash are the registry's trusted documents (see request-stages/trusted-documents.ts), never an
      // automatic cache a caller could fill.
      persistedQueries: false,
      // The process owns shutdown (stop, then flush the audit sink); Apollo must not race it.
      stopOnTerminationSignals: false,
      introspection: true,
      logger: log,
    });
    await apollo.start();
    const contextOf = (requestId: string, principal: Principal, authorization: string | undefined, clientName: string | null = principal.client, estimatedCost: number | null = null, includeDataProducts = false): GatewayContext => ({
      requestId,
      log: log.child({ requestId }),
      principal,
      authorization,
      responseBudget: { remaining: config.subgraphCalls.maxResponseBytes },
      clientName,
      estimatedCost,
      costBudget: allowanceOf(principal).maxCost,
      actualRows: { rows: 0 },
      dataProductsRead: includeDataProducts || responseCache ? new Map() : undefined,
      showDataProducts: includeDataProducts,
      volatile: { read: false },
      strictlyAudited: { read: false },
    });
    contextOfEvent = contextOf;
    const body = express.json({ limit: config.bodyLimit });
    serveGraphql = express.Router().use(
      authenticate(verifier, tokenRejected),
      body,
      useTrustedDocuments(trusted),
      operationLimits,
      refuseSubscriptionsOverHttp(refuse),
      costLimit,
      rateLimit,
      expressMiddleware(apollo, {
        context: async ({ req, res }) =>
          contextOf(res.locals.requestId!, res.locals.principal!, req.headers.authorization, clientOf(req, res.locals.principal!), res.locals.estimatedCost ?? null, req.get(INCLUDE_DATA_PRODUCTS_HEADER) === 'true'),
      }),
    );
    const server = apollo;
    serveExport = express.Router().use(
      authenticate(verifier, tokenRejected),
      body,
      refuseTrustedClients(trusted),
      operationLimits,
      // Each page is admitted as it is fetched: its cost within the budget, spent from the rate buckets.
      useCsvExport({ apollo: () => server, context: contextOf, maxRows: config.exportMaxRows, log, ...(enforceLimits ? { admitPage, refuse } : {}) }),
    );
    serveStream = express.Router().use(authenticate(verifier, tokenRejected), body, streams.handler);
    await serving.markReady();
  };

  const ready = serve().catch((error: unknown) => {
    serving.markFailed(error);
    throw error;
  });
  // The caller decides what a failure means (exit, or keep reporting not-ready); never unhandled.
  ready.catch(() => undefined);

  return {
    url: endpointUrl(config.host, port),
    port,
    ready,
    readiness: serving.readiness,
    async stop() {
      // Subscribers first: their streams would hold the drain below for its whole grace period.
      streams.close();
      await webSockets.close();
      if (apollo) await apollo.stop(); // drains requests in flight (and flushes usage), closes the HTTP server
      else if (httpServer.listening) {
        httpServer.closeAllConnections();
        await new Promise<void>((resolve) => httpServer.close(() => resolve()));
      }
      await serving.close();
      await registry?.close();
      await registryStore?.close();
      await subgraphCalls.close();
      await rateLimits.close();
      versionPoll?.stop();
      await eventInvalidation?.stop();
      await hub?.close();
      await responseCache?.close();
    },
  };
}
