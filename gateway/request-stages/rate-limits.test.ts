/**
 * A cluster's workers each count their share of every allowance when their buckets are local
 * (gateway/launcher/cluster.ts): together they allow what one gateway would, never the allowance per worker.
 */
import type { Request, Response } from 'express';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createAllowances, parseLimitsConfig } from './allowances.js';
import { useRateLimits } from './rate-limits.js';

const limits = parseLimitsConfig(JSON.stringify({ authenticated: { ratePerWindow: 10 } }));
const principal = { anonymous: false, subject: 'ana', roles: ['analyst'], scopes: [], client: null, purpose: null, claims: {} };
// The request and response as the limiter reads them: the principal, a client header, the address.
const req = { get: () => undefined, socket: { remoteAddress: '127.0.0.1' } } as unknown as Request;
const res = { locals: { principal } } as unknown as Response;

async function spentBeforeRefusal(localShares?: number): Promise<number> {
  const limiter = useRateLimits({ allowanceOf: createAllowances(limits), windowSeconds: 60, redisUrl: null, redisPrefix: `test-${localShares}`, refuse: () => undefined, log: pino({ level: 'silent' }), ...(localShares ? { localShares } : {}) });
  try {
    for (let spent = 0; spent < 100; spent++) if (await limiter.spend(req, res, 1)) return spent;
    return 100;
  } finally {
    await limiter.close();
  }
}

describe('local rate buckets', () => {
  it('hold the whole allowance in one gateway, and each worker\'s share in a cluster', async () => {
    expect(await spentBeforeRefusal()).toBe(10);
    expect(await spentBeforeRefusal(2)).toBe(5);
    // A share is never below one request: an allowance smaller than the workers still serves.
    expect(await spentBeforeRefusal(32)).toBe(1);
  });
});
