/**
 * A subgraph's view of its products' data quality: the runs stored with the serving warehouse (each
 * load's, rejected ones included), and the checks it runs itself on the serving version on a
 * schedule (`QUALITY_CHECK_INTERVAL_MS`; kept in memory, as a served warehouse is read-only). It
 * answers per product (status, last run, history) for the catalog, and sets the quality metrics.
 */
import { Gauge, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { Domain } from './domain.js';
import type { QualityOutcome, QualityResult } from './quality.js';
import type { QualityRun } from './quality-store.js';
import { runDomainChecks } from './warehouse/build.js';
import type { Warehouse } from './warehouse/warehouse.js';

/** What the catalog shows of one product's quality. */
export interface ProductQuality {
  /** The latest run on the serving version: `pass`, `warn` (a warning check failed) or `fail`. */
  readonly status: 'pass' | 'warn' | 'fail' | 'unknown';
  readonly lastRun: ProductRun | null;
  /** Newest first, the latest 20. */
  readonly history: readonly ProductRun[];
}

export interface ProductRun {
  readonly runId: string;
  readonly at: string;
  readonly trigger: QualityRun['trigger'];
  /** `rejected`: a load these checks kept out (the serving version stayed). */
  readonly outcome: QualityRun['outcome'];
  readonly checks: readonly QualityResult[];
}

export interface QualityMonitor {
  product(id: string): ProductQuality;
  /** A new version is served: its stored runs replace the history, its warehouse is checked from now on. */
  replace(warehouse: Warehouse<unknown>, stored: readonly QualityRun[]): void;
  stop(): void;
}

/** How many runs are kept in memory, stored and scheduled together. */
const KEPT_RUNS = 100;
const STATUS_CODE: Record<QualityOutcome, number> = { pass: 0, warn: 1, fail: 2, error: 3 };

function statusOf(checks: readonly QualityResult[]): ProductQuality['status'] {
  if (checks.some((check) => check.severity === 'error' && (check.outcome === 'fail' || check.outcome === 'error'))) return 'fail';
  if (checks.some((check) => check.outcome !== 'pass')) return 'warn';
  return 'pass';
}

export function startQualityMonitor(options: {
  readonly domain: Domain<any, any>;
  readonly warehouse: Warehouse<unknown>;
  /** The runs stored so far (the serving version's history, and a rejected load's). */
  readonly stored: readonly QualityRun[];
  /** Checks on the serving version every this many ms (0: never). */
  readonly intervalMs: number;
  readonly registry: Registry;
  readonly log: Logger;
}): QualityMonitor {
  const sorted = (stored: readonly QualityRun[]) => [...stored].sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0)).slice(-KEPT_RUNS);
  const runs: QualityRun[] = sorted(options.stored);
  let warehouse = options.warehouse;
  const checkStatus = new Gauge({
    name: 'data_quality_check_status',
    help: 'The latest outcome of each data quality check on the serving version: 0 pass, 1 warn, 2 fail, 3 error.',
    labelNames: ['product', 'check', 'dimension'],
    registers: [options.registry],
  });
  const failedRows = new Gauge({ name: 'data_quality_failed_rows', help: 'Rows failing each row-level data quality check in its latest run.', labelNames: ['product', 'check'], registers: [options.registry] });
  const lastRunAt = new Gauge({ name: 'data_quality_last_run_timestamp_seconds', help: 'When the data quality checks of a product last ran on the serving version.', labelNames: ['product'], registers: [options.registry] });

  /** The metrics follow the latest run on the serving version (a rejected load's checks are not the serving data's). */
  const publish = () => {
    const latest = [...runs].reverse().find((run) => run.outcome === 'passed' || run.trigger !== 'load');
    if (!latest) return;
    checkStatus.reset();
    failedRows.reset();
    for (const result of latest.results) {
      checkStatus.set({ product: result.product, check: result.check, dimension: result.dimension }, STATUS_CODE[result.outcome]);
      if (result.failedRows !== null) failedRows.set({ product: result.product, check: result.check }, result.failedRows);
    }
    for (const product of new Set(latest.results.map((result) => result.product))) lastRunAt.set({ product }, Date.parse(latest.at) / 1000);
  };
  publish();

  let running = false;
  const timer =
    options.intervalMs > 0
      ? setInterval(() => {
          if (running) return;
          running = true;
          runDomainChecks(options.domain, warehouse, 'scheduled')
            .then((run) => {
              runs.push(run);
              if (runs.length > KEPT_RUNS) runs.shift();
              publish();
              if (run.outcome !== 'passed') options.log.warn({ failing: run.results.filter((r) => r.outcome === 'fail' || r.outcome === 'error') }, 'scheduled data quality checks failed on the serving warehouse');
            })
            .catch((error: unknown) => options.log.error({ err: error }, 'scheduled data quality checks could not run'))
            .finally(() => {
              running = false;
            });
        }, options.intervalMs)
      : null;
  timer?.unref();

  return {
    product(id) {
      const history = runs
        .map((run): ProductRun => ({ runId: run.runId, at: run.at, trigger: run.trigger, outcome: run.outcome, checks: run.results.filter((result) => result.product === id) }))
        .filter((run) => run.checks.length > 0)
        .reverse();
      // The status is the serving version's: its latest run, not a load that was kept out.
      const serving = history.find((run) => run.outcome === 'passed' || run.trigger !== 'load') ?? null;
      return { status: serving ? statusOf(serving.checks) : 'unknown', lastRun: history[0] ?? null, history: history.slice(0, 20) };
    },
    replace(next, stored) {
      warehouse = next;
      runs.splice(0, runs.length, ...sorted(stored));
      publish();
    },
    stop() {
      if (timer) clearInterval(timer);
    },
  };
}
