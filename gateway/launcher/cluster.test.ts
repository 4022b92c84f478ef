/** How many gateway workers an environment asks for (gateway/launcher/cluster.ts). */
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { workerCountFromEnv, WorkersConfigError } from './cluster.js';

describe('GATEWAY_WORKERS', () => {
  it('is one process by default, one worker per core in production, or the number given', () => {
    expect(workerCountFromEnv({})).toBe(1);
    expect(workerCountFromEnv({ NODE_ENV: 'production' })).toBe(availableParallelism());
    expect(workerCountFromEnv({ NODE_ENV: 'production', GATEWAY_WORKERS: '1' })).toBe(1);
    expect(workerCountFromEnv({ GATEWAY_WORKERS: 'auto' })).toBe(availableParallelism());
    expect(workerCountFromEnv({ GATEWAY_WORKERS: '4' })).toBe(4);
  });

  it.each(['0', '-2', '1.5', '1e3', '1000', ' 2', 'two'])('refuses %j, saying what it takes', (value) => {
    expect(() => workerCountFromEnv({ GATEWAY_WORKERS: value })).toThrow(WorkersConfigError);
    expect(() => workerCountFromEnv({ GATEWAY_WORKERS: value })).toThrow(/must be "auto" or a whole number from 1 to 999/);
  });
});
