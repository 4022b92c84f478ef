/**
 * The operator's routes: `/health/live` (the process answers), `/health/ready` (a supergraph is
 * served: 200, else 503; with each subgraph's circuit and the rate-limit store's state) and
 * `/metrics` (Prometheus). None of them is shed, limited or authenticated: keep them on the internal
 * network (they hold names and counts, never values).
 */
import { Router } from 'express';
import type { Metrics } from '../policy/metrics.js';
import type { RateLimitsStatus } from './rate-limits.js';
import type { GatewayReadiness } from './serving-supergraph.js';
import type { CircuitState } from './subgraph-calls.js';

export function useHealthRoutes(options: {
  readonly metrics: Metrics;
  readonly readiness: () => GatewayReadiness;
  readonly circuits: () => Record<string, CircuitState>;
  readonly rateLimits: () => RateLimitsStatus;
}): Router {
  const { metrics, readiness, circuits, rateLimits } = options;
  return Router()
    .get('/health/live', (_req, res) => {
      res.json({ status: 'live', service: 'gateway' });
    })
    .get('/health/ready', (_req, res) => {
      const state = readiness();
      res.status(state.status === 'ready' ? 200 : 503).json({ service: 'gateway', ...state, circuits: circuits(), rateLimits: rateLimits() });
    })
    .get('/metrics', async (_req, res) => {
      res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    });
}
