import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokenVerifier, IdentityConfigError, TokenRejectedError, type IdentityConfig, type TokenVerifier } from './identity.js';
import { DEFAULT_CLAIMS, DEV_AUDIENCE, DEV_ISSUER, DEV_SECRET, identityConfigFromEnv, mintDevToken } from './identity-config.js';
import { ANONYMOUS } from './principal.js';

const RS_ISSUER = 'https://idp.test/rs';
const ES_ISSUER = 'https://idp.test/es';
const AUDIENCE = 'data-mesh';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const rsaOther = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });

/** A JWKS endpoint over real HTTP, with keys that can rotate; it counts its fetches. */
const jwks = {
  keys: new Map<string, KeyObject>([
    ['rsa-1', rsa.publicKey],
    ['ec-1', ec.publicKey],
  ]),
  fetches: 0,
  server: undefined as Server | undefined,
  url: '',
};

function config(overrides: Partial<IdentityConfig> = {}): IdentityConfig {
  return {
    issuers: [
      { issuer: DEV_ISSUER, audience: DEV_AUDIENCE, algorithms: ['HS256'], secret: DEV_SECRET },
      { issuer: RS_ISSUER, audience: AUDIENCE, algorithms: ['RS256'], jwksUri: jwks.url },
      { issuer: ES_ISSUER, audience: [AUDIENCE, 'other'], algorithms: ['ES256'], jwksUri: jwks.url },
    ],
    claims: DEFAULT_CLAIMS,
    anonymous: 'allow',
    clockToleranceSeconds: 30,
    jwksMinRefetchMs: 5_000,
    ...overrides,
  };
}

let verifier: TokenVerifier;

beforeAll(async () => {
  jwks.server = createServer((_req, res) => {
    jwks.fetches += 1;
    const keys = [...jwks.keys].map(([kid, key]) => ({ ...key.export({ format: 'jwk' }), kid, use: 'sig' }));
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys }));
  }).listen(0, '127.0.0.1');
  await once(jwks.server, 'listening');
  jwks.url = `http://127.0.0.1:${(jwks.server.address() as AddressInfo).port}/.well-known/jwks.json`;
  verifier = createTokenVerifier(config());
});

afterAll(async () => {
  jwks.server?.close();
});

const now = () => Math.floor(Date.now() / 1000);

function rs256(payload: object, options: { kid?: string; key?: KeyObject } = {}): string {
  // A claim given as undefined is left out of the token.
  const claims = Object.fromEntries(
    Object.entries({ iss: RS_ISSUER, aud: AUDIENCE, sub: 'ann', exp: now() + 600, ...payload }).filter(([, value]) => value !== undefined),
  );
  return jwt.sign(claims, options.key ?? rsa.privateKey, {
    algorithm: 'RS256',
    keyid: options.kid ?? 'rsa-1',
  });
}

async function rejection(authorization: string | undefined, verify: TokenVerifier = verifier): Promise<string> {
  try {
    await verify.verify(authorization);
  } catch (error) {
    expect(error).toBeInstanceOf(TokenRejectedError);
    return (error as TokenRejectedError).reason;
  }
  throw new Error('the token was accepted');
}

