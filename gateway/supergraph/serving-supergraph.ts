/**
 * The supergraph the gateway serves: its first load, every swap, the policy and cost directives of
 * each API schema served, the files tools read (supergraph and API schema), the IDE's examples and
 * readiness.
 *
 * Apollo Gateway gets the supergraph through its function form, so that a new one replaces the
 * serving one without a restart: `update` swaps the schema for new requests while requests in flight
 * finish with the one they started with. A supergraph whose subgraphs do not answer, or that Apollo
 * cannot serve, never replaces the serving one; the refusal is logged and shown in readiness.
 */
import { createHash } from 'node:crypto';
import { ApolloGateway, type ServiceEndpointDefinition } from '@apollo/gateway';
import type { GraphQLDataSource } from '@apollo/gateway';
import { parse, printSchema, type GraphQLSchema } from 'graphql';
import type { Logger } from 'pino';
import { governanceRules } from '../../policy/governance.rules.js';
import type { Metrics } from '../../policy/metrics.js';
import { readPolicy, type PolicyIndex } from '../../policy/policy-index.js';
import type { GatewayConfig } from '../config.js';
import type { SubgraphEndpoint } from '../subgraph-calls/subgraph-endpoint.js';
import { readCostIndex, type CostIndex } from '../request-stages/cost.js';
import { annotatePolicy, exampleOperations, type ExampleOperation } from '../ide/schema-docs.js';
import { validateKnownScalars } from './input-scalars.js';
import { subscriptionRoutesOf, type SubscriptionRoutes } from '../subscriptions/routes.js';
import { fieldOwnersOf, probeSubgraphs, subgraphsOfSupergraph, writeSupergraphFiles } from './supergraph.js';
import { createSupergraphSource, rulesForUnclassified, type LoadedSupergraph } from './supergraph-source.js';

