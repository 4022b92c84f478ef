/**
 * Rate limits in cost units: each operation spends its estimated cost (at least 1) from two token
 * buckets per window, one per subject (the token's `sub`; the remote address for anonymous callers)
 * and one per verified client (the token's `azp`/`client_id`). A client named only by the
 * `apollographql-client-name` header has no bucket of its own (see client-identity.ts): the header
 * is the caller's word, and a bucket it could name is one it could empty for the real app. Over
 * either, HTTP 429 with `Retry-After` and RATE_LIMITED.
 *
 * The buckets live in this gateway's memory, or in Redis when `RATE_LIMIT_REDIS_URL` is set, so that
 * replicas share one budget (rate-limiter-flexible's atomic Redis counters). When Redis does not
 * answer, each replica goes on with local buckets (the library's insurance limiter): never open
 * without limits, never failing every request. The fall-back is logged and shown in
 * `/health/ready` (`rateLimits.degraded`) until Redis answers again.
 */
import type { Request, RequestHandler, Response } from 'express';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Principal } from '../../policy/principal.js';
import type { AllowanceOf } from './allowances.js';
import { addressOf } from './client-identity.js';
import type { Refusal, Refuse } from './refusals.js';
import './request-state.js';

export interface RateLimitsOptions {
  readonly allowanceOf: AllowanceOf;
  readonly windowSeconds: number;
  /** Shared buckets in Redis (env `RATE_LIMIT_REDIS_URL`); in memory when absent. */
  readonly redisUrl: string | null;
  /** Prefix of the Redis keys (env `RATE_LIMIT_REDIS_PREFIX`, default `mesh-rate`). */
  readonly redisPrefix: string;
  readonly refuse: Refuse;
  readonly log: Logger;
  /**
   * The processes that count apart, each with its share of every allowance (default 1): the workers
   * of a cluster, when their buckets are local (no Redis, or Redis down).
   */
  readonly localShares?: number;
}

export interface RateLimitsStatus {
  readonly store: 'memory' | 'redis';
  /** Redis is configured but not answering: this gateway counts with local buckets meanwhile. */
  readonly degraded: boolean;
  readonly since?: string;
  readonly error?: string;
}

export interface RateLimits {
  readonly middleware: RequestHandler;
  /** Spends a cost from the caller's buckets (as the middleware does); the refusal when over. */
  spend(req: Request, res: Response, cost: number): Promise<Refusal | null>;
  /** The same, for a principal and its address (an anonymous caller's bucket): a subscription's events. */
  spendFor(principal: Principal, address: string, cost: number): Promise<Refusal | null>;
  status(): RateLimitsStatus;
  close(): Promise<void>;
}

export function useRateLimits(options: RateLimitsOptions): RateLimits {
  const { allowanceOf, windowSeconds, redisUrl, redisPrefix, refuse, log } = options;
  let redis: Redis | undefined;
  let closing = false;
  let status: RateLimitsStatus = { store: redisUrl ? 'redis' : 'memory', degraded: false };
  if (redisUrl) {
    // Commands fail at once while disconnected (no offline queue), so a request never waits for Redis.
    redis = new Redis(redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 0, connectTimeout: 1_000, retryStrategy: (times) => Math.min(times * 200, 2_000) });
    const degrade = (error: string) => {
      if (status.degraded || closing) return;
      status = { store: 'redis', degraded: true, since: new Date().toISOString(), error };
      log.error({ error }, 'rate limits: Redis does not answer; counting with local buckets until it does');
    };
    redis.on('error', (error: Error) => degrade(error.message));
    redis.on('close', () => degrade('connection closed'));
    redis.on('ready', () => {
      if (status.degraded) log.info('rate limits: Redis answers again; buckets are shared across replicas');
      status = { store: 'redis', degraded: false };
    });
  }

  // One limiter per allowance (points per window); they share the keys, each compares with its own points.
  const limiters = new Map<number, RateLimiterAbstract>();
  const limiterFor = (points: number): RateLimiterAbstract => {
    let limiter = limiters.get(points);
    if (!limiter) {
      // Local buckets count this process's share: a cluster's workers, each its part, add up to the allowance.
      const local = new RateLimiterMemory({ points: Math.max(1, Math.ceil(points / (options.localShares ?? 1))), duration: windowSeconds, keyPrefix: redisPrefix });
      limiter = redis
        ? new RateLimiterRedis({ storeClient: redis, points, duration: windowSeconds, keyPrefix: redisPrefix, rejectIfRedisNotReady: true, insuranceLimiter: local })
        : local;
      limiters.set(points, limiter);
    }
    return limiter;
  };

  /** Spends `cost` (at least 1) from the caller's buckets; the refusal when one of them is empty. */
  const spendFor = async (principal: Principal, address: string, cost: number): Promise<Refusal | null> => {
    const allowance = allowanceOf(principal);
    const limiter = limiterFor(allowance.ratePerWindow);
    const subject = principal.subject ? `sub:${principal.subject}` : address;
    const client = principal.client;
    const buckets: [string, string][] = [['subject', subject], ...(client ? [['client', `client:${client}`] as [string, string]] : [])];
    for (const [bucket, key] of buckets) {
      try {
        await limiter.consume(key, Math.max(1, cost));
      } catch (error) {
        if (!(error instanceof RateLimiterRes)) {
          // Neither Redis nor the local buckets could count: serve rather than fail every request.
          log.error({ err: error }, 'rate limits could not be counted');
          continue;
        }
        const retryAfterSeconds = Math.max(1, Math.ceil(error.msBeforeNext / 1000));
        return {
          code: 'RATE_LIMITED',
          message: `The ${bucket} "${bucket === 'subject' ? (principal.subject ?? 'anonymous') : client}" spent its ${allowance.ratePerWindow} cost units for this ${windowSeconds} s window; retry in ${retryAfterSeconds} s.`,
          headers: { 'Retry-After': String(retryAfterSeconds) },
          extensions: { retryAfterSeconds, bucket, budget: allowance.ratePerWindow, windowSeconds },
        };
      }
    }
    return null;
  };
  const spend = (req: Request, res: Response, cost: number) => spendFor(res.locals.principal!, addressOf(req), cost);

  return {
    status: () => status,
    spendFor,
    async close() {
      closing = true;
      redis?.disconnect();
    },
    spend,
    middleware: async (req, res, next) => {
      const refusal = await spend(req, res, res.locals.estimatedCost ?? 1);
      if (refusal) {
        refuse(req, res, refusal);
        return;
      }
      next();
    },
  };
}
