/**
 * What a subgraph's /metrics says of its pipelines' runs: runs by trigger and outcome, their
 * durations, each pipeline's last success and its schedule (the alert rules compare the two:
 * gateway/observability/alerts.yml).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Anomaly } from './anomalies.js';
import type { PipelineSpec, RunEvent } from './runner.js';

export interface PipelineMetrics {
  /** Counts a run's event. */
  readonly run: (event: RunEvent) => void;
  /** Counts the anomalies found in a run of a pipeline. */
  readonly anomalies: (pipeline: string, found: readonly Anomaly[]) => void;
}

export function pipelineMetrics(registry: Registry, pipelines: readonly PipelineSpec[], lastLoadedAt: () => string | null): PipelineMetrics {
  const runs = new Counter({ name: 'pipeline_runs_total', help: 'Pipeline runs ended, by trigger and outcome (succeeded, failed, skipped while paused).', labelNames: ['pipeline', 'trigger', 'outcome'], registers: [registry] });
  const duration = new Histogram({ name: 'pipeline_run_duration_seconds', help: 'How long each pipeline run took, its attempts and their backoff included.', labelNames: ['pipeline', 'outcome'], buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600], registers: [registry] });
  const lastSuccess = new Gauge({ name: 'pipeline_last_success_timestamp_seconds', help: "When each pipeline last succeeded (at start: the serving version's load).", labelNames: ['pipeline'], registers: [registry] });
  const anomalies = new Counter({ name: 'pipeline_run_anomalies_total', help: "Measures of runs outside the band the product's own history predicts, by measure and kind (above, below, frozen).", labelNames: ['pipeline', 'measure', 'kind'], registers: [registry] });
  const schedule = new Gauge({ name: 'pipeline_schedule_seconds', help: 'Each scheduled pipeline\'s interval.', labelNames: ['pipeline'], registers: [registry] });
  const loaded = lastLoadedAt();
  for (const pipeline of pipelines) {
    if (pipeline.everyMs !== null) schedule.set({ pipeline: pipeline.id }, pipeline.everyMs / 1000);
    if (loaded) lastSuccess.set({ pipeline: pipeline.id }, Date.parse(loaded) / 1000);
    for (const outcome of ['succeeded', 'failed']) runs.inc({ pipeline: pipeline.id, trigger: 'schedule', outcome }, 0);
    for (const kind of ['above', 'below']) anomalies.inc({ pipeline: pipeline.id, measure: 'rows', kind }, 0);
  }
  const startedAt = new Map<string, number>();
  const run = (event: RunEvent) => {
    if (event.event === 'started' && event.attempt === 1) startedAt.set(event.runId, Date.parse(event.at));
    if (event.event !== 'succeeded' && event.event !== 'failed' && event.event !== 'skipped') return;
    runs.inc({ pipeline: event.pipeline, trigger: event.trigger, outcome: event.event });
    const started = startedAt.get(event.runId);
    startedAt.delete(event.runId);
    if (started !== undefined && event.event !== 'skipped') duration.observe({ pipeline: event.pipeline, outcome: event.event }, (Date.parse(event.at) - started) / 1000);
    if (event.event === 'succeeded') lastSuccess.set({ pipeline: event.pipeline }, Date.parse(event.at) / 1000);
  };
  return {
    run,
    anomalies: (pipeline, found) => {
      for (const anomaly of found) anomalies.inc({ pipeline, measure: anomaly.measure, kind: anomaly.kind });
    },
  };
}
