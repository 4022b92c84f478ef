import { describe, expect, it } from 'vitest';
import { ANONYMOUS, type Principal } from '../../policy/principal.js';
import { createAllowances, DEFAULT_LIMITS, limitsConfigFromEnv, parseLimitsConfig } from './allowances.js';

const signedIn = (roles: string[], client: string | null = null): Principal => ({ ...ANONYMOUS, anonymous: false, subject: 's', roles, client });

describe('allowances', () => {
  const allowanceOf = createAllowances(
    parseLimitsConfig(
      JSON.stringify({
        authenticated: { maxCost: 30_000 },
        roles: { steward: { maxDepth: 20, maxCost: 50_000 }, analyst: { maxDepth: 18, maxAliases: 40 } },
        clients: { 'bi-connector': { maxCost: 100_000, maxDepth: 12 } },
      }),
    ),
  );

  it('gives anonymous callers the defaults, signed-in callers theirs', () => {
    expect(allowanceOf(ANONYMOUS)).toEqual(DEFAULT_LIMITS.anonymous);
    expect(allowanceOf(signedIn([]))).toMatchObject({ maxCost: 30_000, ratePerWindow: 2_000_000, maxDepth: 15 });
  });

  it('takes the most generous value among roles, and a client entry over the roles', () => {
    expect(allowanceOf(signedIn(['analyst', 'steward']))).toMatchObject({ maxDepth: 20, maxAliases: 40, maxCost: 50_000 });
    expect(allowanceOf(signedIn(['steward'], 'bi-connector'))).toMatchObject({ maxDepth: 12, maxCost: 100_000 });
    // Roles and clients apply to signed-in principals only.
    expect(allowanceOf({ ...ANONYMOUS, roles: ['steward'], client: 'bi-connector' })).toEqual(DEFAULT_LIMITS.anonymous);
  });

  it.each([
    ['not json', /not JSON/],
    ['[]', /must be a JSON object/],
    ['{"anonymus": {}}', /Unknown key "anonymus"/],
    ['{"roles": {"steward": {"maxDepht": 3}}}', /roles\.steward\.maxDepht is not a limit/],
    ['{"clients": {"x": {"maxCost": 0}}}', /clients\.x\.maxCost must be a whole number of at least 1/],
    ['{"authenticated": {"maxCost": 1.5}}', /authenticated\.maxCost must be a whole number/],
    ['{"rateWindowSeconds": -1}', /rateWindowSeconds must be a whole number of at least 1/],
  ])('refuses the configuration %s, saying where', (text, message) => {
    expect(() => parseLimitsConfig(text)).toThrow(message);
  });

  it('reads GATEWAY_LIMITS, refuses it with GATEWAY_LIMITS_FILE, and a file that cannot be read', () => {
    expect(limitsConfigFromEnv({ GATEWAY_LIMITS: '{"anonymous": {"maxDepth": 9}}' }).anonymous.maxDepth).toBe(9);
    expect(() => limitsConfigFromEnv({ GATEWAY_LIMITS: '{}', GATEWAY_LIMITS_FILE: 'x' })).toThrow(/not both/);
    expect(() => limitsConfigFromEnv({ GATEWAY_LIMITS_FILE: '/nonexistent/limits.json' })).toThrow(/GATEWAY_LIMITS_FILE cannot be read/);
    expect(limitsConfigFromEnv({})).toBe(DEFAULT_LIMITS);
  });
});
