/**
 * Which runner a subgraph's pipelines use (env): `PIPELINES_REDIS_URL` set, BullMQ on that Redis (a
 * domain's replicas share its queue; `PIPELINES_REDIS_PREFIX`, default `mesh-pipelines`); unset,
 * the runner in the process (`npm start`'s default: no Redis needed). `PIPELINES=off` runs none.
 * Replicas on Redis share their run history there too.
 */
import { bullmqRunner } from './bullmq-runner.js';
import { localRunner } from './local-runner.js';
import type { SharedRunLog } from './run-log.js';
import { PipelineError, type PipelineRunner, type RunnerOptions } from './runner.js';

/** A runner that runs nothing (`PIPELINES=off`). */
const idle: PipelineRunner = {
  kind: 'local',
  start: async () => undefined,
  run: async () => {
    throw new PipelineError('PIPELINE_UNKNOWN', 'Pipelines are off here (PIPELINES=off).');
  },
  pause: async () => undefined,
  resume: async () => undefined,
  paused: async () => [],
  status: async () => ({ nextRunAt: null, paused: false }),
  stop: async () => undefined,
};

/** Env `PIPELINES_EVERY`: seconds that replace every scheduled product's schedule (null: their own). */
export function pipelinesEveryFromEnv(env: NodeJS.ProcessEnv = process.env): number | null {
  const raw = env.PIPELINES_EVERY;
  if (raw === undefined || raw === '') return null;
  const seconds = Number(raw);
  if (!Number.isInteger(seconds) || seconds < 10 || seconds > 366 * 86_400) throw new Error(`PIPELINES_EVERY must be whole seconds from 10 to ${366 * 86_400}, got "${raw.slice(0, 20)}".`);
  return seconds;
}

/** Where a domain's replicas on Redis share their run history (none for the runner in the process). */
export function sharedRunLogFromEnv(domain: string, pipelines: readonly string[], env: NodeJS.ProcessEnv = process.env): SharedRunLog | undefined {
  if ((env.PIPELINES || 'on') !== 'on' || !env.PIPELINES_REDIS_URL) return undefined;
  return { redisUrl: env.PIPELINES_REDIS_URL, key: `${env.PIPELINES_REDIS_PREFIX || 'mesh-pipelines'}:${domain}:runs`, pipelines };
}

/** `journal`: where the runner in the process keeps its queued and running runs across a restart (BullMQ keeps them in Redis). */
export function pipelineRunnerFromEnv(options: RunnerOptions & { readonly domain: string; readonly journal?: string }, env: NodeJS.ProcessEnv = process.env): PipelineRunner {
  const setting = env.PIPELINES || 'on';
  if (setting !== 'on' && setting !== 'off') throw new Error(`PIPELINES must be on or off, got "${setting.slice(0, 20)}".`);
  if (setting === 'off') return idle;
  if (env.PIPELINES_REDIS_URL) return bullmqRunner({ ...options, redisUrl: env.PIPELINES_REDIS_URL, queue: options.domain, prefix: env.PIPELINES_REDIS_PREFIX || 'mesh-pipelines' });
  return localRunner(options);
}
