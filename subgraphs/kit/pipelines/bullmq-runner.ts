/**
 * The pipeline runner on Redis, with BullMQ, for a domain's replicas: one queue per domain with a
 * global concurrency of one (its loads share its warehouse, whichever replica runs them); each
 * schedule a BullMQ job scheduler (one job per tick, however many replicas upsert it); a pipeline's
 * jobs deduplicated by its address (a run queued or running absorbs the next tick or dependency, and
 * refuses a run asked for); retries with exponential backoff by BullMQ; a job whose process dies is
 * found stalled and run again. Paused pipelines are a Redis set beside the queue.
 */
import { Queue, QueueEvents, UnrecoverableError, Worker, type Job, type JobsOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { attempt, dependentsOf, FinalRunError, keptOptions, PipelineError, type ParentRun, type PipelineRunner, type PipelineSpec, type RunEvent, type RunnerOptions, type RunRange, type RunTrigger } from './runner.js';

export interface BullmqRunnerOptions extends RunnerOptions {
  /** The Redis server (`redis://host:6379/0`). */
  readonly redisUrl: string;
  /** The queue: one per domain. */
  readonly queue: string;
  /** Keys' prefix (default `mesh-pipelines`): tests and meshes sharing a server use their own. */
  readonly prefix?: string;
}

interface JobData {
  readonly trigger: RunTrigger;
  readonly range?: RunRange;
  readonly acceptAnomalies?: boolean;
  readonly parent?: ParentRun;
}

export function bullmqRunner(options: BullmqRunnerOptions): PipelineRunner {
  const prefix = options.prefix ?? 'mesh-pipelines';
  const byId = new Map(options.pipelines.map((pipeline) => [pipeline.id, pipeline]));
  const dependents = dependentsOf(options.pipelines);
  const redis = new Redis(options.redisUrl, { maxRetriesPerRequest: null, lazyConnect: true });
  const connection = { url: options.redisUrl, maxRetriesPerRequest: null } as never;
  const queue = new Queue<JobData>(options.queue, { connection, prefix });
  const pausedKey = `${prefix}:${options.queue}:paused-pipelines`;
  let stopping = new AbortController();
  let worker: Worker<JobData> | null = null;
  let events: QueueEvents | null = null;

  const jobOptions = (pipeline: PipelineSpec): JobsOptions => ({
    attempts: pipeline.attempts,
    backoff: { type: 'exponential', delay: pipeline.backoffMs },
    deduplication: { id: pipeline.id },
    removeOnComplete: 1_000,
    removeOnFail: 1_000,
  });
  const emit = (job: Job<JobData>, event: RunEvent['event'], error?: unknown) =>
    options.onEvent?.({
      pipeline: job.name,
      runId: job.id!,
      trigger: job.data.trigger,
      attempt: job.attemptsMade + 1,
      event,
      at: new Date().toISOString(),
      ...(error ? { error: error instanceof Error ? error.message : String(error) } : {}),
      ...(job.data.range ? { range: job.data.range } : {}),
      ...(job.data.acceptAnomalies ? { acceptAnomalies: true } : {}),
      ...(job.data.parent ? { parent: job.data.parent } : {}),
    });
  const known = (id: string) => {
    const pipeline = byId.get(id);
    if (!pipeline) throw new PipelineError('PIPELINE_UNKNOWN', `No pipeline "${id.slice(0, 100)}"; pipelines: ${[...byId.keys()].join(', ')}.`);
    return pipeline;
  };
  const isPaused = async (id: string) => (await redis.sismember(pausedKey, id)) === 1;

  async function process(job: Job<JobData>): Promise<void> {
    const pipeline = byId.get(job.name);
    if (!pipeline) return; // declared by another version of the domain: nothing to do here
    if (await isPaused(pipeline.id)) return void emit(job, 'skipped');
    emit(job, 'started');
    try {
      const { range, acceptAnomalies, parent } = job.data;
      await attempt(
        options.work,
        { pipeline: pipeline.id, runId: job.id!, trigger: job.data.trigger, attempt: job.attemptsMade + 1, ...(range ? { range } : {}), ...(acceptAnomalies ? { acceptAnomalies } : {}), ...(parent ? { parent } : {}) },
        pipeline.timeoutMs,
        stopping.signal,
      );
    } catch (error) {
      const final = error instanceof FinalRunError;
      emit(job, job.attemptsMade + 1 < pipeline.attempts && !stopping.signal.aborted && !final ? 'retrying' : 'failed', error);
      // BullMQ retries none of an unrecoverable error's attempts.
      throw final ? new UnrecoverableError((error as Error).message) : error;
    }
    // Its dependents follow it: queued before this job completes, so that a crash here runs it again rather than losing them.
    for (const next of dependents.get(pipeline.id) ?? []) await queue.add(next, { trigger: 'dependency', parent: { pipeline: pipeline.id, runId: job.id! } }, jobOptions(byId.get(next)!));
    emit(job, 'succeeded');
  }

  return {
    kind: 'bullmq',
    async start() {
      stopping = new AbortController();
      await redis.connect().catch((error: Error) => {
        if (!/already connect/i.test(error.message)) throw error;
      });
      await queue.setGlobalConcurrency(1);
      for (const pipeline of options.pipelines) {
        if (pipeline.everyMs !== null) {
          await queue.upsertJobScheduler(`schedule:${pipeline.id}`, { every: pipeline.everyMs }, { name: pipeline.id, data: { trigger: 'schedule' }, opts: { attempts: pipeline.attempts, backoff: { type: 'exponential', delay: pipeline.backoffMs }, removeOnComplete: 1_000, removeOnFail: 1_000 } });
        }
      }
      worker = new Worker<JobData>(options.queue, process, { connection, prefix, concurrency: 1 });
      if (options.onRunEndedAnywhere) {
        // Every replica hears each run end, whichever replica ran it.
        events = new QueueEvents(options.queue, { connection, prefix });
        const ended = async ({ jobId }: { jobId: string }) => {
          const job = await queue.getJob(jobId).catch(() => undefined);
          if (job?.name && byId.has(job.name)) options.onRunEndedAnywhere!(job.name);
        };
        events.on('completed', (args) => void ended(args));
        events.on('failed', (args) => void ended(args));
        await events.waitUntilReady();
      }
    },
    async run(id, trigger = 'manual', runOptions) {
      const pipeline = known(id);
      if (await isPaused(id)) throw new PipelineError('PIPELINE_PAUSED', `"${id}" is paused: resume it first.`);
      if (await queue.getDeduplicationJobId(id)) throw new PipelineError('PIPELINE_RUN_OVERLAPS', `A run of "${id}" is already queued or running.`);
      const job = await queue.add(id, { trigger, ...keptOptions(trigger, runOptions) }, jobOptions(pipeline));
      return job.id!;
    },
    async pause(id) {
      await redis.sadd(pausedKey, known(id).id);
    },
    async resume(id) {
      await redis.srem(pausedKey, known(id).id);
    },
    async paused() {
      return (await redis.smembers(pausedKey)).sort();
    },
    async status(id) {
      known(id);
      const scheduler = await queue.getJobScheduler(`schedule:${id}`);
      return { nextRunAt: scheduler?.next ? new Date(scheduler.next).toISOString() : null, paused: await isPaused(id) };
    },
    async stop() {
      stopping.abort();
      await worker?.close();
      worker = null;
      await events?.close();
      events = null;
      await queue.close();
      redis.disconnect();
    },
  };
}
