/**
 * The subgraph bootstrap: every domain is served the same way, by this one factory.
 *
 * Routes: `/graphql` (POST and GET, Federation 2 subgraph), `/health/live`, `/health/ready` (the
 * warehouse answers). Each GraphQL request gets a fresh repository, so DataLoader batches and caches
 * only within that request.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import {
  ApolloServerPluginInlineTraceDisabled,
  ApolloServerPluginLandingPageDisabled,
} from '@apollo/server/plugin/disabled';
import { buildSubgraphSchema } from '@apollo/subgraph';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import { expressMiddleware } from '@as-integrations/express5';
import express from 'express';
import { concatAST } from 'graphql';
import { sql } from 'kysely';
import type { Logger } from 'pino';
import { useErrorMasking } from '../../policy/error-masking.js';
import { assignRequestId, httpErrorHandler, notFound } from '../../policy/http.js';
import type { Domain, DomainContext } from './domain.js';
import { RequestLoaders } from './loaders.js';
import { commonTypeDefs, scalarResolvers } from './scalars.js';
import type { Warehouse } from './warehouse/warehouse.js';

export interface SubgraphServerOptions {
  // Any domain with its own warehouse: the two are paired by the caller.
  readonly domain: Domain<any, any>;
  readonly warehouse: Warehouse<any>;
  readonly log: Logger;
  /** Port to listen on; 0 picks a free one. */
  readonly port: number;
  /** Interface to bind (default `127.0.0.1`; `0.0.0.0` in containers). */
  readonly host?: string;
  /** Largest accepted request body (default `1mb`). */
  readonly bodyLimit?: string;
}

export interface RunningServer {
  /** The GraphQL endpoint, e.g. `http://127.0.0.1:4001/graphql`. */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

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

export async function startSubgraphServer(options: SubgraphServerOptions): Promise<RunningServer> {
  const { domain, warehouse, log } = options;
  const app = express();
  app.disable('x-powered-by');
  const httpServer = createServer(app);
  const masking = useErrorMasking({ log, service: domain.name });

  const apollo = new ApolloServer<DomainContext<unknown>>({
    // The domain's SDL with the shared types; its resolver map is typed by the domain's own context.
    schema: buildSubgraphSchema({
      typeDefs: concatAST([domain.typeDefs, commonTypeDefs]),
      resolvers: { ...scalarResolvers, ...domain.resolvers } as GraphQLResolverMap<unknown>,
    }),
    formatError: masking.formatError,
    plugins: [
      masking.plugin,
      ApolloServerPluginDrainHttpServer({ httpServer }),
      ApolloServerPluginLandingPageDisabled(),
      // No usage reporting here; and a direct caller must not get per-field timing traces.
      ApolloServerPluginInlineTraceDisabled(),
    ],
    includeStacktraceInErrorResponses: false,
    introspection: true,
    logger: log,
  });
  await apollo.start();

  app.use(assignRequestId);
  app.get('/health/live', (_req, res) => {
    res.json({ status: 'live', service: domain.name });
  });
  app.get('/health/ready', async (_req, res) => {
    const ready = await warehouseAnswers(warehouse);
    res.status(ready ? 200 : 503).json({
      status: ready ? 'ready' : 'unavailable',
      service: domain.name,
      warehouse: { dialect: warehouse.dialect, reachable: ready },
    });
  });
  app.use(
    '/graphql',
    express.json({ limit: options.bodyLimit ?? '1mb' }),
    expressMiddleware(apollo, {
      context: async ({ res }) => {
        const requestId = res.locals.requestId as string;
        return {
          requestId,
          log: log.child({ requestId }),
          repo: domain.createRepository(warehouse.db, new RequestLoaders()),
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
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/graphql`,
    port,
    async stop() {
      await apollo.stop(); // drains in-flight requests, then closes the HTTP server
    },
  };
}
