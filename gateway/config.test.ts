import { describe, expect, it } from 'vitest';
import { DEFAULT_SUBGRAPHS, GatewayConfigError, gatewayConfigFromEnv } from './config.js';

describe('gateway configuration from the environment', () => {
  it('defaults to port 4000 on localhost and the three local subgraphs', () => {
    const config = gatewayConfigFromEnv({});
    expect(config).toMatchObject({ port: 4000, host: '127.0.0.1', subgraphs: DEFAULT_SUBGRAPHS, composeTimeoutMs: 60_000 });
    expect(config.supergraphPath).toMatch(/data\/supergraph\.graphql$/);
  });

  it('reads PORT and SUBGRAPHS', () => {
    const config = gatewayConfigFromEnv({ PORT: '5000', SUBGRAPHS: 'a=http://h:1/graphql, b=https://x.example/graphql' });
    expect(config.port).toBe(5000);
    expect(config.subgraphs).toEqual([
      { name: 'a', url: 'http://h:1/graphql' },
      { name: 'b', url: 'https://x.example/graphql' },
    ]);
  });

  it('refuses bad values with a message that names them', () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ PORT: 'eighty' }, /PORT must be a whole number/],
      [{ SUBGRAPHS: 'nourl' }, /"nourl" is not name=url/],
      [{ SUBGRAPHS: 'a=http://h/graphql,a=http://i/graphql' }, /"a" is listed twice/],
      [{ SUBGRAPHS: 'a=file:///etc/passwd' }, /must be http or https/],
      [{ SUBGRAPHS: 'a=not a url' }, /invalid URL/],
      [{ SUBGRAPHS: 'Bad Name=http://h/graphql' }, /must be lower-case/],
    ];
    for (const [env, message] of cases) {
      expect(() => gatewayConfigFromEnv(env)).toThrow(GatewayConfigError);
      expect(() => gatewayConfigFromEnv(env)).toThrow(message);
    }
  });
});
