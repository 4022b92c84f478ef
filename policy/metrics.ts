/**
 * Prometheus metrics (`prom-client`), the same names on the gateway and every subgraph, each server
 * with a registry of its own (served at `/metrics`).
 *
 * Label values stay bounded: field coordinates come from the schema; operation names come from
 * clients, so only the first 200 distinct (well-formed) names get their own series, then `other`.
 */
import type { ApolloServerPlugin } from '@apollo/server';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AuditCollector, AuditSink } from './audit.js';

const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const MAX_OPERATION_NAMES = 200;

export interface PoolStats {
  readonly total: number;
  readonly idle: number;
  readonly waiting: number;
}

export interface Metrics {
  readonly registry: Registry;
  readonly requests: Counter<'operation' | 'outcome'>;
  readonly requestSeconds: Histogram<'operation' | 'outcome'>;
  readonly subgraphFetchSeconds: Histogram<'subgraph' | 'outcome'>;
  readonly policyDecisions: Counter<'coordinate' | 'decision'>;
  readonly maskedValues: Counter<'coordinate' | 'strategy'>;
  readonly warehouseQuerySeconds: Histogram<'outcome'>;
  readonly supergraph: Gauge<'version'>;
  /** Operations refused before planning, by code (a limit, the cost budget, the rate limit, load shedding). */
  readonly refusals: Counter<'code'>;
  /** Gateway: tokens refused (HTTP 401), by reason. */
  readonly tokenRejections: Counter<'reason'>;
  /** Gateway: queries sent again after a connection reset, by subgraph. */
  readonly subgraphRetries: Counter<'subgraph'>;
  /** Gateway: each subgraph's circuit (0 closed, 1 half-open, 2 open). */
  readonly subgraphCircuit: Gauge<'subgraph'>;
  /** Gateway: rows (objects in lists) each subgraph returned, by client: the operations' actual cost. */
  readonly subgraphRows: Counter<'subgraph' | 'client'>;
  /** Gateway: estimated cost of the operations admitted, by client. */
  readonly estimatedCost: Counter<'client'>;
  /** A bounded label for a client's name (the first 200 well-formed names, then `other`). */
  clientLabel(name: string | null | undefined): string;
  /** A bounded label for a client's operation name. */
  operationLabel(name: string | null | undefined): string;
  /** Exposes an audit sink's counters (written, failed, pending) at each scrape. */
  watchAuditSink(sink: AuditSink): void;
  /** Exposes a connection pool's usage at each scrape. */
  watchPool(stats: () => PoolStats | null): void;
}

