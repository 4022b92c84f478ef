/**
 * Identity: verifies a bearer JWT and maps its claims to a Principal.
 *
 * The issuer is chosen by the token's `iss`, and everything else comes from that issuer's
 * configuration, never from the token: the algorithms are pinned (so `none` and HS/RS confusion are
 * refused), the key is the issuer's shared secret (HS256, for local development) or a key from its
 * JWKS (RS256/ES256; refreshed in the background, refetched on an unknown `kid` at most every few
 * seconds, missing `kid`s remembered: see jwks-keys.ts). `iss`, `aud` and
 * `exp` are required; `exp` and `nbf` are checked with a small clock tolerance. A token verified
 * once is remembered by its text until its `exp` (its key checked again on each use).
 */
import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import jwt, { type Algorithm, type JwtPayload } from 'jsonwebtoken';
import { LRUCache } from 'lru-cache';
import { createJwksKeys, UnknownKeyError, type JwksKeys } from './jwks-keys.js';
import { ANONYMOUS, type Principal } from './principal.js';

export type SigningAlgorithm = 'RS256' | 'ES256' | 'HS256';

export interface IssuerConfig {
  /** The `iss` tokens of this issuer carry. */
  readonly issuer: string;
  /** Accepted audiences: the token's `aud` must name one. */
  readonly audience: string | readonly string[];
  /** The algorithms this issuer signs with; HS256 is for local development and stands alone. */
  readonly algorithms: readonly SigningAlgorithm[];
  /** Where RS256/ES256 keys are published. */
  readonly jwksUri?: string;
  /** The shared secret of an HS256 issuer (at least 32 characters). */
  readonly secret?: string;
}

export interface ClaimMapping {
  /** Claim (or dotted path) of the subject. Default `sub`. */
  readonly subject: string;
  /** Claim of the roles (a list or a space-separated string). Default `roles`. */
  readonly roles: string;
  /** Claims tried in turn for the scopes: a space-separated `scope` string or an `scp` list. */
  readonly scopes: readonly string[];
  /** Claim of the declared purpose of use. Default `purpose`. */
  readonly purpose: string;
  /** Claims tried in turn for the client application. Default `azp`, then `client_id`. */
  readonly client: readonly string[];
  /** Row-policy attributes: attribute name → claim, e.g. `{ regions: 'regions' }`. */
  readonly attributes: Readonly<Record<string, string>>;
}

export interface IdentityConfig {
  readonly issuers: readonly IssuerConfig[];
  readonly claims: ClaimMapping;
  /** A request without a token: `allow` as anonymous (PUBLIC fields only), or `reject` with 401. */
  readonly anonymous: 'allow' | 'reject';
  /** Leeway for `exp` and `nbf`, in seconds (default 30). */
  readonly clockToleranceSeconds: number;
  /** The least time between two JWKS fetches caused by unknown `kid`s, per issuer (default 5000 ms; see jwks-keys.ts). */
  readonly jwksMinRefetchMs: number;
}

/** Why a token was refused: the `reason` of a 401. */
export const TOKEN_REJECTIONS = {
  MISSING_TOKEN: 'No bearer token, and this server does not accept anonymous requests.',
  MALFORMED_TOKEN: 'The Authorization header is not `Bearer <JWT>`, or the JWT cannot be decoded.',
  UNKNOWN_ISSUER: 'The token\'s `iss` is not a configured issuer.',
  ALGORITHM_NOT_ALLOWED: 'The token is signed with an algorithm its issuer is not pinned to (including `none`).',
  UNKNOWN_KEY: 'No key of the issuer\'s JWKS has the token\'s `kid`, even after refreshing it.',
  KEYS_UNAVAILABLE: 'The issuer\'s JWKS could not be fetched to check the token.',
  INVALID_SIGNATURE: 'The signature does not match the issuer\'s key.',
  TOKEN_EXPIRED: 'The token\'s `exp` has passed.',
  TOKEN_NOT_YET_VALID: 'The token\'s `nbf` is still in the future.',
  INVALID_AUDIENCE: 'The token\'s `aud` names none of the accepted audiences.',
  INVALID_CLAIMS: 'A required claim is missing or has the wrong type (`exp` is required).',
} as const;

export type TokenRejection = keyof typeof TOKEN_REJECTIONS;

export class TokenRejectedError extends Error {
  override name = 'TokenRejectedError';
  constructor(
    readonly reason: TokenRejection,
    message: string = TOKEN_REJECTIONS[reason],
  ) {
    super(message);
  }
}

export class IdentityConfigError extends Error {
  override name = 'IdentityConfigError';
}

