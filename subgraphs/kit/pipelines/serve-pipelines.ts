/**
 * A serving subgraph's pipelines: its domain's products' runs (plan.ts), on the runner the
 * environment chooses (runner-config.ts), each run loading through `load` (the caller's: it knows
 * where the raw files are and how the domain is configured) and serving the version it made without
 * a restart; every run that ends kept in the run log with what its load did and the anomalies its
 * measures show against the product's history; a replica that did not run a run serving the
 * version it made. `subgraphs/main.ts` starts them for `npm run subgraph`; tests start them on a
 * test mesh's subgraph.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Domain } from '../domain.js';
import { loadFactsAt } from '../freshness.js';
import { profilesAt } from '../profiles.js';
import type { RunningServer } from '../subgraph-server.js';
import { qualityHistoryAt, type WarehouseBuild } from '../warehouse/build.js';
import { openWarehouse } from '../warehouse/open.js';
import { detectAnomalies, runMeasuresOf } from './anomalies.js';
import { pipelinesOf } from './plan.js';
import { pipelineRunnerFromEnv, pipelinesEveryFromEnv } from './runner-config.js';
import { openRunLog, type RunDetails } from './run-log.js';
import { PipelineError, rangeOf, type PipelineRunner, type RunTrigger } from './runner.js';
import type { Backfill } from '../warehouse/build.js';
import { pipelineRunLineage, type LineageEvent, type LineageParent } from '../lineage.js';

/** What a run's load did: a new version swapped in, rejected, failed (none: the serving one is current). */
export interface PipelineLoad {
  readonly outcome: 'swapped' | 'rejected' | 'failed';
  readonly build: WarehouseBuild;
}

/** What a run asks of the domain's load. */
export interface LoadRequest {
  readonly trigger: RunTrigger;
  /** A backfill of a range: the table, its time column and the days. */
  readonly range?: Backfill;
  /** The run, the parent of the load's lineage. */
  readonly run: LineageParent;
}

export interface ServePipelinesOptions {
  readonly domain: Domain<any, any>;
  readonly server: RunningServer;
  /** The domain's warehouse. */
  readonly url: string;
  /** Where the run log is kept (`<dataDir>/pipelines/<domain>.jsonl`). */
  readonly dataDir: string;
  readonly log: Logger;
  /** One load of the domain for a run (`backfill`: every file again, or with `range` that range of one table only); undefined when the serving version is current. */
  readonly load: (request: LoadRequest) => Promise<PipelineLoad | undefined>;
  /** Given each run's OpenLineage events (its START, then COMPLETE or FAIL; lineage.ts). */
  readonly onLineage?: (events: readonly LineageEvent[]) => void;
  readonly env?: NodeJS.ProcessEnv;
}

