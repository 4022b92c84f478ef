/** Which runner a subgraph's pipelines use, from the environment; a setting it does not know is refused. */
import { describe, expect, it } from 'vitest';
import { pipelineRunnerFromEnv, pipelinesEveryFromEnv } from './runner-config.js';

const options = { domain: 'shipping', pipelines: [], work: async () => undefined };

describe('the pipelines runner setting', () => {
  it('runs in the process by default, on Redis with PIPELINES_REDIS_URL, and none with PIPELINES=off', async () => {
    expect(pipelineRunnerFromEnv(options, {}).kind).toBe('local');
    const onRedis = pipelineRunnerFromEnv(options, { PIPELINES_REDIS_URL: 'redis://127.0.0.1:6379' });
    expect(onRedis.kind).toBe('bullmq');
    await onRedis.stop();
    const off = pipelineRunnerFromEnv(options, { PIPELINES: 'off' });
    await expect(off.run('shipping.parcels')).rejects.toMatchObject({ code: 'PIPELINE_UNKNOWN', message: 'PIPELINE_UNKNOWN: Pipelines are off here (PIPELINES=off).' });
  });

  it('refuses a value it does not know, without echoing more than a little of it', () => {
    expect(() => pipelineRunnerFromEnv(options, { PIPELINES: 'sometimes-but-not-on-sundays' })).toThrow('PIPELINES must be on or off, got "sometimes-but-not-on".');
  });

  it('takes PIPELINES_EVERY as whole seconds from 10 to 366 days, and refuses anything else', () => {
    expect(pipelinesEveryFromEnv({})).toBeNull();
    expect(pipelinesEveryFromEnv({ PIPELINES_EVERY: '60' })).toBe(60);
    for (const bad of ['9', '1.5', '-60', 'hourly', '31622401', '60s']) expect(() => pipelinesEveryFromEnv({ PIPELINES_EVERY: bad })).toThrow(/^PIPELINES_EVERY must be whole seconds from 10 to 31622400, got /);
  });
});
