/**
 * The pipeline runner in the process (the embedded default): timers for the schedules, one run at a
 * time for the domain (its loads share its warehouse), a run asked for while one of the pipeline is
 * queued or running refused, a scheduled or dependent one folded into it. Runs are not kept across a
 * restart: the load's build beside the serving version is what keeps a killed run harmless.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { attempt, backoffBefore, dependentsOf, FinalRunError, keptOptions, PipelineError, type ParentRun, type PipelineRunner, type PipelineSpec, type RunnerOptions, type RunRange, type RunTrigger } from './runner.js';

interface Queued {
  readonly pipeline: PipelineSpec;
  readonly runId: string;
  readonly trigger: RunTrigger;
  readonly range?: RunRange;
  readonly acceptAnomalies?: boolean;
  readonly parent?: ParentRun;
}

export function localRunner(options: RunnerOptions): PipelineRunner {
  const byId = new Map(options.pipelines.map((pipeline) => [pipeline.id, pipeline]));
  const dependents = dependentsOf(options.pipelines);
  const paused = new Set<string>();
  const queue: Queued[] = [];
  /** Pipelines with a run queued or running. */
  const pending = new Set<string>();
  const timers: NodeJS.Timeout[] = [];
  /** When each schedule ticks next (ms since the epoch). */
  const nextAt = new Map<string, number>();
  let stopping = new AbortController();
  let draining: Promise<void> | null = null;
  const emit = (queued: Queued, attemptNumber: number, event: 'started' | 'succeeded' | 'retrying' | 'failed' | 'skipped', error?: unknown) =>
    options.onEvent?.({
      pipeline: queued.pipeline.id,
      runId: queued.runId,
      trigger: queued.trigger,
      attempt: attemptNumber,
      event,
      at: new Date().toISOString(),
      ...(error ? { error: error instanceof Error ? error.message : String(error) } : {}),
      ...(queued.range ? { range: queued.range } : {}),
      ...(queued.acceptAnomalies ? { acceptAnomalies: true } : {}),
      ...(queued.parent ? { parent: queued.parent } : {}),
    });

  const known = (id: string) => {
    const pipeline = byId.get(id);
    if (!pipeline) throw new PipelineError('PIPELINE_UNKNOWN', `No pipeline "${id.slice(0, 100)}"; pipelines: ${[...byId.keys()].join(', ')}.`);
    return pipeline;
  };

  /** Queues a run unless one of the pipeline is pending; true when queued. */
  const enqueue = (pipeline: PipelineSpec, trigger: RunTrigger, runId: string = randomUUID(), more: Pick<Queued, 'range' | 'acceptAnomalies' | 'parent'> = {}): boolean => {
    if (pending.has(pipeline.id) || stopping.signal.aborted) return false;
    pending.add(pipeline.id);
    queue.push({ pipeline, runId, trigger, ...more });
    draining ??= drain().finally(() => (draining = null));
    return true;
  };

  async function runOne(queued: Queued): Promise<void> {
    if (paused.has(queued.pipeline.id)) return emit(queued, 0, 'skipped');
    for (let number = 1; ; number++) {
      emit(queued, number, 'started');
      try {
        const { range, acceptAnomalies, parent } = queued;
        await attempt(
          options.work,
          { pipeline: queued.pipeline.id, runId: queued.runId, trigger: queued.trigger, attempt: number, ...(range ? { range } : {}), ...(acceptAnomalies ? { acceptAnomalies } : {}), ...(parent ? { parent } : {}) },
          queued.pipeline.timeoutMs,
          stopping.signal,
        );
        emit(queued, number, 'succeeded');
        for (const next of dependents.get(queued.pipeline.id) ?? []) enqueue(byId.get(next)!, 'dependency', randomUUID(), { parent: { pipeline: queued.pipeline.id, runId: queued.runId } });
        return;
      } catch (error) {
        if (number >= queued.pipeline.attempts || stopping.signal.aborted || error instanceof FinalRunError) return emit(queued, number, 'failed', error);
        emit(queued, number, 'retrying', error);
        await sleep(backoffBefore(queued.pipeline, number), undefined, { signal: stopping.signal }).catch(() => undefined);
      }
    }
  }

  async function drain(): Promise<void> {
    for (let queued = queue.shift(); queued; queued = queue.shift()) {
      try {
        await runOne(queued);
      } finally {
        pending.delete(queued.pipeline.id);
      }
    }
  }

  return {
    kind: 'local',
    async start() {
      stopping = new AbortController();
      for (const pipeline of options.pipelines) {
        const every = pipeline.everyMs;
        if (every === null) continue;
        nextAt.set(pipeline.id, Date.now() + every);
        timers.push(
          setInterval(() => {
            nextAt.set(pipeline.id, Date.now() + every);
            enqueue(pipeline, 'schedule');
          }, every),
        );
      }
    },
    async run(id, trigger = 'manual', runOptions) {
      const pipeline = known(id);
      if (paused.has(id)) throw new PipelineError('PIPELINE_PAUSED', `"${id}" is paused: resume it first.`);
      const runId = randomUUID();
      if (!enqueue(pipeline, trigger, runId, keptOptions(trigger, runOptions))) throw new PipelineError('PIPELINE_RUN_OVERLAPS', `A run of "${id}" is already queued or running.`);
      return runId;
    },
    async pause(id) {
      paused.add(known(id).id);
    },
    async resume(id) {
      paused.delete(known(id).id);
    },
    async paused() {
      return [...paused].sort();
    },
    async status(id) {
      known(id);
      const next = nextAt.get(id);
      return { nextRunAt: next === undefined ? null : new Date(next).toISOString(), paused: paused.has(id) };
    },
    async stop() {
      for (const timer of timers.splice(0)) clearInterval(timer);
      stopping.abort();
      for (const dropped of queue.splice(0)) pending.delete(dropped.pipeline.id);
      await draining;
    },
  };
}