export interface TokenVerifier {
  /** The principal of an `Authorization` header value; throws TokenRejectedError. */
  verify(authorization: string | undefined): Promise<Principal>;
  /** When a token `verify` accepted stops being valid (its `exp` with the clock tolerance), in ms since the epoch; null for none. */
  expiresAt(authorization: string | undefined): number | null;
}

function validateIssuer(config: IssuerConfig): void {
  const { issuer, algorithms } = config;
  if (algorithms.length === 0) throw new IdentityConfigError(`Issuer ${issuer}: no algorithms.`);
  if (algorithms.includes('HS256')) {
    if (algorithms.length > 1) throw new IdentityConfigError(`Issuer ${issuer}: HS256 cannot be mixed with public-key algorithms.`);
    if (!config.secret || config.secret.length < 32) throw new IdentityConfigError(`Issuer ${issuer}: HS256 needs a secret of at least 32 characters.`);
  } else if (!config.jwksUri) {
    throw new IdentityConfigError(`Issuer ${issuer}: ${algorithms.join('/')} needs a jwksUri.`);
  }
}

function claimAt(payload: JwtPayload, path: string): unknown {
  return path.split('.').reduce<unknown>((value, key) => (value && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined), payload);
}

function stringsOf(value: unknown): string[] {
  if (typeof value === 'string') return value.split(/\s+/).filter(Boolean);
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  return [];
}

function toPrincipal(payload: JwtPayload, claims: ClaimMapping): Principal {
  const subject = claimAt(payload, claims.subject);
  const purpose = claimAt(payload, claims.purpose);
  const scopeClaim = claims.scopes.map((name) => claimAt(payload, name)).find((value) => value !== undefined);
  const client = claims.client.map((name) => claimAt(payload, name)).find((value) => typeof value === 'string');
  return {
    anonymous: false,
    subject: typeof subject === 'string' ? subject : null,
    issuer: typeof payload.iss === 'string' ? payload.iss : null,
    roles: stringsOf(claimAt(payload, claims.roles)),
    scopes: stringsOf(scopeClaim),
    purpose: typeof purpose === 'string' ? purpose : null,
    client: typeof client === 'string' ? client : null,
    attributes: Object.fromEntries(
      Object.entries(claims.attributes).map(([attribute, claim]) => [attribute, stringsOf(claimAt(payload, claim))]),
    ),
  };
}

function rejectionOf(error: unknown): TokenRejectedError {
  if (error instanceof jwt.TokenExpiredError) return new TokenRejectedError('TOKEN_EXPIRED');
  if (error instanceof jwt.NotBeforeError) return new TokenRejectedError('TOKEN_NOT_YET_VALID');
  const message = error instanceof Error ? error.message : '';
  if (/audience invalid/.test(message)) return new TokenRejectedError('INVALID_AUDIENCE');
  if (/issuer invalid/.test(message)) return new TokenRejectedError('UNKNOWN_ISSUER');
  if (/invalid signature/.test(message)) return new TokenRejectedError('INVALID_SIGNATURE');
  if (/invalid algorithm/.test(message)) return new TokenRejectedError('ALGORITHM_NOT_ALLOWED');
  if (/expired/.test(message)) return new TokenRejectedError('TOKEN_EXPIRED');
  return new TokenRejectedError('MALFORMED_TOKEN');
}

/** How many verified tokens are kept, and their size at most (the token's length and ~512 bytes each). */
const VERIFIED_TOKENS = 10_000;
const VERIFIED_TOKEN_BYTES = 16 * 1024 * 1024;

interface VerifiedToken {
  readonly principal: Principal;
  /** When `exp` (with the clock tolerance) has passed, as jsonwebtoken counts it. */
  readonly validUntilMs: number;
  readonly issuer: IssuerConfig;
  readonly algorithm: SigningAlgorithm;
  readonly kid: string | undefined;
  /** The key it was verified with: the issuer's key for its `kid` must still be this one. */
  readonly key: KeyObject;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

const BEARER = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)$/;

