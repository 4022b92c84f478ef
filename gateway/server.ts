/**
 * The gateway: Apollo Gateway inside Apollo Server, on Express.
 *
 * It listens at once (liveness answers while it composes), composes the supergraph from the
 * subgraphs, writes the supergraph and API schema files, and only then serves `/graphql` and
 * reports ready. Routes: `/graphql` (POST and GET), `/health/live`, `/health/ready`.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloGateway } from '@apollo/gateway';
import { expressMiddleware } from '@as-integrations/express5';
import express, { type RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { AuditSink } from '../policy/audit.js';
import { useGatewayAudit } from '../policy/audit-plugins.js';
import { useErrorMasking } from '../policy/error-masking.js';
import { createMetrics, useRequestMetrics } from '../policy/metrics.js';
import { errorResponseBody } from '../policy/errors.js';
import { assignRequestId, authenticate, httpErrorHandler, notFound } from '../policy/http.js';
import { createTokenVerifier } from '../policy/identity.js';
import type { Principal } from '../policy/principal.js';
import type { RequestIdContext } from '../policy/request-id.js';
import type { GatewayConfig } from './config.js';
import { withPreplanPolicy } from './preplan-policy.js';
import { SubgraphDataSource } from './subgraph-data-source.js';
import { parse, printSchema, type GraphQLSchema } from 'graphql';
import { readPolicy, type PolicyIndex } from '../policy/policy-index.js';
import { governanceRules } from '../policy/governance.rules.js';
import { linkRegistry, type RegistryLink } from './registry-link.js';
import { probeSubgraphs, subgraphsOfSupergraph, writeSupergraphFiles } from './supergraph.js';
import { createSupergraphSource, rulesForUnclassified, type LoadedSupergraph } from './supergraph-source.js';
import { trustedDocumentsOf, useTrustedDocuments } from './trusted-documents.js';
import { useCsvExport } from './csv-export.js';
import { useOperationResolution } from './operation-resolution.js';
import { DEFAULT_IDE_CACHE, ensureIdeBundle } from './ide/build.js';
import { createAllowances } from './allowances.js';
import { useOperationLimits } from './operation-limits.js';
import { readCostIndex, useCostLimit, useCostReport, type CostIndex } from './cost.js';
import { createRefusals } from './refusals.js';
import { useLoadShedding } from './load-shedding.js';
import { useRateLimits } from './rate-limits.js';
import { createSubgraphCalls } from './subgraph-calls.js';
import { clientOf } from './client-identity.js';
import type { ResponseBudget } from './subgraph-calls.js';
import { ideRouter } from './ide/ide-routes.js';
import { annotatePolicy, exampleOperations, type ExampleOperation } from './ide/schema-docs.js';

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
}

/** The supergraph being served, for readiness and logs. */
export interface ServingSupergraph {
  /** Short hash of the supergraph SDL. */
  readonly version: string;
  /** Its subgraphs, by name. */
  readonly subgraphs: readonly string[];
  /** Where it came from: `registry revision 4`, a file path, `composed from …`. */
  readonly origin: string;
  readonly loadedAt: string;
}

/** The last supergraph that could not replace the serving one (the serving one stays). */
export interface ReloadFailure {
  readonly error: string;
  readonly at: string;
  /** Failed reloads since the gateway started. */
  readonly failures: number;
}

export type GatewayReadiness =
  | { readonly status: 'composing' }
  | { readonly status: 'ready'; readonly supergraph: ServingSupergraph; readonly lastReloadFailure: ReloadFailure | null }
  | { readonly status: 'failed'; readonly error: string };

export interface RunningGateway {
  /** The GraphQL endpoint, e.g. `http://127.0.0.1:4000/graphql`. */
  readonly url: string;
  readonly port: number;
  /** Settles when the supergraph is composed and served, or composing failed. */
  readonly ready: Promise<void>;
  readiness(): GatewayReadiness;
  stop(): Promise<void>;
}

function endpointUrl(host: string, port: number): string {
  const shown = host === '0.0.0.0' || host === '::' ? 'localhost' : host;
  return `http://${shown.includes(':') ? `[${shown}]` : shown}:${port}/graphql`;
}