function base64url(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

describe('token verification', () => {
  it('maps the claims of a valid token to a principal', async () => {
    const token = rs256({ roles: ['analyst'], scope: 'read:customers read:pii', purpose: 'analytics', regions: ['EMEA'], teams: ['shipping'] });
    expect(await verifier.verify(`Bearer ${token}`)).toEqual({
      anonymous: false,
      subject: 'ann',
      issuer: RS_ISSUER,
      roles: ['analyst'],
      scopes: ['read:customers', 'read:pii'],
      purpose: 'analytics',
      client: null,
      attributes: { regions: ['EMEA'], teams: ['shipping'] },
    });
  });

  it('names the client application from `azp`, else `client_id`, never from a non-string claim', async () => {
    expect((await verifier.verify(`Bearer ${rs256({ azp: 'crm-app', client_id: 'other' })}`)).client).toBe('crm-app');
    expect((await verifier.verify(`Bearer ${rs256({ client_id: 'bi-tool' })}`)).client).toBe('bi-tool');
    expect((await verifier.verify(`Bearer ${rs256({ azp: ['crm-app'] })}`)).client).toBeNull();
  });

  it('accepts ES256 keys from the JWKS, an `scp` list, and any of several audiences', async () => {
    const token = jwt.sign({ iss: ES_ISSUER, aud: 'other', sub: 'eve', exp: now() + 60, scp: ['read:a', 'read:b'] }, ec.privateKey, {
      algorithm: 'ES256',
      keyid: 'ec-1',
    });
    expect(await verifier.verify(`Bearer ${token}`)).toMatchObject({ subject: 'eve', scopes: ['read:a', 'read:b'] });
  });

  it('reads claims at dotted paths (e.g. Keycloak realm roles)', async () => {
    const keycloak = createTokenVerifier(config({ claims: { ...DEFAULT_CLAIMS, roles: 'realm_access.roles' } }));
    const token = rs256({ realm_access: { roles: ['steward'] } });
    expect((await keycloak.verify(`Bearer ${token}`)).roles).toEqual(['steward']);
  });

  it('treats a request without a token as anonymous, or refuses it when configured', async () => {
    expect(await verifier.verify(undefined)).toBe(ANONYMOUS);
    expect(await verifier.verify('')).toBe(ANONYMOUS);
    expect(await rejection(undefined, createTokenVerifier(config({ anonymous: 'reject' })))).toBe('MISSING_TOKEN');
  });

  // Forged and unusable tokens: each is refused with its own reason, never taken as anonymous.
  const forged: [string, () => string, string][] = [
    ['not a bearer token', () => 'Basic dXNlcjpwYXNz', 'MALFORMED_TOKEN'],
    ['not a JWT', () => 'Bearer not-a-jwt', 'MALFORMED_TOKEN'],
    ['alg: none', () => `Bearer ${base64url({ alg: 'none', typ: 'JWT' })}.${base64url({ iss: RS_ISSUER, aud: AUDIENCE, exp: now() + 60 })}.`, 'ALGORITHM_NOT_ALLOWED'],
    [
      'HS256 signed with the issuer\'s RSA public key',
      () => `Bearer ${jwt.sign({ iss: RS_ISSUER, aud: AUDIENCE, exp: now() + 60 }, Buffer.from(rsa.publicKey.export({ type: 'spki', format: 'pem' })), { algorithm: 'HS256' })}`,
      'ALGORITHM_NOT_ALLOWED',
    ],
    ['RS256 from an HS256 issuer', () => `Bearer ${jwt.sign({ iss: DEV_ISSUER, aud: DEV_AUDIENCE, exp: now() + 60 }, rsa.privateKey, { algorithm: 'RS256', keyid: 'rsa-1' })}`, 'ALGORITHM_NOT_ALLOWED'],
    ['signed with another key under a known kid', () => `Bearer ${rs256({}, { key: rsaOther.privateKey })}`, 'INVALID_SIGNATURE'],
    ['HS256 with the wrong secret', () => `Bearer ${jwt.sign({ iss: DEV_ISSUER, aud: DEV_AUDIENCE, exp: now() + 60 }, 'x'.repeat(40), { algorithm: 'HS256' })}`, 'INVALID_SIGNATURE'],
    ['a tampered payload', () => { const [h, , s] = rs256({ roles: ['analyst'] }).split('.'); return `Bearer ${h}.${base64url({ iss: RS_ISSUER, aud: AUDIENCE, exp: now() + 60, roles: ['admin'] })}.${s}`; }, 'INVALID_SIGNATURE'],
    ['expired', () => `Bearer ${rs256({ exp: now() - 120 })}`, 'TOKEN_EXPIRED'],
    ['not yet valid', () => `Bearer ${rs256({ nbf: now() + 600 })}`, 'TOKEN_NOT_YET_VALID'],
    ['for another audience', () => `Bearer ${rs256({ aud: 'someone-else' })}`, 'INVALID_AUDIENCE'],
    ['without an audience', () => `Bearer ${rs256({ aud: undefined })}`, 'INVALID_AUDIENCE'],
    ['from an unknown issuer', () => `Bearer ${rs256({ iss: 'https://evil.test' })}`, 'UNKNOWN_ISSUER'],
    ['without an issuer', () => `Bearer ${rs256({ iss: undefined })}`, 'UNKNOWN_ISSUER'],
    ['without an expiry', () => `Bearer ${rs256({ exp: undefined })}`, 'INVALID_CLAIMS'],
    ['with an unknown kid', () => `Bearer ${rs256({}, { kid: 'nope' })}`, 'UNKNOWN_KEY'],
    ['without a kid', () => `Bearer ${jwt.sign({ iss: RS_ISSUER, aud: AUDIENCE, exp: now() + 60 }, rsa.privateKey, { algorithm: 'RS256' })}`, 'UNKNOWN_KEY'],
  ];

  it.each(forged)('refuses a token %s', async (_what, authorization, reason) => {
    expect(await rejection(authorization())).toBe(reason);
  });

  it('allows a small clock skew on exp', async () => {
    expect((await verifier.verify(`Bearer ${rs256({ exp: now() - 10 })}`)).subject).toBe('ann');
  });

  it('says when a verified token stops being valid (its exp and the skew), remembered or not', async () => {
    const exp = now() + 600;
    const token = `Bearer ${rs256({ exp })}`;
    await verifier.verify(token);
    // The tests' verifier allows 30 s of skew: a subscription on this token ends then.
    expect(verifier.expiresAt(token)).toBe((exp + 30) * 1000);
    // One it no longer remembers (or never saw): its exp still, never "no expiry".
    const other = `Bearer ${rs256({ exp: exp + 1 })}`;
    expect(verifier.expiresAt(other)).toBe((exp + 31) * 1000);
    expect(verifier.expiresAt(undefined)).toBeNull();
  });

  it('refetches the JWKS for a new kid (key rotation), at a limited rate', async () => {
    const rotated = generateKeyPairSync('rsa', { modulusLength: 2048 });
    jwks.keys.set('rsa-2', rotated.publicKey);
    const fresh = createTokenVerifier(config());
    expect((await fresh.verify(`Bearer ${rs256({}, { kid: 'rsa-2', key: rotated.privateKey })}`)).subject).toBe('ann');
    const before = jwks.fetches;
    for (let i = 0; i < 40; i++) expect(await rejection(`Bearer ${rs256({}, { kid: randomUUID() })}`, fresh)).toBe('UNKNOWN_KEY');
    // At most one fetch per 5 s window, however many unknown kids arrive.
    expect(jwks.fetches - before).toBeLessThanOrEqual(1);
  });

  it('lets no junk kid lock out a key rotated in: junk spends no budget, the new key verifies within the refetch interval', async () => {
    const quick = createTokenVerifier(config({ jwksMinRefetchMs: 300 }));
    expect((await quick.verify(`Bearer ${rs256({})}`)).subject).toBe('ann');
    // Anonymous junk: a stream of unknown kids, and one repeated kid.
    for (let i = 0; i < 50; i++) expect(await rejection(`Bearer ${rs256({}, { kid: randomUUID() })}`, quick)).toBe('UNKNOWN_KEY');
    const repeated = jwks.fetches;
    for (let i = 0; i < 20; i++) expect(await rejection(`Bearer ${rs256({}, { kid: 'junk-kid' })}`, quick)).toBe('UNKNOWN_KEY');
    await new Promise((resolve) => setTimeout(resolve, 350));
    expect(await rejection(`Bearer ${rs256({}, { kid: 'junk-kid' })}`, quick)).toBe('UNKNOWN_KEY');
    // Repeated junk costs what any junk costs: one fetch per interval at most (two intervals here).
    expect(jwks.fetches - repeated).toBeLessThanOrEqual(2);
    // The issuer rotates a key in; its first token verifies as soon as the interval allows a fetch.
    const rotated = generateKeyPairSync('rsa', { modulusLength: 2048 });
    jwks.keys.set('rsa-3', rotated.publicKey);
    await new Promise((resolve) => setTimeout(resolve, 350));
    expect((await quick.verify(`Bearer ${rs256({}, { kid: 'rsa-3', key: rotated.privateKey })}`)).subject).toBe('ann');
  });

  it('verifies a key published just after junk, or after an early try, within the refetch interval', async () => {
    const quick = createTokenVerifier(config({ jwksMinRefetchMs: 300 }));
    // Junk fetches the key set; the issuer publishes a key a moment later; a client tries it at once.
    expect(await rejection(`Bearer ${rs256({}, { kid: randomUUID() })}`, quick)).toBe('UNKNOWN_KEY');
    const rotated = generateKeyPairSync('rsa', { modulusLength: 2048 });
    jwks.keys.set('rsa-early', rotated.publicKey);
    const early = `Bearer ${rs256({}, { kid: 'rsa-early', key: rotated.privateKey })}`;
    // Within the interval no fetch is made: refused as unknown for now.
    expect(await rejection(early, quick)).toBe('UNKNOWN_KEY');
    // One interval later it verifies (it stayed refused for a minute).
    await new Promise((resolve) => setTimeout(resolve, 350));
    expect((await quick.verify(early)).subject).toBe('ann');
    // A key looked up before it is published (the fetch finds nothing), published, then used again.
    const later = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const tooSoon = `Bearer ${rs256({}, { kid: 'rsa-later', key: later.privateKey })}`;
    await new Promise((resolve) => setTimeout(resolve, 350));
    expect(await rejection(tooSoon, quick)).toBe('UNKNOWN_KEY');
    jwks.keys.set('rsa-later', later.publicKey);
    await new Promise((resolve) => setTimeout(resolve, 350));
    expect((await quick.verify(tooSoon)).subject).toBe('ann');
  });

  it('remembers a verified token by its exact text: the same principal again, frozen; a changed token is checked anew', async () => {
    const token = rs256({ roles: ['analyst'], regions: ['EMEA'] });
    const first = await verifier.verify(`Bearer ${token}`);
    expect(await verifier.verify(`Bearer ${token}`)).toBe(first);
    // Shared by every request that sends the token: no request can change it for the others.
    expect(() => (first.roles as string[]).push('admin')).toThrow();
    expect(() => Object.assign(first, { subject: 'mallory' })).toThrow();
    expect(() => (first.attributes.regions as string[]).push('APAC')).toThrow();
    const [header, payload, signature] = token.split('.');
    const elevated = base64url({ ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), roles: ['admin'] });
    expect(await rejection(`Bearer ${header}.${elevated}.${signature}`)).toBe('INVALID_SIGNATURE');
    expect(await rejection(`Bearer ${header}.${payload}.${signature!.slice(0, -2)}AA`)).toBe('INVALID_SIGNATURE');
  });

  it('refuses a remembered token once its exp has passed', async () => {
    const strict = createTokenVerifier(config({ clockToleranceSeconds: 0 }));
    const exp = now() + 1;
    const token = `Bearer ${rs256({ exp })}`;
    expect((await strict.verify(token)).subject).toBe('ann');
    await new Promise((resolve) => setTimeout(resolve, exp * 1000 - Date.now() + 50));
    expect(await rejection(token, strict)).toBe('TOKEN_EXPIRED');
  });

  it('refuses a remembered token once the issuer no longer publishes its key', async () => {
    const withdrawn = generateKeyPairSync('rsa', { modulusLength: 2048 });
    jwks.keys.set('rsa-withdrawn', withdrawn.publicKey);
    const quick = createTokenVerifier(config({ jwksMinRefetchMs: 200 }));
    const token = `Bearer ${rs256({}, { kid: 'rsa-withdrawn', key: withdrawn.privateKey })}`;
    expect((await quick.verify(token)).subject).toBe('ann');
    expect((await quick.verify(token)).subject).toBe('ann');
    // The issuer withdraws the key; the verifier's next fetch of the key set drops it.
    jwks.keys.delete('rsa-withdrawn');
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(await rejection(`Bearer ${rs256({}, { kid: 'not-yet-published' })}`, quick)).toBe('UNKNOWN_KEY');
    expect(await rejection(token, quick)).toBe('UNKNOWN_KEY');
  });

  it('says KEYS_UNAVAILABLE when the JWKS cannot be fetched', async () => {
    const unreachable = createTokenVerifier(config({ issuers: [{ issuer: RS_ISSUER, audience: AUDIENCE, algorithms: ['RS256'], jwksUri: 'http://127.0.0.1:9/jwks' }] }));
    expect(await rejection(`Bearer ${rs256({})}`, unreachable)).toBe('KEYS_UNAVAILABLE');
    // Within the refetch interval too: an unreadable JWKS never makes a key "unknown" (nor remembered as missing).
    expect(await rejection(`Bearer ${rs256({})}`, unreachable)).toBe('KEYS_UNAVAILABLE');
  });
});

