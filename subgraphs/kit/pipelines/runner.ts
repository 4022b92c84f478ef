/**
 * Pipeline runs (issue 26, first part): each data product's pipeline (`plan.ts`) run on a schedule,
 * after the pipelines it depends on, retried with backoff, bounded by a timeout, paused and resumed,
 * never two runs of one pipeline at once. Two runners keep this one contract (runner.test.ts runs the
 * same suite over both): `bullmq-runner.ts` on Redis (BullMQ: job schedulers, deduplicated jobs, a
 * global concurrency of one per domain, for replicas), and `local-runner.ts` in the process (the
 * embedded default: `npm start` needs no Redis). What a run does is the caller's `work`.
 */

/** A PostgreSQL table a pipeline reads incrementally, past a watermark (see warehouse/extract.ts). */
export interface PostgresSource {
  /** The environment variable holding the source's connection string (never written in code). */
  readonly urlEnv: string;
  /** The source table: `table` or `schema.table`. */
  readonly table: string;
  /** Its column that grows with every insert and update (`updated_at`, a growing id). */
  readonly watermark: string;
  /** Its column that is set when a row is deleted (a soft delete), if it has one. */
  readonly deletedWhen?: string;
  /** The warehouse table's columns → the source's, where the names differ. */
  readonly columns?: Readonly<Record<string, string>>;
}

/** How a data product declares its pipeline (its `pipeline`; see plan.ts for the defaults). */
export interface PipelineDeclaration {
  /** Products of the same domain it is loaded after (each of their runs is followed by one of this). */
  readonly dependsOn?: readonly string[];
  /** Its schedule (`{ value: 1, unit: 'h' }`), or `never` (only when asked or after its dependencies); default: the SLA's `frequency`. */
  readonly every?: { readonly value: number; readonly unit: 's' | 'm' | 'h' | 'd' | 'w' } | 'never';
  /** Attempts in all, 1 to 10 (default 3). */
  readonly attempts?: number;
  /** The first retry's delay, doubling after each, 1 s to 1 h (default 30 s). */
  readonly backoffSeconds?: number;
  /** Each attempt's bound, 1 s to 24 h (default 30 min). */
  readonly timeoutSeconds?: number;
  /** A PostgreSQL table the run extracts from incrementally, past a watermark, before it loads. */
  readonly source?: PostgresSource;
  /**
   * Anomalies (anomalies.ts) of these measures are errors: the load is rejected, kept aside, and the
   * serving version stays; the others' are warnings. `rows`, `increment`, `arrivalDelaySeconds`,
   * `<column>.nullShare`, `<column>.distinctCount`, `<column>.mean` (a column's mean, or frozen),
   * `*.<measure>` for every column.
   */
  readonly anomalies?: { readonly errors?: readonly string[] };
}

/** `event`: another domain's product this one is fed by changed (events/inputs.ts). */
export type RunTrigger = 'schedule' | 'dependency' | 'manual' | 'backfill' | 'event';

/** A backfill's range: the days (`YYYY-MM-DD`, both included) of the product's time column it reloads. */
export interface RunRange {
  readonly from: string;
  readonly to: string;
}

/** What an operator may ask of a run besides its trigger. */
export interface RunOptions {
  /** A backfill's range (ignored for other triggers). */
  readonly range?: RunRange;
  /** The anomalies its load shows are accepted (warnings, not errors), and its measures start a new baseline: the data changed for good. */
  readonly acceptAnomalies?: boolean;
}

/** The run that a dependent run follows (the parent of its flow). */
export interface ParentRun {
  readonly pipeline: string;
  readonly runId: string;
}

