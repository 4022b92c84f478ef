/**
 * The pipeline runner in the process (the embedded default): timers for the schedules, one run at a
 * time for the domain (its loads share its warehouse), a run asked for while one of the pipeline is
 * queued or running refused, a scheduled or dependent one folded into it. With a journal, the runs
 * queued or running are kept in a file (written beside it and renamed over it): a start after the
 * process stopped or died runs them again, with their trigger, range and parent (a killed backfill
 * is not lost); the load's build beside the serving version keeps a killed run harmless meanwhile.
 */
import { randomUUID } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { attempt, backoffBefore, dependentsOf, FinalRunError, keptOptions, PipelineError, rangeOf, type ParentRun, type PipelineRunner, type PipelineSpec, type RunnerOptions, type RunRange, type RunTrigger } from './runner.js';

interface Queued {
  readonly pipeline: PipelineSpec;
  readonly runId: string;
  readonly trigger: RunTrigger;
  readonly range?: RunRange;
  readonly acceptAnomalies?: boolean;
  readonly parent?: ParentRun;
}

/** A run as its journal keeps it. */
interface Journaled extends Omit<Queued, 'pipeline'> {
  readonly pipeline: string;
}

export interface LocalRunnerOptions extends RunnerOptions {
  /** Where the runs queued or running are kept across a restart (none: they are not). */
  readonly journal?: string;
}

const TRIGGERS: readonly RunTrigger[] = ['schedule', 'dependency', 'manual', 'backfill', 'event'];

/** A journal's entry as a run to queue again, or null for one this runner cannot take (an unknown pipeline, a wrong field, a range that is no range): the file is the process's own, but it is read as input. */
function journaledRun(entry: unknown, byId: ReadonlyMap<string, PipelineSpec>): { spec: PipelineSpec; trigger: RunTrigger; runId: string; more: Pick<Queued, 'range' | 'acceptAnomalies' | 'parent'> } | null {
  if (typeof entry !== 'object' || entry === null) return null;
  const { pipeline, runId, trigger, range, acceptAnomalies, parent } = entry as Partial<Record<keyof Journaled, unknown>>;
  const spec = typeof pipeline === 'string' ? byId.get(pipeline) : undefined;
  if (!spec || typeof runId !== 'string' || !TRIGGERS.includes(trigger as RunTrigger)) return null;
  let checked: RunRange | undefined;
  try {
    checked = range === undefined ? undefined : rangeOf((range as RunRange).from, (range as RunRange).to);
  } catch {
    return null;
  }
  const parentRun = parent as ParentRun | undefined;
  const validParent = parentRun !== undefined && typeof parentRun.pipeline === 'string' && typeof parentRun.runId === 'string';
  return { spec, trigger: trigger as RunTrigger, runId, more: { ...(checked ? { range: checked } : {}), ...(acceptAnomalies === true ? { acceptAnomalies: true } : {}), ...(validParent ? { parent: { pipeline: parentRun.pipeline, runId: parentRun.runId } } : {}) } };
}

export function localRunner(options: LocalRunnerOptions): PipelineRunner {
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
  /** The runs queued or running, as the journal keeps them, by run id. */
  const journaled = new Map<string, Journaled>();
  let journalWrites = Promise.resolve();
  const writeJournal = (): Promise<void> => {
    if (!options.journal) return Promise.resolve();
    const path = options.journal;
    const text = JSON.stringify([...journaled.values()]);
    journalWrites = journalWrites.then(async () => {
      await writeFile(`${path}.writing`, text);
      await rename(`${path}.writing`, path);
    });
    return journalWrites;
  };
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
    journaled.set(runId, { pipeline: pipeline.id, runId, trigger, ...more });
    void writeJournal().catch(() => undefined); // run() awaits it; a tick or a dependent does not wait
    draining ??= drain().finally(() => (draining = null));
    return true;
  };

  /** Runs one queued run to its end; false when the runner's stop cut it short (its journal keeps it). */
  async function runOne(queued: Queued): Promise<boolean> {
    if (paused.has(queued.pipeline.id)) {
      emit(queued, 0, 'skipped');
      return true;
    }
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
        return true;
      } catch (error) {
        if (stopping.signal.aborted && options.journal) return false; // stopped: its journal runs it again at the next start
        if (number >= queued.pipeline.attempts || stopping.signal.aborted || error instanceof FinalRunError) {
          emit(queued, number, 'failed', error);
          return true;
        }
        emit(queued, number, 'retrying', error);
        await sleep(backoffBefore(queued.pipeline, number), undefined, { signal: stopping.signal }).catch(() => undefined);
      }
    }
  }

  async function drain(): Promise<void> {
    for (let queued = queue.shift(); queued; queued = queue.shift()) {
      let ended = false;
      try {
        ended = await runOne(queued);
      } finally {
        pending.delete(queued.pipeline.id);
        if (ended) {
          journaled.delete(queued.runId);
          await writeJournal().catch(() => undefined);
        }
      }
    }
  }

  return {
    kind: 'local',
    async start() {
      stopping = new AbortController();
      // The runs a stop or a crash left: run again, first.
      if (options.journal) {
        // None yet, or one that is not JSON (written by hand, a damaged disk): nothing to run again.
        const left = await readFile(options.journal, 'utf8').then(
          (text) => {
            try {
              return JSON.parse(text) as unknown;
            } catch {
              return [];
            }
          },
          () => [],
        );
        for (const entry of Array.isArray(left) ? left : []) {
          const again = journaledRun(entry, byId);
          if (again) enqueue(again.spec, again.trigger, again.runId, again.more);
        }
      }
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
      await journalWrites; // kept before it is said to be queued
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
      for (const dropped of queue.splice(0)) pending.delete(dropped.pipeline.id); // still journaled: the next start runs them
      await draining;
      await journalWrites.catch(() => undefined);
    },
  };
}