describe('identity configuration', () => {
  it('refuses unsafe issuer settings', () => {
    const bad = (issuer: object) => () => createTokenVerifier(config({ issuers: [{ issuer: 'x', audience: 'a', ...issuer } as never] }));
    expect(bad({ algorithms: ['HS256', 'RS256'], secret: 'x'.repeat(40), jwksUri: 'http://k' })).toThrow(/HS256 cannot be mixed/);
    expect(bad({ algorithms: ['HS256'], secret: 'short' })).toThrow(/at least 32 characters/);
    expect(bad({ algorithms: ['RS256'] })).toThrow(/needs a jwksUri/);
    expect(bad({ algorithms: [] })).toThrow(IdentityConfigError);
  });

  it('trusts the development issuer by default, but never in production', async () => {
    const local = createTokenVerifier(identityConfigFromEnv({}));
    const token = mintDevToken({ subject: 'dev', roles: ['analyst'], regions: ['APAC'], purpose: 'analytics' });
    expect(await local.verify(`Bearer ${token}`)).toMatchObject({ subject: 'dev', roles: ['analyst'], purpose: 'analytics', attributes: { regions: ['APAC'] } });
    expect(() => identityConfigFromEnv({ NODE_ENV: 'production' })).toThrow(/refused in production/);
    expect(() => identityConfigFromEnv({ AUTH_ANONYMOUS: 'maybe' })).toThrow(/allow or reject/);
    expect(() => identityConfigFromEnv({ AUTH_ISSUERS: '{not json' })).toThrow(/not valid JSON/);
  });
});