/** One pipeline: a data product's load, by its address `<domain>.<product>`. */
export interface PipelineSpec {
  readonly id: string;
  /** Pipelines of the same domain it runs after (each run of one of them is followed by one of this). */
  readonly dependsOn: readonly string[];
  /** Its schedule, from its SLA's `frequency` unless declared; null: runs when asked or after its dependencies. */
  readonly everyMs: number | null;
  /** Attempts in all (1: no retry), and the first retry's delay (doubling after each). */
  readonly attempts: number;
  readonly backoffMs: number;
  /** Each attempt's bound: past it, the attempt's signal aborts and the attempt fails. */
  readonly timeoutMs: number;
  /** Measures whose anomalies are errors (they reject the load) rather than warnings: `rows`, `<column>.nullShare`, `*.mean`, … */
  readonly anomalyErrors: readonly string[];
}

export interface RunRequest {
  readonly pipeline: string;
  readonly runId: string;
  readonly trigger: RunTrigger;
  /** 1 for the first attempt. */
  readonly attempt: number;
  /** A backfill of a range (none: a backfill reloads everything). */
  readonly range?: RunRange;
  /** Its anomalies accepted, its measures a new baseline (RunOptions). */
  readonly acceptAnomalies?: boolean;
  /** A dependent run: the run of the pipeline it follows. */
  readonly parent?: ParentRun;
  /** Aborted at the attempt's timeout, or when the runner stops. */
  readonly signal: AbortSignal;
}

/** What a run does (load the product); it rejects to fail the attempt. */
export type RunWork = (request: RunRequest) => Promise<void>;

export interface RunEvent {
  readonly pipeline: string;
  readonly runId: string;
  readonly trigger: RunTrigger;
  readonly attempt: number;
  readonly event: 'started' | 'succeeded' | 'retrying' | 'failed' | 'skipped';
  readonly at: string;
  readonly error?: string;
  readonly range?: RunRange;
  readonly acceptAnomalies?: boolean;
  readonly parent?: ParentRun;
}

export interface RunnerOptions {
  readonly pipelines: readonly PipelineSpec[];
  readonly work: RunWork;
  readonly onEvent?: (event: RunEvent) => void;
  /**
   * Told in every replica when a run of the domain's pipelines ends in any of them (BullMQ: by its
   * queue's events), so that a replica that did not run it serves the version it made. The runner
   * in the process has no other replica: it never calls it.
   */
  readonly onRunEndedAnywhere?: (pipeline: string) => void;
}

export interface PipelineRunner {
  readonly kind: 'local' | 'bullmq';
  /** Starts the schedules and the processing. */
  start(): Promise<void>;
  /** Asks for a run now (its dependents follow it); refused when one is queued or running, or the pipeline is paused. Resolves to its run id. A backfill may name a range. */
  run(pipeline: string, trigger?: Extract<RunTrigger, 'manual' | 'backfill' | 'event'>, options?: RunOptions): Promise<string>;
  /** Its scheduled and dependent runs are skipped, and a run asked for refused, until `resume`. */
  pause(pipeline: string): Promise<void>;
  resume(pipeline: string): Promise<void>;
  paused(): Promise<string[]>;
  /** When its next scheduled run is due (null: not scheduled), and whether it is paused. */
  status(pipeline: string): Promise<{ readonly nextRunAt: string | null; readonly paused: boolean }>;
  /** Stops the schedules and ends the runner; a run in progress is aborted (on Redis, its job is retried by the next runner). */
  stop(): Promise<void>;
}

export const PIPELINE_ERRORS = {
  PIPELINE_UNKNOWN: 'No pipeline has that name (a data product address, `<domain>.<product>`).',
  PIPELINE_PAUSED: 'The pipeline is paused: resume it before asking for a run.',
  PIPELINE_RUN_OVERLAPS: 'A run of the pipeline is already queued or running: one at a time.',
  PIPELINE_INVALID: 'A pipeline declaration is wrong: a dependency that is not a product of the domain, a cycle, a schedule, retry or timeout out of bounds, an anomaly error on no measure of the product.',
  PIPELINE_RANGE_INVALID: "A backfill's range is wrong: not two days (YYYY-MM-DD) in order, wider than allowed, or given for a product whose SLA names no time column.",
} as const;

