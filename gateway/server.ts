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
import { composeFromSubgraphs, writeSupergraphFiles, type ComposedSupergraph } from './supergraph.js';

export interface GatewayContext extends RequestIdContext {
  readonly log: Logger;
  readonly principal: Principal;
  /** The caller's Authorization header, forwarded to the subgraphs (which verify it again). */
  readonly authorization: string | undefined;
}

export type GatewayReadiness =
  | { readonly status: 'composing' }
  | { readonly status: 'ready'; readonly supergraph: Omit<ComposedSupergraph, 'supergraphSdl' | 'apiSchemaSdl' | 'policy'> }
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

  app.use(assignRequestId);
  app.get('/health/live', (_req, res) => {
    res.json({ status: 'live', service: 'gateway' });
  });
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  app.get('/health/ready', (_req, res) => {
    res.status(state.status === 'ready' ? 200 : 503).json({ service: 'gateway', ...state });
  });
  app.use('/graphql', (req, res, next) => serveGraphql(req, res, next));
  app.use(notFound);
  app.use(httpErrorHandler(log, 'gateway'));

  httpServer.listen(config.port, config.host);
  await once(httpServer, 'listening');
  const { port } = httpServer.address() as AddressInfo;

  const compose = async (): Promise<void> => {
    const composed = await composeFromSubgraphs({
      subgraphs: config.subgraphs,
      timeoutMs: config.composeTimeoutMs,
      log,
    });
    await writeSupergraphFiles(composed, config);
    const enforce = parts.enforcePolicy ?? true;
    const apolloGateway = new ApolloGateway({
      supergraphSdl: composed.supergraphSdl,
      buildService: ({ name, url }) => new SubgraphDataSource({ name, url: url!, log, metrics }),
      logger: log,
    });
    const gateway = enforce
      ? withPreplanPolicy({ gateway: apolloGateway, policyIndex: () => composed.policy, mode: config.policyMode })
      : apolloGateway;
    const masking = useErrorMasking({ log, service: 'gateway' });
    apollo = new ApolloServer<GatewayContext>({
      gateway,
      formatError: masking.formatError,
      plugins: [
        masking.plugin,
        useRequestMetrics(metrics),
        ...(enforce ? [useGatewayAudit({ sink: parts.audit, log })] : []),
        ApolloServerPluginDrainHttpServer({ httpServer }),
        // Apollo's default landing page loads from a CDN; the self-hosted IDE replaces it.
        ApolloServerPluginLandingPageDisabled(),
      ],
      includeStacktraceInErrorResponses: false,
      // The process owns shutdown (stop, then flush the audit sink); Apollo must not race it.
      stopOnTerminationSignals: false,
      introspection: true,
      logger: log,
    });
    await apollo.start();
    serveGraphql = express.Router().use(
      authenticate(verifier),
      express.json({ limit: config.bodyLimit }),
      expressMiddleware(apollo, {
        context: async ({ req, res }) => {
          const requestId = res.locals.requestId as string;
          return {
            requestId,
            log: log.child({ requestId }),
            principal: res.locals.principal as Principal,
            authorization: req.headers.authorization,
          };
        },
      }),
    );
    const { supergraphSdl: _sdl, apiSchemaSdl: _api, policy: _policy, ...supergraph } = composed;
    state = { status: 'ready', supergraph };
    metrics.supergraph.set({ version: composed.version }, 1);
    log.info({ version: composed.version, subgraphs: composed.subgraphs, file: config.supergraphPath }, 'supergraph composed');
  };

  const ready = compose().catch((error: unknown) => {
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
      if (apollo) await apollo.stop(); // drains requests in flight, closes the HTTP server
      else if (httpServer.listening) {
        httpServer.closeAllConnections();
        await new Promise<void>((resolve) => httpServer.close(() => resolve()));
      }
    },
  };
}
