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
import { latencyColumnOf, loadFactsAt } from '../freshness.js';
import { profilesAt } from '../profiles.js';
import type { RunningServer } from '../subgraph-server.js';
import { qualityHistoryAt, type WarehouseBuild } from '../warehouse/build.js';
import { openWarehouse } from '../warehouse/open.js';
import { anomalyResult, detectAnomalies, runMeasuresOf, type Anomaly, type RunMeasures } from './anomalies.js';
import type { QualityResult } from '../quality.js';
import { pipelinesOf } from './plan.js';
import { pipelineRunnerFromEnv, pipelinesEveryFromEnv, sharedRunLogFromEnv } from './runner-config.js';
import { openRunLog, type RunDetails } from './run-log.js';
import { FinalRunError, PipelineError, rangeOf, type PipelineRunner, type RunTrigger } from './runner.js';
import type { Backfill, VersionGate } from '../warehouse/build.js';
import { sql } from 'kysely';
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
  /** Judges the new version before it is swapped in: the product's anomalies against its history (errors reject it). */
  readonly gate: VersionGate;
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
  /** Told when this process serves a new version (its run's, or another replica's): its change events are published then. */
  readonly onServed?: () => void;
  readonly env?: NodeJS.ProcessEnv;
}

/** The runner of a domain's pipelines, served. */
export interface ServedPipelines extends PipelineRunner {
  /** Asks for a run (after the one queued or running, if any) and resolves when it ends in this process (rejects when it failed). */
  runToEnd(pipeline: string, trigger: 'manual' | 'event'): Promise<void>;
}