export type PipelineErrorCode = keyof typeof PIPELINE_ERRORS;

/** Each code's HTTP status on a subgraph's `/pipelines` route (409: refused for now, `npm run pipelines` exits 1; the others exit 2). */
export const PIPELINE_ERROR_STATUS: Record<PipelineErrorCode, number> = { PIPELINE_UNKNOWN: 404, PIPELINE_PAUSED: 409, PIPELINE_RUN_OVERLAPS: 409, PIPELINE_INVALID: 400, PIPELINE_RANGE_INVALID: 400 };

export class PipelineError extends Error {
  override name = 'PipelineError';
  constructor(
    readonly code: PipelineErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

/** An attempt's failure that no retry would change (a load its quality checks rejected): the run fails at once. */
export class FinalRunError extends Error {
  override name = 'FinalRunError';
}

/** The pipelines that run after `id`, by id. */
export function dependentsOf(pipelines: readonly PipelineSpec[]): ReadonlyMap<string, readonly string[]> {
  const dependents = new Map<string, string[]>();
  for (const pipeline of pipelines) for (const upstream of pipeline.dependsOn) dependents.set(upstream, [...(dependents.get(upstream) ?? []), pipeline.id]);
  return dependents;
}

/** The delay before attempt `attempt + 1`: `backoffMs`, doubling. */
export const backoffBefore = (spec: PipelineSpec, attempt: number) => spec.backoffMs * 2 ** (attempt - 1);

/** Runs one attempt of `work` within the pipeline's timeout (and the runner's stop). */
export async function attempt(work: RunWork, request: Omit<RunRequest, 'signal'>, timeoutMs: number, stopping: AbortSignal): Promise<void> {
  const signal = AbortSignal.any([AbortSignal.timeout(timeoutMs), stopping]);
  let abort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    abort = () => reject(new Error(stopping.aborted ? 'the runner stopped' : `timed out after ${timeoutMs} ms`));
    signal.addEventListener('abort', abort, { once: true });
  });
  try {
    await Promise.race([work({ ...request, signal }), aborted]);
  } finally {
    signal.removeEventListener('abort', abort!);
  }
}

/** Longest range a backfill may reload at once (ten years of days). */
export const RANGE_DAYS_MAX = 3_660;

/** A backfill's range from what an operator typed: two real days in order, at most RANGE_DAYS_MAX apart (PIPELINE_RANGE_INVALID otherwise). */
export function rangeOf(from: unknown, to: unknown): RunRange {
  const day = (value: unknown, what: string) => {
    const text = typeof value === 'string' ? value : '';
    const at = /^\d{4}-\d{2}-\d{2}$/.test(text) ? Date.parse(`${text}T00:00:00Z`) : Number.NaN;
    if (!Number.isFinite(at) || new Date(at).toISOString().slice(0, 10) !== text) throw new PipelineError('PIPELINE_RANGE_INVALID', `--${what} must be a day, YYYY-MM-DD; got "${String(value).slice(0, 40)}".`);
    return at;
  };
  const start = day(from, 'from');
  const end = day(to, 'to');
  if (end < start) throw new PipelineError('PIPELINE_RANGE_INVALID', `--to (${String(to)}) is before --from (${String(from)}).`);
  if ((end - start) / 86_400_000 + 1 > RANGE_DAYS_MAX) throw new PipelineError('PIPELINE_RANGE_INVALID', `The range spans more than ${RANGE_DAYS_MAX} days: backfill it whole (no range) or in parts.`);
  return { from: from as string, to: to as string };
}

/** What of an operator's options a run keeps: a range for a backfill only, and an acceptance. */
export function keptOptions(trigger: RunTrigger, options: RunOptions = {}): Pick<RunRequest, 'range' | 'acceptAnomalies'> {
  return { ...(options.range && trigger === 'backfill' ? { range: options.range } : {}), ...(options.acceptAnomalies === true ? { acceptAnomalies: true } : {}) };
}