export async function servePipelines(options: ServePipelinesOptions): Promise<PipelineRunner> {
  const { domain, server, url, log } = options;
  const env = options.env ?? process.env;
  const pipelines = pipelinesOf(domain, { everySeconds: pipelinesEveryFromEnv(env) });
  const runLog = await openRunLog(join(options.dataDir, 'pipelines', `${domain.name}.jsonl`));
  /** A product's table and the time column its SLA's latency names: what a backfill of a range reloads by. */
  const rangedBy = (pipeline: string): { table: string; column: string } | null => {
    const spec = domain.dataProducts.find((product) => `${domain.name}.${product.spec.name}` === pipeline)?.spec;
    const column = spec?.metadata.sla.find((promise) => promise.property === 'latency' && promise.element)?.element;
    return spec && column ? { table: spec.table, column } : null;
  };
  /** What each run's load did, until the run's end is recorded. */
  const loadsOf = new Map<string, RunDetails>();
  /** When the version this process serves was loaded. */
  let servedLoadedAt = (await loadFactsAt(url, domain)).loadedAt;
  /** Serves the warehouse's current version, with its facts, profiles and quality history (refused: the serving version stays). */
  const serveCurrent = async () => {
    const [facts, profiles, qualityHistory] = await Promise.all([loadFactsAt(url, domain), profilesAt(url), qualityHistoryAt(url)]);
    const next = openWarehouse(url);
    await server.swap({ warehouse: next, qualityHistory, loadFacts: facts, profiles }).catch(async (error: unknown) => {
      await next.close(); // refused (its profiles break the policy): the serving version stays
      throw error;
    });
    servedLoadedAt = facts.loadedAt;
    return { facts, profiles };
  };
  /** Another replica's run ended: serve the version it made, if it made one, and read the runs it recorded. */
  let catchingUp = Promise.resolve();
  const catchUp = () => {
    catchingUp = catchingUp
      .then(async () => {
        await runLog.reload();
        const { loadedAt } = await loadFactsAt(url, domain);
        if (loadedAt !== servedLoadedAt) {
          await serveCurrent();
          log.info({ loadedAt }, "serving the version another replica's pipeline run made");
        }
      })
      .catch((error: unknown) => log.error({ err: error }, "the version another replica's run made could not be served"));
  };
  const runner = pipelineRunnerFromEnv(
    {
      domain: domain.name,
      pipelines,
      work: async ({ trigger, runId, pipeline, range }) => {
        const by = range ? rangedBy(pipeline) : null;
        const prepared = await options.load({ trigger, ...(range && by ? { range: { ...by, ...range } } : {}), run: { pipeline, runId } });
        const outcome = prepared?.outcome;
        const table = domain.dataProducts.find(({ spec }) => `${domain.name}.${spec.name}` === pipeline)?.spec.table;
        const changes = table ? prepared?.build.incremental?.changes[table] : undefined;
        const increment = prepared?.build.incremental ? { inserted: changes?.inserted ?? 0, updated: changes?.updated ?? 0, deleted: changes?.deleted ?? 0, watermark: prepared.build.watermark ?? null } : undefined;
        loadsOf.set(runId, { load: outcome ?? 'current', rows: null });
        if (outcome === 'failed') throw new Error(`the ${domain.name} load failed (see the log); the serving version stays`);
        if (outcome !== 'swapped') return;
        const { facts, profiles } = await serveCurrent();
        const profiled = profiles.find((profile) => profile.table === table);
        // The new version's measures against what the product's own runs predict: warnings, in the run's record and the log.
        const measures = profiled && facts.loadedAt ? runMeasuresOf(profiled, facts.loadedAt, facts.newest[pipeline] ?? null) : undefined;
        const history = runLog.runs(pipeline).flatMap((past) => (past.measures ? [past.measures] : [])).reverse();
        const anomalies = measures ? detectAnomalies(history, measures) : [];
        for (const anomaly of anomalies) log.warn({ pipeline, measure: anomaly.measure, kind: anomaly.kind, value: anomaly.value, band: anomaly.band }, `data anomaly: ${anomaly.message}`);
        server.recordAnomalies(pipeline, anomalies);
        loadsOf.set(runId, { load: 'swapped', rows: profiled?.rows ?? null, ...(measures ? { measures, anomalies } : {}), ...(increment ? { increment } : {}) });
      },
      onEvent: (event) => {
        server.recordRun(event);
        const lineage = options.onLineage && pipelineRunLineage(event);
        if (lineage) options.onLineage!([lineage]);
        const ended = event.event === 'succeeded' || event.event === 'failed' || event.event === 'skipped';
        runLog.record(event, ended ? loadsOf.get(event.runId) : undefined).catch((error: unknown) => log.error({ err: error }, 'a pipeline run could not be recorded'));
        if (ended) loadsOf.delete(event.runId);
        log[event.event === 'failed' ? 'error' : event.event === 'retrying' ? 'warn' : 'info']({ pipeline: event.pipeline, run: event.runId, trigger: event.trigger, attempt: event.attempt, ...(event.error ? { error: event.error } : {}) }, `pipeline run ${event.event}`);
      },
      onRunEndedAnywhere: catchUp,
    },
    env,
  );
  await runner.start();
  server.attachPipelines({
    async status(productId) {
      const pipeline = pipelines.find((candidate) => candidate.id === productId);
      if (!pipeline) return null;
      const { nextRunAt, paused } = await runner.status(productId);
      return { everySeconds: pipeline.everyMs === null ? null : pipeline.everyMs / 1000, nextRunAt, paused, runs: runLog.runs(productId).slice(0, 20) };
    },
    run: (pipeline) => runner.run(pipeline),
    backfill: async (pipeline, from, to) => {
      if (!pipelines.some(({ id }) => id === pipeline)) return runner.run(pipeline, 'backfill'); // refused as unknown, as any run
      if (from === undefined && to === undefined) return runner.run(pipeline, 'backfill');
      const range = rangeOf(from, to);
      if (!rangedBy(pipeline)) throw new PipelineError('PIPELINE_RANGE_INVALID', `${pipeline}'s SLA names no time column (a latency element): backfill it whole, without --from and --to.`);
      return runner.run(pipeline, 'backfill', range);
    },
    pause: (pipeline) => runner.pause(pipeline),
    resume: (pipeline) => runner.resume(pipeline),
  });
  return runner;
}
