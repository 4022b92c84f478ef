/**
 * The operator's routes: `/health/live` (the process answers), `/health/ready` (a supergraph is
 * served: 200, else 503; with each subgraph's circuit and the rate-limit store's state) and
 * `/metrics` (Prometheus). None of them is shed, limited or authenticated: keep them on the internal
 * network (they hold names and counts, never values).
 */
import { Router } from 'express';
import type { Metrics } from '../../policy/metrics.js';
import type { RateLimitsStatus } from '../request-stages/rate-limits.js';
import type { GatewayReadiness } from '../supergraph/serving-supergraph.js';
import type { CircuitState } from '../subgraph-calls/subgraph-calls.js';

export function useHealthRoutes(options: {
  readonly metrics: Metrics;
  readonly readiness: () => GatewayReadiness;
  readonly circuits: () => Record<string, CircuitState>;
  readonly rateLimits: () => RateLimitsStatus;
  /** What `/metrics` answers (default: this process's registry; in a cluster, every worker's added up). */
  readonly metricsText?: () => Promise<string>;
  /** The worker this process is, in a cluster (gateway/launcher/cluster.ts). */
  readonly worker?: number;
}): Router {
  const { metrics, readiness, circuits, rateLimits } = options;
  const metricsText = options.metricsText ?? (() => metrics.registry.metrics());
  return Router()
    .get('/health/live', (_req, res) => {
      res.json({ status: 'live', service: 'gateway', ...(options.worker === undefined ? {} : { worker: options.worker }) });
    })
    .get('/health/ready', (_req, res) => {
      const state = readiness();
      res.status(state.status === 'ready' ? 200 : 503).json({ service: 'gateway', ...(options.worker === undefined ? {} : { worker: options.worker }), ...state, circuits: circuits(), rateLimits: rateLimits() });
    })
    .get('/metrics', async (_req, res, next) => {
      try {
        res.type(metrics.registry.contentType).send(await metricsText());
      } catch (error) {
        next(error);
      }
    });
}