export async function servePipelines(options: ServePipelinesOptions): Promise<ServedPipelines> {
  const { domain, server, url, log } = options;
  const env = options.env ?? process.env;
  const pipelines = pipelinesOf(domain, { everySeconds: pipelinesEveryFromEnv(env) });
  const runLog = await openRunLog(join(options.dataDir, 'pipelines', `${domain.name}.jsonl`), sharedRunLogFromEnv(domain.name, pipelines.map(({ id }) => id), env));
  /** A pipeline's data product. */
  const productOf = (pipeline: string) => domain.dataProducts.find(({ spec }) => `${domain.name}.${spec.name}` === pipeline)?.spec;
  /** A product's table and the time column its SLA's latency names: what a backfill of a range reloads by. */
  const rangedBy = (pipeline: string): { table: string; column: string } | null => {
    const spec = productOf(pipeline);
    const column = spec && latencyColumnOf(spec.metadata.sla);
    return spec && column ? { table: spec.table, column } : null;
  };
  /** A run's anomalies: in the log (errors as errors) and in /metrics. */
  const report = (pipeline: string, anomalies: readonly Anomaly[]) => {
    for (const anomaly of anomalies) log[anomaly.severity === 'error' ? 'error' : 'warn']({ pipeline, measure: anomaly.measure, kind: anomaly.kind, severity: anomaly.severity, value: anomaly.value, band: anomaly.band }, `data anomaly: ${anomaly.message}`);
    server.recordAnomalies(pipeline, anomalies);
  };
  /**
   * A product's measures of the versions it judged, oldest first, since the domain's last load an
   * operator accepted (whichever product's run made it: its measures start a new baseline).
   */
  const historyOf = (productId: string): RunMeasures[] => {
    const accepted = pipelines
      .flatMap(({ id }) => runLog.runs(id))
      .filter((run) => run.anomaliesAccepted && run.load === 'swapped')
      .reduce<string | null>((latest, run) => (latest === null || run.endedAt > latest ? run.endedAt : latest), null);
    return runLog
      .runs(productId)
      .filter((run) => run.measures && (accepted === null || run.endedAt >= accepted))
      .map((run) => run.measures!)
      .reverse();
  };
  /** Runs asked by `runToEnd`, until they end. */
  const awaited = new Map<string, { resolve: () => void; reject: (error: Error) => void }>();
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
    options.onServed?.();
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
      // The runs queued or running when the process stops or dies, run again when it starts.
      journal: join(options.dataDir, 'pipelines', `${domain.name}.queue.json`),
      work: async ({ trigger, runId, pipeline, range, acceptAnomalies }) => {
        const by = range ? rangedBy(pipeline) : null;
        const product = productOf(pipeline);
        // The new version, judged before it is swapped in: each product's measures against what its
        // own runs predict; any product's declared errors reject the load (it swaps every table at
        // once), the rest are warnings; the run's own product's measures join its history.
        let judged: { measures: RunMeasures; anomalies: Anomaly[] } | undefined;
        const gate: VersionGate = async ({ db, profiles, builtAt, changes }) => {
          const blocking: QualityResult[] = [];
          for (const { spec } of domain.dataProducts) {
            const id = `${domain.name}.${spec.name}`;
            const profiled = profiles.find((profile) => profile.product === id);
            if (!profiled) continue;
            const element = latencyColumnOf(spec.metadata.sla);
            const newest = element ? (await sql<{ newest: unknown }>`select max(${sql.ref(element)}) as newest from ${sql.table(spec.table)}`.execute(db)).rows[0]?.newest : null;
            const changed = changes?.[spec.table];
            const measures: RunMeasures = {
              ...runMeasuresOf(profiled, builtAt.toISOString(), newest === null || newest === undefined ? null : newest instanceof Date ? newest.toISOString() : String(newest)),
              ...(changed ? { increment: changed.inserted + changed.updated + changed.deleted } : {}),
            };
            // Accepted: reported as warnings, none rejects the load.
            const anomalies = detectAnomalies(historyOf(id), measures, { errors: acceptAnomalies ? [] : (pipelines.find((candidate) => candidate.id === id)?.anomalyErrors ?? []) });
            if (id === pipeline) judged = { measures, anomalies };
            blocking.push(...anomalies.filter((anomaly) => anomaly.severity === 'error').map((anomaly) => anomalyResult(id, anomaly)));
          }
          return blocking;
        };
        const prepared = await options.load({ trigger, ...(range && by ? { range: { ...by, ...range } } : {}), run: { pipeline, runId }, gate });
        const outcome = prepared?.outcome;
        const changes = product ? prepared?.build.incremental?.changes[product.table] : undefined;
        const increment = prepared?.build.incremental ? { inserted: changes?.inserted ?? 0, updated: changes?.updated ?? 0, deleted: changes?.deleted ?? 0, watermark: prepared.build.watermark ?? null } : undefined;
        const anomalies = judged?.anomalies ?? [];
        const read = product ? prepared?.build.rows?.[product.table] : undefined;
        const quality = prepared?.build.quality ? { runId: prepared.build.quality.runId, outcome: prepared.build.quality.outcome } : undefined;
        const made = { ...(read !== undefined ? { read } : {}), ...(quality ? { quality } : {}) };
        report(pipeline, anomalies);
        // Only a version served joins the history the next runs are judged by.
        loadsOf.set(runId, { load: outcome ?? 'current', rows: null, ...made, ...(anomalies.length > 0 ? { anomalies } : {}) });
        if (outcome === 'failed') throw new Error(`the ${domain.name} load failed (see the log); the serving version stays`);
        if (outcome === 'rejected') {
          const failing = prepared!.build.quality?.results.filter((result) => result.severity === 'error' && (result.outcome === 'fail' || result.outcome === 'error')) ?? [];
          // Its data would be rejected again: no retry; the run fails, and its dependents do not follow.
          throw new FinalRunError(`the ${domain.name} load was rejected by ${failing.map((result) => `${result.product} ${result.check}`).join(', ') || 'its quality checks'}; kept aside at ${prepared!.build.rejectedKeptAt}, the serving version stays`);
        }
        if (outcome !== 'swapped') {
          // Nothing new: the version served, if another product's run made it and this product's runs have
          // not measured it yet, is measured now (its anomalies warnings: it is served already).
          if (outcome === undefined && product) {
            const facts = await loadFactsAt(url, domain);
            const measured = runLog.runs(pipeline).find((run) => run.measures);
            const profiled = (await profilesAt(url)).find((profile) => profile.product === pipeline);
            if (facts.loadedAt && profiled && (!measured || Date.parse(measured.measures!.at) < Date.parse(facts.loadedAt))) {
              const measures = runMeasuresOf(profiled, new Date(facts.loadedAt).toISOString(), facts.newest[pipeline] ?? null);
              const found = detectAnomalies(historyOf(pipeline), measures);
              report(pipeline, found);
              loadsOf.set(runId, { load: 'current', rows: profiled.rows, measures, anomalies: found });
            }
          }
          return;
        }
        const { profiles } = await serveCurrent();
        const profiled = profiles.find((profile) => profile.product === pipeline);
        loadsOf.set(runId, { load: 'swapped', rows: profiled?.rows ?? null, ...made, ...(judged ? { measures: judged.measures, anomalies } : {}), ...(increment ? { increment } : {}) });
      },
      onEvent: (event) => {
        server.recordRun(event);
        const lineage = options.onLineage && pipelineRunLineage(event);
        if (lineage) options.onLineage!([lineage]);
        const ended = event.event === 'succeeded' || event.event === 'failed' || event.event === 'skipped';
        runLog.record(event, ended ? loadsOf.get(event.runId) : undefined).catch((error: unknown) => log.error({ err: error }, 'a pipeline run could not be recorded'));
        if (ended) loadsOf.delete(event.runId);
        if (ended) {
          const waiter = awaited.get(event.runId);
          awaited.delete(event.runId);
          if (event.event === 'failed') waiter?.reject(new Error(event.error ?? `run ${event.runId} failed`));
          else waiter?.resolve();
        }
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
    run: (pipeline, { acceptAnomalies } = {}) => runner.run(pipeline, 'manual', { acceptAnomalies: acceptAnomalies === true }),
    backfill: async (pipeline, { from, to, acceptAnomalies } = {}) => {
      const accept = { acceptAnomalies: acceptAnomalies === true };
      if (!pipelines.some(({ id }) => id === pipeline)) return runner.run(pipeline, 'backfill'); // refused as unknown, as any run
      if (from === undefined && to === undefined) return runner.run(pipeline, 'backfill', accept);
      const range = rangeOf(from, to);
      if (!rangedBy(pipeline)) throw new PipelineError('PIPELINE_RANGE_INVALID', `${pipeline}'s SLA names no time column (a latency element): backfill it whole, without --from and --to.`);
      return runner.run(pipeline, 'backfill', { range, ...accept });
    },
    pause: (pipeline) => runner.pause(pipeline),
    resume: (pipeline) => runner.resume(pipeline),
  });
  // Stopping the pipelines stops the runner, then lets go of the shared history.
  return {
    ...runner,
    async runToEnd(pipeline, trigger) {
      // A run queued or running may have listed the increments before the one to merge was written: the next run merges it.
      for (;;) {
        try {
          const runId = await runner.run(pipeline, trigger);
          return await new Promise<void>((resolve, reject) => awaited.set(runId, { resolve, reject }));
        } catch (error) {
          if (!(error instanceof PipelineError) || error.code !== 'PIPELINE_RUN_OVERLAPS') throw error;
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      }
    },
    async stop() {
      for (const waiter of awaited.values()) waiter.reject(new Error('the pipelines stopped'));
      awaited.clear();
      await runner.stop();
      await runLog.close();
    },
  };
}
