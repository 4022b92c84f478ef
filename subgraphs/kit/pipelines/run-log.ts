/**
 * The run history of a domain's pipelines: every run that ended (its trigger, start and end, attempts,
 * outcome, what its load did and the rows it served, the error), appended to a JSON-lines file per
 * domain (`<DATA_DIR>/pipelines/<domain>.jsonl`) and read back at start, the latest kept in memory
 * for the catalog; at a start that finds it ten times longer than that, the file is rewritten with
 * them only. Replicas on Redis (the BullMQ runner's) also share it there, whatever their DATA_DIR:
 * a list per pipeline of its latest runs, which every replica reads back (`reload`) when any run
 * ends; the first replica on an empty Redis seeds it with its file's runs.
 */
import { appendFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Redis } from 'ioredis';
import type { Anomaly, RunMeasures } from './anomalies.js';
import type { ParentRun, RunEvent, RunRange, RunTrigger } from './runner.js';

export interface PipelineRunRecord {
  readonly runId: string;
  readonly pipeline: string;
  readonly trigger: RunTrigger;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly attempts: number;
  readonly outcome: 'succeeded' | 'failed' | 'skipped';
  /** What its load did: a new version `swapped` in, `rejected` by its quality checks, the serving one `current` (no new data), or `failed`. */
  readonly load: 'swapped' | 'rejected' | 'current' | 'failed' | null;
  /** Rows of the product's table in the version it swapped in. */
  readonly rows: number | null;
  /** Rows of the product's table its load read from the sources (a full load: all; a merge: its deliveries' or range's, tombstones included). */
  readonly read?: number;
  /** The quality run that gated its load (none: no load was made), and its outcome. */
  readonly quality?: { readonly runId: string; readonly outcome: 'passed' | 'rejected' };
  readonly error: string | null;
  /** What the version it swapped in measured (the anomaly detector's history). */
  readonly measures?: RunMeasures;
  /** Its measures outside the bands the product's history predicts. */
  readonly anomalies?: readonly Anomaly[];
  /** A load that merged into the serving version (increments, or a backfill's range): the rows of the product's table it inserted, updated and deleted, and the last increment the new version holds (its watermark; null: none yet). */
  readonly increment?: { readonly inserted: number; readonly updated: number; readonly deleted: number; readonly watermark: string | null };
  /** A backfill of a range: the days it reloaded. */
  readonly range?: RunRange;
  /** A dependent run: the run it followed. */
  readonly parent?: ParentRun;
  /** An operator accepted its anomalies: the data changed for good; with its load swapped in, its measures start a new baseline. */
  readonly anomaliesAccepted?: true;
}

/** What a run's load did, known once it ends. */
export type RunDetails = Pick<PipelineRunRecord, 'load' | 'rows' | 'read' | 'quality' | 'measures' | 'anomalies' | 'increment'>;

/** Runs kept in memory per pipeline: the anomaly detector's eight weeks of daily runs, and more. */
const KEPT = 100;
/** The file is rotated at start once it holds this many times more runs per pipeline than are kept. */
const ROTATE_AFTER = 10 * KEPT;

export interface RunLog {
  /** A run's event; the run is recorded when it ends (`details` says what its load did). */
  record(event: RunEvent, details?: RunDetails): Promise<void>;
  /** A pipeline's latest runs, newest first. */
  runs(pipeline: string): readonly PipelineRunRecord[];
  /** Reads the history again (Redis, else the file): the runs other replicas recorded. */
  reload(): Promise<void>;
  close(): Promise<void>;
}

/** Where replicas share the history: a Redis server, the lists' key prefix, and the pipelines. */
export interface SharedRunLog {
  readonly redisUrl: string;
  /** `<prefix>:<domain>:runs`: each pipeline's list is `<key>:<pipeline>`. */
  readonly key: string;
  readonly pipelines: readonly string[];
}

