/**
 * Load shedding: a bound on operations in flight and on the gateway's heap. Beyond either, a new
 * operation is refused at once (HTTP 503, GATEWAY_OVERLOADED, `Retry-After`), before its token is
 * verified or its document parsed; operations in flight finish. The heap is sampled at most every
 * 100 ms, so the check costs a counter comparison per request.
 */
import { getHeapStatistics } from 'node:v8';
import type { Request, RequestHandler, Response } from 'express';
import type { Refuse } from './refusals.js';

export interface LoadSheddingConfig {
  /** Operations the gateway works on at once (env `MAX_IN_FLIGHT`, default 256). */
  readonly maxInFlight: number;
  /** Heap in use above which new operations are refused (env `MAX_HEAP_MB`, default 85% of the heap limit). */
  readonly maxHeapBytes: number;
  /** What `Retry-After` says, in seconds (default 1). */
  readonly retryAfterSeconds: number;
}

export const DEFAULT_LOAD_SHEDDING: LoadSheddingConfig = {
  maxInFlight: 256,
  maxHeapBytes: Math.floor(getHeapStatistics().heap_size_limit * 0.85),
  retryAfterSeconds: 1,
};

export interface LoadShedding {
  readonly middleware: RequestHandler;
  /**
   * The same refusals, for a request that lives long (a subscription's stream): admitted only while
   * the gateway is under its bounds, but never counted in flight, or open streams would shed every query.
   */
  readonly admission: RequestHandler;
  /** Operations in flight now. */
  inFlight(): number;
}

export function useLoadShedding(options: { readonly config: LoadSheddingConfig; readonly refuse: Refuse }): LoadShedding {
  const { config, refuse } = options;
  let inFlight = 0;
  let heapUsed = getHeapStatistics().used_heap_size;
  let sampledAt = performance.now();
  const headers = { 'Retry-After': String(config.retryAfterSeconds) };
  /** Refuses when over a bound; true when admitted. */
  const admitted = (req: Request, res: Response): boolean => {
    const now = performance.now();
    if (now - sampledAt > 100) {
      heapUsed = getHeapStatistics().used_heap_size;
      sampledAt = now;
    }
    if (inFlight >= config.maxInFlight) {
      refuse(req, res, { code: 'GATEWAY_OVERLOADED', message: `The gateway is at its bound of ${config.maxInFlight} operations in flight; retry in ${config.retryAfterSeconds} s.`, headers, extensions: { retryAfterSeconds: config.retryAfterSeconds } });
      return false;
    }
    if (heapUsed >= config.maxHeapBytes) {
      refuse(req, res, { code: 'GATEWAY_OVERLOADED', message: `The gateway's memory is at its bound; retry in ${config.retryAfterSeconds} s.`, headers, extensions: { retryAfterSeconds: config.retryAfterSeconds } });
      return false;
    }
    return true;
  };
  return {
    inFlight: () => inFlight,
    middleware: (req, res, next) => {
      if (!admitted(req, res)) return;
      inFlight++;
      res.once('close', () => inFlight--);
      next();
    },
    admission: (req, res, next) => {
      if (admitted(req, res)) next();
    },
  };
}