export function createMetrics(service: string): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const operations = new Set<string>();
  const clients = new Set<string>();

  const sinks: AuditSink[] = [];
  new Counter({
    name: 'mesh_audit_records_total',
    help: 'Audit records written, and writes that failed (the record is kept and retried).',
    labelNames: ['outcome'],
    registers,
    collect() {
      this.reset();
      for (const sink of sinks) {
        this.inc({ outcome: 'written' }, sink.written);
        this.inc({ outcome: 'failed' }, sink.failures);
      }
    },
  });
  new Gauge({
    name: 'mesh_audit_records_pending',
    help: 'Audit records waiting to be written (the sink is failing).',
    registers,
    collect() {
      this.set(sinks.reduce((sum, sink) => sum + sink.pending, 0));
    },
  });
  const pools: (() => PoolStats | null)[] = [];
  new Gauge({
    name: 'mesh_warehouse_connections',
    help: 'Warehouse connection pool: connections open, idle, and requests waiting for one.',
    labelNames: ['state'],
    registers,
    collect() {
      this.reset();
      for (const stats of pools.map((read) => read()).filter((s): s is PoolStats => s !== null)) {
        this.inc({ state: 'total' }, stats.total);
        this.inc({ state: 'idle' }, stats.idle);
        this.inc({ state: 'waiting' }, stats.waiting);
      }
    },
  });

  return {
    registry,
    requests: new Counter({ name: 'mesh_requests_total', help: 'GraphQL operations by name and outcome.', labelNames: ['operation', 'outcome'], registers }),
    requestSeconds: new Histogram({
      name: 'mesh_request_duration_seconds',
      help: 'GraphQL operation latency by name and outcome.',
      labelNames: ['operation', 'outcome'],
      buckets: SECONDS,
      registers,
    }),
    subgraphFetchSeconds: new Histogram({
      name: 'mesh_subgraph_fetch_duration_seconds',
      help: 'Gateway fetches to subgraphs, by subgraph and outcome (ok, errors, failed).',
      labelNames: ['subgraph', 'outcome'],
      buckets: SECONDS,
      registers,
    }),
    policyDecisions: new Counter({
      name: 'mesh_policy_decisions_total',
      help: 'Field resolutions by field and policy decision (allow, mask, deny, would-mask, would-deny).',
      labelNames: ['coordinate', 'decision'],
      registers,
    }),
    maskedValues: new Counter({ name: 'mesh_masked_values_total', help: 'Values masked, by field and strategy.', labelNames: ['coordinate', 'strategy'], registers }),
    warehouseQuerySeconds: new Histogram({
      name: 'mesh_warehouse_query_duration_seconds',
      help: 'Warehouse statements by outcome.',
      labelNames: ['outcome'],
      buckets: SECONDS,
      registers,
    }),
    supergraph: new Gauge({ name: 'mesh_supergraph_info', help: 'The supergraph version being served (1).', labelNames: ['version'], registers }),
    refusals: new Counter({
      name: 'mesh_operations_refused_total',
      help: 'Operations refused before planning, by code (limits, cost, rate, load shedding).',
      labelNames: ['code'],
      registers,
    }),
    tokenRejections: new Counter({ name: 'mesh_token_rejections_total', help: 'Bearer tokens refused with 401, by reason (expired, unknown key, bad signature, …).', labelNames: ['reason'], registers }),
    subgraphRetries: new Counter({ name: 'mesh_subgraph_retries_total', help: 'Queries sent again after a connection reset, by subgraph.', labelNames: ['subgraph'], registers }),
    subgraphCircuit: new Gauge({ name: 'mesh_subgraph_circuit_state', help: 'Circuit breaker per subgraph: 0 closed, 1 half-open (probing), 2 open (failing fast).', labelNames: ['subgraph'], registers }),
    subgraphRows: new Counter({
      name: 'mesh_subgraph_rows_total',
      help: 'Rows (objects in lists) the subgraphs returned to the gateway, by subgraph and client: the actual cost of operations.',
      labelNames: ['subgraph', 'client'],
      registers,
    }),
    estimatedCost: new Counter({
      name: 'mesh_estimated_cost_total',
      help: 'Estimated cost (@cost/@listSize) of the operations admitted, by client; compare with mesh_subgraph_rows_total.',
      labelNames: ['client'],
      registers,
    }),
    clientLabel(name) {
      if (!name) return 'none';
      if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(name)) return 'invalid';
      if (clients.has(name)) return name;
      if (clients.size >= MAX_OPERATION_NAMES) return 'other';
      clients.add(name);
      return name;
    },
    operationLabel(name) {
      if (!name) return 'anonymous';
      if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(name)) return 'invalid';
      if (operations.has(name)) return name;
      if (operations.size >= MAX_OPERATION_NAMES) return 'other';
      operations.add(name);
      return name;
    },
    watchAuditSink(sink) {
      sinks.push(sink);
    },
    watchPool(stats) {
      pools.push(stats);
    },
  };
}

/** Counts every GraphQL operation and its latency, by name and outcome. */
export function useRequestMetrics(metrics: Metrics): ApolloServerPlugin {
  return {
    async requestDidStart() {
      const started = performance.now();
      return {
        async willSendResponse({ response, operationName, request }) {
          const result = response.body.kind === 'single' ? response.body.singleResult : undefined;
          const failed = Boolean(result?.errors?.length);
          const outcome = !failed ? 'success' : result?.data ? 'partial' : 'error';
          const labels = { operation: metrics.operationLabel(operationName ?? request.operationName), outcome };
          metrics.requests.inc(labels);
          metrics.requestSeconds.observe(labels, (performance.now() - started) / 1000);
        },
      };
    },
  };
}

/** In a subgraph: the operation's policy decisions and masked values, from its audit facts. */
export function usePolicyMetrics(metrics: Metrics): ApolloServerPlugin<{ audit: AuditCollector }> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ contextValue }) {
          for (const fact of contextValue.audit.facts()) {
            metrics.policyDecisions.inc({ coordinate: fact.coordinate, decision: fact.decision }, fact.count);
            if (fact.decision === 'mask' && fact.strategy) metrics.maskedValues.inc({ coordinate: fact.coordinate, strategy: fact.strategy }, fact.count);
          }
        },
      };
    },
  };
}
