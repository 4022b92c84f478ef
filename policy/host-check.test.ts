import type { Request, Response } from 'express';
import { describe, expect, it } from 'vitest';
import { allowedHostsFromEnv, LOOPBACK_HOSTS, refuseForeignHosts } from './host-check.js';

/** Runs the check on a request with these headers: `next` or the refusal's status. */
function check(allowed: readonly string[] | null, headers: Record<string, string>): number | 'next' {
  let outcome: number | 'next' = 'next';
  const res = { locals: {}, status: (code: number) => ((outcome = code), res), json: () => res } as unknown as Response;
  refuseForeignHosts(allowed)({ headers } as Request, res, () => undefined);
  return outcome;
}

describe('the host check', () => {
  it.each([
    [{ host: 'localhost:4000' }, 'next'],
    [{ host: '127.0.0.1:4000', origin: 'http://localhost:4000' }, 'next'],
    [{ host: '[::1]:4000' }, 'next'],
    [{ host: 'ide.localhost' }, 'next'],
    [{ host: 'attacker.example:4000' }, 403],
    [{ host: 'localhost.attacker.example' }, 403],
    [{ host: 'attacker.example@localhost' }, 403],
    [{ host: 'localhost/..' }, 403],
    [{}, 403],
    [{ host: 'localhost', origin: 'null' }, 403],
    [{ host: 'localhost', origin: 'http://attacker.example' }, 403],
  ] as const)('%o: %s', (headers, expected) => {
    expect(check(LOOPBACK_HOSTS, headers)).toBe(expected);
  });

  it('checks nothing in production unless ALLOWED_HOSTS says which names, and * turns it off', () => {
    expect(allowedHostsFromEnv({ NODE_ENV: 'production' })).toBeNull();
    expect(allowedHostsFromEnv({ NODE_ENV: 'production', ALLOWED_HOSTS: 'mesh.example.com, *.mesh.example.com' })).toEqual(['mesh.example.com', '*.mesh.example.com']);
    expect(allowedHostsFromEnv({ ALLOWED_HOSTS: '*' })).toBeNull();
    expect(allowedHostsFromEnv({})).toBe(LOOPBACK_HOSTS);
    expect(check(['*.mesh.example.com'], { host: 'api.mesh.example.com' })).toBe('next');
    expect(check(['*.mesh.example.com'], { host: 'mesh.example.com.evil' })).toBe(403);
  });
});