/** The supergraph being served, for readiness and logs. */
export interface ServingSupergraphInfo {
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
  | { readonly status: 'ready'; readonly supergraph: ServingSupergraphInfo; readonly lastReloadFailure: ReloadFailure | null }
  | { readonly status: 'failed'; readonly error: string };

/** What requests are checked and decided against: one API schema with its directives. */
export interface ServedSchema {
  readonly schema: GraphQLSchema;
  readonly policy: PolicyIndex;
  readonly index: CostIndex;
  /** Short hash of the supergraph SDL it was made from. */
  readonly version: string;
  /** The domain subgraphs it routes to. */
  readonly subgraphs: readonly SubgraphEndpoint[];
  /** Which subgraphs resolve each `Type.field` (for the catalog's lineage). */
  readonly fieldOwners: ReadonlyMap<string, readonly string[]>;
  /** The subscription fields the gateway serves, and those it cannot (gateway/subscriptions/). */
  readonly subscriptions: SubscriptionRoutes;
}

export interface ServingSupergraph {
  /** Waits for the first supergraph and returns the Apollo Gateway that serves it (and every later one). */
  load(): Promise<ApolloGateway>;
  /** Once Apollo Server serves the first supergraph: files written, readiness `ready`. */
  markReady(): Promise<void>;
  /** The first supergraph could not be served. */
  markFailed(error: unknown): void;
  readiness(): GatewayReadiness;
  /** The API schema being served, with its policy and cost directives (undefined before the first). */
  served(): ServedSchema | undefined;
  /** The policy of the API schema a request runs against (the latest for a schema no longer served). */
  policyOf(schema: GraphQLSchema): PolicyIndex;
  /** The version of the supergraph an API schema was composed from (undefined for one it never served). */
  versionOf(schema: GraphQLSchema): string | undefined;
  /** One example operation per data product of the served schema, for the IDE. */
  examples(): readonly ExampleOperation[];
  close(): Promise<void>;
}

export function createServingSupergraph(options: {
  readonly config: GatewayConfig;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly buildService: (definition: ServiceEndpointDefinition) => GraphQLDataSource;
}): ServingSupergraph {
  const { config, log, metrics, buildService } = options;
  const source = createSupergraphSource(config.supergraph, log);
  const rules = config.supergraph.kind === 'file' ? rulesForUnclassified(config.supergraph.unclassified) : governanceRules;
  let state: GatewayReadiness = { status: 'composing' };
  // Each API schema served, with its directives: a request is decided by the schema it runs against.
  const bySchema = new WeakMap<GraphQLSchema, ServedSchema>();
  let latest: ServedSchema | undefined;
  // What the source read from each supergraph it loaded, so that a swap reads it once.
  const loadedBySdl = new Map<string, LoadedSupergraph>();
  let serving: LoadedSupergraph | undefined;
  let first: LoadedSupergraph | undefined;
  let examples: readonly ExampleOperation[] = [];
  let lastReloadFailure: ReloadFailure | null = null;
  let stopWatching: () => void = () => undefined;
  // The files tools read (supergraph, API schema) are written in order, and before readiness.
  let fileWrites: Promise<void> = Promise.resolve();

  const markServing = (loaded: LoadedSupergraph): ServingSupergraphInfo => {
    serving = loaded;
    const supergraph: ServingSupergraphInfo = {
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

  const onSchema = ({ apiSchema, coreSupergraphSdl }: { apiSchema: GraphQLSchema; coreSupergraphSdl: string }) => {
    const loaded = loadedBySdl.get(coreSupergraphSdl);
    loadedBySdl.delete(coreSupergraphSdl);
    const document = loaded ? undefined : parse(coreSupergraphSdl);
    latest = {
      schema: apiSchema,
      policy: loaded?.policy ?? readPolicy(document!, rules),
      index: loaded?.cost ?? readCostIndex(document!),
      version: loaded?.version ?? createHash('sha256').update(coreSupergraphSdl).digest('hex').slice(0, 12),
      subgraphs: subgraphsOfSupergraph(coreSupergraphSdl),
      fieldOwners: fieldOwnersOf(coreSupergraphSdl),
      subscriptions: subscriptionRoutesOf(apiSchema, coreSupergraphSdl),
    };
    for (const [field, why] of latest.subscriptions.unserved) log.warn({ field: `Subscription.${field}`, why }, 'a subscription field is not served');
    bySchema.set(apiSchema, latest);
    // Scalars whose specification the gateway knows are checked here, before planning.
    validateKnownScalars(apiSchema);
    // Introspection (the IDE's docs) and the API schema file say, for each field, who may read it.
    annotatePolicy(apiSchema, latest.policy);
    examples = exampleOperations(apiSchema, coreSupergraphSdl);
    const paths = config.supergraph.kind === 'file' ? { apiSchemaPath: config.apiSchemaPath } : config;
    const files = { supergraphSdl: coreSupergraphSdl, apiSchemaSdl: printSchema(apiSchema) };
    fileWrites = fileWrites
      .then(() => writeSupergraphFiles(files, paths))
      .catch((error: unknown) => log.error({ err: error }, 'the supergraph files could not be written'));
  };

  return {
    async load() {
      first = await source.first(config.composeTimeoutMs);
      if (config.supergraph.kind === 'file' && config.supergraph.unclassified !== 'deny') {
        log.warn(
          { unclassified: config.supergraph.unclassified, file: config.supergraph.path },
          `UNCLASSIFIED_FIELDS=${config.supergraph.unclassified}: fields without a classification are NOT denied; every caller meeting that treatment can read them`,
        );
      }
      // Apollo Gateway reports metrics to Apollo's servers (and probes cloud metadata addresses)
      // unless told not to: a data platform's gateway sends nothing out unless an operator opts in.
      process.env.APOLLO_TELEMETRY_DISABLED ??= 'true';
      const initial = first;
      const gateway = new ApolloGateway({
        supergraphSdl: async ({ update }) => {
          stopWatching = source.watch({
            onChange: async (next) => {
              try {
                await probeSubgraphs(next.supergraphSdl, serving?.supergraphSdl ?? '');
                loadedBySdl.set(next.supergraphSdl, next);
                update(next.supergraphSdl); // throws, keeping the serving one, when it cannot be served
                const supergraph = markServing(next);
                log.info({ version: supergraph.version, origin: supergraph.origin, subgraphs: supergraph.subgraphs }, 'supergraph reloaded');
                await fileWrites;
              } catch (error) {
                reloadFailed(error as Error, next);
              } finally {
                loadedBySdl.delete(next.supergraphSdl);
              }
            },
            onError: (error) => reloadFailed(error),
          });
          loadedBySdl.set(initial.supergraphSdl, initial);
          return { supergraphSdl: initial.supergraphSdl, cleanup: async () => stopWatching() };
        },
        buildService,
        logger: log,
      });
      gateway.onSchemaLoadOrUpdate(onSchema);
      return gateway;
    },
    async markReady() {
      await fileWrites;
      const supergraph = markServing(first!);
      log.info({ version: supergraph.version, origin: supergraph.origin, subgraphs: supergraph.subgraphs, file: config.supergraphPath }, 'supergraph loaded');
    },
    markFailed(error) {
      state = { status: 'failed', error: error instanceof Error ? error.message : String(error) };
      log.error({ err: error }, 'the gateway could not compose its supergraph');
    },
    readiness: () => state,
    served: () => latest,
    policyOf: (schema) => bySchema.get(schema)?.policy ?? latest!.policy,
    versionOf: (schema) => bySchema.get(schema)?.version,
    examples: () => examples,
    async close() {
      stopWatching();
      await source.close();
    },
  };
}