export async function openRunLog(path: string, shared?: SharedRunLog): Promise<RunLog> {
  const byPipeline = new Map<string, PipelineRunRecord[]>();
  const keep = (run: PipelineRunRecord) => {
    const list = byPipeline.get(run.pipeline) ?? [];
    list.unshift(run);
    byPipeline.set(run.pipeline, list.slice(0, KEPT));
  };
  /** Reads every run the file holds; returns its lines. */
  const readAll = async (): Promise<number> => {
    const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return '';
      throw error;
    });
    const lines = text.split('\n').filter((line) => line.trim() !== '');
    byPipeline.clear();
    for (const line of lines) {
      try {
        keep(JSON.parse(line) as PipelineRunRecord);
      } catch {
        // a line cut by a crash mid-write: the runs before and after it stay
      }
    }
    return lines.length;
  };
  const lines = await readAll();
  await mkdir(dirname(path), { recursive: true });
  // Rotated at start once it holds far more than is kept: the runs kept, oldest first, written beside it and renamed over it.
  const kept = [...byPipeline.values()].flat().sort((a, b) => (a.endedAt < b.endedAt ? -1 : a.endedAt > b.endedAt ? 1 : 0));
  if (lines > ROTATE_AFTER * Math.max(1, byPipeline.size)) {
    await writeFile(`${path}.rotating`, kept.map((run) => `${JSON.stringify(run)}\n`).join(''));
    await rename(`${path}.rotating`, path);
  }
  const redis = shared ? new Redis(shared.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2 }) : null;
  const listOf = (pipeline: string) => `${shared!.key}:${pipeline}`;
  /** The shared lists, newest first, into memory. */
  const readShared = async () => {
    const lists = await Promise.all(shared!.pipelines.map((pipeline) => redis!.lrange(listOf(pipeline), 0, KEPT - 1)));
    byPipeline.clear();
    for (const [i, pipeline] of shared!.pipelines.entries()) {
      const runs = lists[i]!.flatMap((text) => {
        try {
          return [JSON.parse(text) as PipelineRunRecord];
        } catch {
          return [];
        }
      });
      if (runs.length > 0) byPipeline.set(pipeline, runs);
    }
  };
  if (redis && shared) {
    await redis.connect();
    // The first replica on an empty Redis brings its own history (once: the others find the mark).
    if ((await redis.set(`${shared.key}:seeded`, new Date().toISOString(), 'NX')) === 'OK') {
      const batch = redis.multi();
      for (const [pipeline, runs] of byPipeline) if (shared.pipelines.includes(pipeline)) batch.rpush(listOf(pipeline), ...runs.map((run) => JSON.stringify(run))).ltrim(listOf(pipeline), 0, KEPT - 1);
      await batch.exec();
    }
    await readShared();
  }
  const started = new Map<string, string>();
  return {
    async record(event, details) {
      if (event.event === 'started' && event.attempt === 1) started.set(event.runId, event.at);
      if (event.event !== 'succeeded' && event.event !== 'failed' && event.event !== 'skipped') return;
      const run: PipelineRunRecord = {
        runId: event.runId,
        pipeline: event.pipeline,
        trigger: event.trigger,
        startedAt: started.get(event.runId) ?? event.at,
        endedAt: event.at,
        attempts: event.event === 'skipped' ? 0 : event.attempt,
        outcome: event.event,
        load: details?.load ?? null,
        rows: details?.rows ?? null,
        ...(details?.read !== undefined ? { read: details.read } : {}),
        ...(details?.quality ? { quality: details.quality } : {}),
        error: event.error ?? null,
        ...(details?.measures ? { measures: details.measures } : {}),
        ...(details?.anomalies ? { anomalies: details.anomalies } : {}),
        ...(details?.increment ? { increment: details.increment } : {}),
        ...(event.range ? { range: event.range } : {}),
        ...(event.parent ? { parent: event.parent } : {}),
        ...(event.acceptAnomalies ? { anomaliesAccepted: true as const } : {}),
      };
      started.delete(event.runId);
      keep(run);
      await appendFile(path, `${JSON.stringify(run)}\n`);
      if (redis) await redis.multi().lpush(listOf(run.pipeline), JSON.stringify(run)).ltrim(listOf(run.pipeline), 0, KEPT - 1).exec();
    },
    runs: (pipeline) => byPipeline.get(pipeline) ?? [],
    async reload() {
      await (redis ? readShared() : readAll());
    },
    async close() {
      redis?.disconnect();
    },
  };
}