export interface GatewayParts {
  /** Where the gateway's audit records go; the caller closes it after `stop()`. */
  readonly audit: AuditSink;
  /**
   * Default `true`. `false` serves without the pre-plan policy and the gateway's audit, so that
   * benchmarks can measure their cost; no configuration turns it off.
   */
  readonly enforcePolicy?: boolean;
}

export async function startGateway(config: GatewayConfig, log: Logger, parts: GatewayParts): Promise<RunningGateway> {
  const verifier = createTokenVerifier(config.identity);
  const metrics = createMetrics('gateway');
  metrics.watchAuditSink(parts.audit);
  const app = express();
  app.disable('x-powered-by');
  const httpServer = createServer(app);
  let state: GatewayReadiness = { status: 'composing' };
  let apollo: ApolloServer<GatewayContext> | undefined;

  const notReady: RequestHandler = (_req, res) => {
    res
      .status(503)
      .json(errorResponseBody('GATEWAY_NOT_READY', `The gateway is not ready (${state.status}).`, res.locals.requestId));
  };
  let serveGraphql: RequestHandler = notReady;
  let serveExport: RequestHandler = notReady;

  const allowanceOf = createAllowances(config.limits);
  const refuse = createRefusals({ sink: (parts.enforcePolicy ?? true) ? parts.audit : undefined, metrics, log });
  const shedding = useLoadShedding({ config: config.loadShedding, refuse });
  app.use(assignRequestId);
  app.get('/health/live', (_req, res) => {
    res.json({ status: 'live', service: 'gateway' });
  });
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  const subgraphCalls = createSubgraphCalls({ config: config.subgraphCalls, metrics, log });
  app.get('/health/ready', (_req, res) => {
    res.status(state.status === 'ready' ? 200 : 503).json({ service: 'gateway', ...state, circuits: subgraphCalls.circuits(), rateLimits: rateLimits.status() });
  });
  app.use('/graphql', shedding.middleware, (req, res, next) => serveGraphql(req, res, next));
  app.use('/export/csv', shedding.middleware, (req, res, next) => serveExport(req, res, next));
  // The analysts' IDE, built from the graphiql package (no CDN); its examples follow the served schema.
  let examples: readonly ExampleOperation[] = [];
  // The API schema being served and its cost directives: the operation limits and the cost limit use them.
  let served: { schema: GraphQLSchema; index: CostIndex } | undefined;
  const operationLimits = useOperationLimits({ allowanceOf, schema: () => served?.schema, refuse });
  const rateLimits = useRateLimits({ allowanceOf, windowSeconds: config.limits.rateWindowSeconds, ...config.rateLimitStore, refuse, log });
  const costLimit = useCostLimit({ allowanceOf, served: () => served, refuse, metrics, clientOf: (req, res) => clientOf(req, res.locals.principal!) });
  const bundleDir = ensureIdeBundle(config.ideCacheDir ?? DEFAULT_IDE_CACHE);
  bundleDir.catch((error: unknown) => log.error({ err: error }, 'the IDE could not be built; /ide/ will fail until it is'));
  app.use(ideRouter({ bundleDir, examples: () => examples, identity: config.identity }));
  app.use(notFound);
  app.use(httpErrorHandler(log, 'gateway'));

  httpServer.listen(config.port, config.host);
  await once(httpServer, 'listening');
  const { port } = httpServer.address() as AddressInfo;

  const source = createSupergraphSource(config.supergraph, log);
  const rules = config.supergraph.kind === 'file' ? rulesForUnclassified(config.supergraph.unclassified) : governanceRules;
  // The policy of each API schema served: a request is decided by the schema it runs against.
  const policies = new WeakMap<GraphQLSchema, PolicyIndex>();
  let latestPolicy: PolicyIndex | undefined;
  // The policy the source read from each supergraph it loaded, so that a reload reads it once.
  const readPolicies = new Map<string, PolicyIndex>();
  let serving: LoadedSupergraph | undefined;
  let lastReloadFailure: ReloadFailure | null = null;
  let stopWatching: () => void = () => undefined;
  // The files tools read (supergraph, API schema) are written in order, and before readiness.
  let fileWrites: Promise<void> = Promise.resolve();
  // With the registry source: usage goes to the registry, trusted documents come from it.
  let registry: RegistryLink | undefined;
  const noDocuments = trustedDocumentsOf([]);
  const trusted = () => registry?.trusted() ?? noDocuments;

  const markServing = (loaded: LoadedSupergraph) => {
    serving = loaded;
    const supergraph: ServingSupergraph = {
      version: loaded.version,
      subgraphs: subgraphsOfSupergraph(loaded.supergraphSdl).map(({ name }) => name),
      origin: loaded.origin,
      loadedAt: new Date().toISOString(),
    };
    state = { status: 'ready', supergraph, lastReloadFailure };
    metrics.supergraph.reset();
    metrics.supergraph.set({ version: loaded.version }, 1);
    return supergraph;
  };
  const reloadFailed = (error: Error, candidate?: LoadedSupergraph) => {
    lastReloadFailure = { error: error.message, at: new Date().toISOString(), failures: (lastReloadFailure?.failures ?? 0) + 1 };
    if (state.status === 'ready') state = { ...state, lastReloadFailure };
    log.error({ err: error, candidate: candidate?.origin, serving: serving?.version }, 'a new supergraph was refused; the gateway keeps serving the last good one');
  };

  const loadSupergraphs = async (): Promise<void> => {
    const first = await source.first(config.composeTimeoutMs);
    if (config.supergraph.kind === 'file' && config.supergraph.unclassified !== 'deny') {
      log.warn(
        { unclassified: config.supergraph.unclassified, file: config.supergraph.path },
        `UNCLASSIFIED_FIELDS=${config.supergraph.unclassified}: fields without a classification are NOT denied; every caller meeting that treatment can read them`,
      );
    }
    const enforce = parts.enforcePolicy ?? true;
    // Apollo Gateway reports metrics to Apollo's servers (and probes cloud metadata addresses)
    // unless told not to: a data platform's gateway sends nothing out unless an operator opts in.
    process.env.APOLLO_TELEMETRY_DISABLED ??= 'true';
    const apolloGateway = new ApolloGateway({
      // The function form lets the gateway swap supergraphs without a restart: `update` replaces the
      // schema for new requests; requests in flight finish with the one they started with.
      supergraphSdl: async ({ update }) => {
        stopWatching = source.watch({
          onChange: async (next) => {
            try {
              await probeSubgraphs(next.supergraphSdl, serving?.supergraphSdl ?? '');
              readPolicies.set(next.supergraphSdl, next.policy);
              update(next.supergraphSdl); // throws, keeping the serving one, when it cannot be served
              const supergraph = markServing(next);
              log.info({ version: supergraph.version, origin: supergraph.origin, subgraphs: supergraph.subgraphs }, 'supergraph reloaded');
              await fileWrites;
            } catch (error) {
              reloadFailed(error as Error, next);
            } finally {
              readPolicies.delete(next.supergraphSdl);
            }
          },
          onError: (error) => reloadFailed(error),
        });
        readPolicies.set(first.supergraphSdl, first.policy);
        return { supergraphSdl: first.supergraphSdl, cleanup: async () => stopWatching() };
      },
      buildService: ({ name, url }) => new SubgraphDataSource({ name, url: url!, log, metrics, caller: subgraphCalls.forSubgraph(name, url!) }),
      logger: log,
    });
    apolloGateway.onSchemaLoadOrUpdate(({ apiSchema, coreSupergraphSdl }) => {
      const supergraphDocument = parse(coreSupergraphSdl);
      latestPolicy = readPolicies.get(coreSupergraphSdl) ?? readPolicy(supergraphDocument, rules);
      readPolicies.delete(coreSupergraphSdl);
      policies.set(apiSchema, latestPolicy);
      served = { schema: apiSchema, index: readCostIndex(supergraphDocument) };
      // Introspection (the IDE's docs) and the API schema file say, for each field, who may read it.
      annotatePolicy(apiSchema, latestPolicy);
      examples = exampleOperations(apiSchema, coreSupergraphSdl);
      const paths = config.supergraph.kind === 'file' ? { apiSchemaPath: config.apiSchemaPath } : config;
      const files = { supergraphSdl: coreSupergraphSdl, apiSchemaSdl: printSchema(apiSchema) };
      fileWrites = fileWrites
        .then(() => writeSupergraphFiles(files, paths))
        .catch((error: unknown) => log.error({ err: error }, 'the supergraph files could not be written'));
    });
    const gateway = enforce
      ? withPreplanPolicy({ gateway: apolloGateway, policyIndex: (schema) => policies.get(schema) ?? latestPolicy!, mode: config.policyMode })
      : apolloGateway;
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
        ...(enforce ? [useGatewayAudit({ sink: parts.audit, log })] : []),
        ...(registry ? [registry.usage] : []),
        ApolloServerPluginDrainHttpServer({ httpServer }),
        // Apollo's default landing page loads from a CDN; the self-hosted IDE replaces it.
        ApolloServerPluginLandingPageDisabled(),
      ],
      includeStacktraceInErrorResponses: false,
      // Documents by hash are the registry's trusted documents (see trusted-documents.ts), never an
      // automatic cache a caller could fill.
      persistedQueries: false,
      // The process owns shutdown (stop, then flush the audit sink); Apollo must not race it.
      stopOnTerminationSignals: false,
      introspection: true,
      logger: log,
    });
    await apollo.start();
    const contextOf = (requestId: string, principal: Principal, authorization: string | undefined, clientName: string | null = principal.client, estimatedCost: number | null = null): GatewayContext => ({
      requestId,
      log: log.child({ requestId }),
      principal,
      authorization,
      responseBudget: { remaining: config.subgraphCalls.maxResponseBytes },
      clientName,
      estimatedCost,
      costBudget: allowanceOf(principal).maxCost,
      actualRows: { rows: 0 },
    });
    serveGraphql = express.Router().use(
      authenticate(verifier),
      express.json({ limit: config.bodyLimit }),
      useTrustedDocuments(trusted),
      operationLimits,
      costLimit,
      rateLimits.middleware,
      expressMiddleware(apollo, {
        context: async ({ req, res }) =>
          contextOf(res.locals.requestId!, res.locals.principal!, req.headers.authorization, clientOf(req, res.locals.principal!), res.locals.estimatedCost ?? null),
      }),
    );
    const server = apollo;
    serveExport = express.Router().use(
      authenticate(verifier),
      express.json({ limit: config.bodyLimit }),
      // Trusted-documents apps send registered operations only; an export is an ad-hoc query.
      (_req, res, next) => {
        const principal = res.locals.principal as Principal;
        if (principal.client !== null && trusted().isTrustedClient(principal.client)) {
          res.status(400).json(errorResponseBody('TRUSTED_DOCUMENT_REQUIRED', `The app "${principal.client}" may send only its registered documents; it cannot export.`, res.locals.requestId as string));
          return;
        }
        next();
      },
      operationLimits,
      costLimit,
      rateLimits.middleware,
      useCsvExport({ apollo: () => server, context: contextOf, maxRows: config.exportMaxRows, log }),
    );
    await fileWrites;
    const supergraph = markServing(first);
    log.info({ version: supergraph.version, origin: supergraph.origin, subgraphs: supergraph.subgraphs, file: config.supergraphPath }, 'supergraph loaded');
  };

  const ready = loadSupergraphs().catch((error: unknown) => {
    state = { status: 'failed', error: error instanceof Error ? error.message : String(error) };
    log.error({ err: error }, 'the gateway could not compose its supergraph');
    throw error;
  });
  // The caller decides what a failure means (exit, or keep reporting not-ready); never unhandled.
  ready.catch(() => undefined);

  return {
    url: endpointUrl(config.host, port),
    port,
    ready,
    readiness: () => state,
    async stop() {
      stopWatching();
      if (apollo) await apollo.stop(); // drains requests in flight (and flushes usage), closes the HTTP server
      else if (httpServer.listening) {
        httpServer.closeAllConnections();
        await new Promise<void>((resolve) => httpServer.close(() => resolve()));
      }
      await source.close();
      await registry?.close();
      await subgraphCalls.close();
      await rateLimits.close();
    },
  };
}