export function createTokenVerifier(config: IdentityConfig): TokenVerifier {
  config.issuers.forEach(validateIssuer);
  const issuers = new Map(config.issuers.map((issuer) => [issuer.issuer, issuer]));
  const jwks = new Map<string, JwksKeys>();
  const jwksOf = (issuer: IssuerConfig) => {
    let keys = jwks.get(issuer.issuer);
    if (!keys) {
      keys = createJwksKeys({ jwksUri: issuer.jwksUri!, minRefetchMs: config.jwksMinRefetchMs });
      jwks.set(issuer.issuer, keys);
    }
    return keys;
  };

  // Keys as KeyObjects, made once: given a string, jsonwebtoken tries to read it as a public key on
  // every verification (and fails, for a shared secret), which cost a sixth of the gateway's time.
  const secretKeys = new Map<string, KeyObject>();
  const publicKeys = new Map<string, KeyObject>();
  const publicKeyOf = (pem: string): KeyObject => {
    let key = publicKeys.get(pem);
    if (!key) {
      if (publicKeys.size >= 256) publicKeys.clear(); // rotated keys do not pile up
      key = createPublicKey(pem);
      publicKeys.set(pem, key);
    }
    return key;
  };

  async function keyFor(issuer: IssuerConfig, algorithm: SigningAlgorithm, kid: string | undefined): Promise<KeyObject> {
    if (algorithm === 'HS256') {
      let key = secretKeys.get(issuer.issuer);
      if (!key) {
        key = createSecretKey(Buffer.from(issuer.secret!, 'utf8'));
        secretKeys.set(issuer.issuer, key);
      }
      return key;
    }
    if (!kid) throw new TokenRejectedError('UNKNOWN_KEY', 'The token has no `kid` to find its key by.');
    try {
      return publicKeyOf(await jwksOf(issuer).keyFor(kid));
    } catch (error) {
      if (error instanceof UnknownKeyError) throw new TokenRejectedError('UNKNOWN_KEY');
      throw new TokenRejectedError('KEYS_UNAVAILABLE');
    }
  }

  // Tokens verified before, by their exact text: a token sent again (every request of a session,
  // and the gateway's forwarded token at each subgraph) costs a lookup instead of a decode and a
  // signature check. Still refused once past its `exp`, or once its key is no longer the issuer's.
  const verified = new LRUCache<string, VerifiedToken>({ max: VERIFIED_TOKENS, maxSize: VERIFIED_TOKEN_BYTES, sizeCalculation: (_entry, token) => token.length + 512 });
  const stillValid = async (entry: VerifiedToken): Promise<boolean> => {
    if (Date.now() >= entry.validUntilMs) return false;
    try {
      return (await keyFor(entry.issuer, entry.algorithm, entry.kid)) === entry.key;
    } catch {
      return false;
    }
  };

  return {
    expiresAt(authorization) {
      const token = authorization === undefined ? undefined : BEARER.exec(authorization.trim())?.[1];
      if (!token) return null;
      const known = verified.get(token);
      if (known) return known.validUntilMs;
      // No longer remembered: its `exp` (every token verify accepts has one), never "no expiry".
      const payload = jwt.decode(token);
      return payload && typeof payload === 'object' && typeof payload.exp === 'number' ? (payload.exp + config.clockToleranceSeconds) * 1000 : null;
    },
    async verify(authorization) {
      if (authorization === undefined || authorization.trim() === '') {
        if (config.anonymous === 'reject') throw new TokenRejectedError('MISSING_TOKEN');
        return ANONYMOUS;
      }
      const token = BEARER.exec(authorization.trim())?.[1];
      const known = token ? verified.get(token) : undefined;
      if (known) {
        if (await stillValid(known)) return known.principal;
        verified.delete(token!); // and verified anew below, which says why it is refused
      }
      const decoded = token ? jwt.decode(token, { complete: true }) : null;
      if (!token || !decoded || typeof decoded.payload !== 'object') throw new TokenRejectedError('MALFORMED_TOKEN');
      const issuer = typeof decoded.payload.iss === 'string' ? issuers.get(decoded.payload.iss) : undefined;
      if (!issuer) throw new TokenRejectedError('UNKNOWN_ISSUER');
      const algorithm = decoded.header.alg as SigningAlgorithm;
      if (!issuer.algorithms.includes(algorithm)) throw new TokenRejectedError('ALGORITHM_NOT_ALLOWED');
      const key = await keyFor(issuer, algorithm, decoded.header.kid);
      let payload: JwtPayload;
      try {
        payload = jwt.verify(token, key, {
          algorithms: [...issuer.algorithms] as Algorithm[],
          issuer: issuer.issuer,
          audience: (typeof issuer.audience === 'string' ? issuer.audience : [...issuer.audience]) as string | [string, ...string[]],
          clockTolerance: config.clockToleranceSeconds,
        }) as JwtPayload;
      } catch (error) {
        throw rejectionOf(error);
      }
      if (typeof payload.exp !== 'number') throw new TokenRejectedError('INVALID_CLAIMS', 'The token has no `exp`: tokens must expire.');
      // Shared by every request that sends this token: frozen, so that none can change it for the others.
      const principal = deepFreeze(toPrincipal(payload, config.claims));
      verified.set(token, { principal, validUntilMs: (payload.exp + config.clockToleranceSeconds) * 1000, issuer, algorithm, kid: decoded.header.kid, key });
      return principal;
    },
  };
}
