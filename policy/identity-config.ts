/**
 * Identity configuration, from the environment, shared by the gateway and every subgraph (each
 * verifies tokens itself). Without configuration it trusts one local-development issuer (HS256, a
 * well-known secret) and refuses to do so when NODE_ENV is production.
 */
import jwt from 'jsonwebtoken';
import { IdentityConfigError, type ClaimMapping, type IdentityConfig, type IssuerConfig } from './identity.js';

export const DEV_ISSUER = 'https://datamesh.dev/local';
export const DEV_AUDIENCE = 'data-mesh';
/** The local-development secret: public on purpose, refused in production. */
export const DEV_SECRET = 'local-development-secret-do-not-use-in-production';

/**
 * The roles and regions the development issuer knows: what this mesh's rules and row policies
 * mention. A development token for anything else would only answer empty lists.
 */
export const DEV_ROLES = ['analyst', 'finance', 'support', 'steward', 'admin'] as const;
export const DEV_REGIONS = ['AMERICAS', 'EMEA', 'APAC'] as const;

export const DEFAULT_CLAIMS: ClaimMapping = {
  subject: 'sub',
  roles: 'roles',
  scopes: ['scope', 'scp'],
  purpose: 'purpose',
  client: ['azp', 'client_id'],
  attributes: { regions: 'regions', teams: 'teams' },
};

function json<T>(env: NodeJS.ProcessEnv, name: string): T | undefined {
  const raw = env[name];
  if (!raw) return undefined;
  try {
    return JSON.parse(raw) as T;
  } catch {
    throw new IdentityConfigError(`${name} is not valid JSON.`);
  }
}

export function devIssuer(env: NodeJS.ProcessEnv = process.env): IssuerConfig {
  return { issuer: DEV_ISSUER, audience: DEV_AUDIENCE, algorithms: ['HS256'], secret: env.DEV_JWT_SECRET || DEV_SECRET };
}

/**
 * Production never trusts the development issuer, whatever its secret: without `AUTH_ISSUERS`, with
 * the development issuer listed in it, or with `DEV_JWT_SECRET` set, a service refuses to start.
 */
function refuseDevelopmentIdentityInProduction(env: NodeJS.ProcessEnv, issuers: readonly IssuerConfig[] | undefined): void {
  if (env.NODE_ENV !== 'production') return;
  if (!issuers) throw new IdentityConfigError('Production needs AUTH_ISSUERS (your identity provider): the local-development issuer is refused in production.');
  if (issuers.some((issuer) => issuer.issuer === DEV_ISSUER || issuer.secret === DEV_SECRET)) {
    throw new IdentityConfigError(`AUTH_ISSUERS lists the local-development issuer (${DEV_ISSUER}): it is refused in production, whatever its secret.`);
  }
  if (env.DEV_JWT_SECRET) throw new IdentityConfigError('DEV_JWT_SECRET is set: development tokens are refused in production; unset it.');
}

export function identityConfigFromEnv(env: NodeJS.ProcessEnv = process.env): IdentityConfig {
  const configured = json<IssuerConfig[]>(env, 'AUTH_ISSUERS');
  refuseDevelopmentIdentityInProduction(env, configured);
  const issuers = configured ?? [devIssuer(env)];
  const anonymous = env.AUTH_ANONYMOUS || 'allow';
  if (anonymous !== 'allow' && anonymous !== 'reject') throw new IdentityConfigError('AUTH_ANONYMOUS must be allow or reject.');
  const tolerance = Number(env.AUTH_CLOCK_TOLERANCE_SECONDS || 30);
  if (!Number.isFinite(tolerance) || tolerance < 0 || tolerance > 300) {
    throw new IdentityConfigError('AUTH_CLOCK_TOLERANCE_SECONDS must be between 0 and 300.');
  }
  return {
    issuers,
    claims: { ...DEFAULT_CLAIMS, ...json<Partial<ClaimMapping>>(env, 'AUTH_CLAIMS') },
    anonymous,
    clockToleranceSeconds: tolerance,
    jwksMinRefetchMs: 5_000,
  };
}

export interface DevTokenClaims {
  readonly subject: string;
  readonly roles?: readonly string[];
  readonly scopes?: readonly string[];
  readonly purpose?: string;
  readonly regions?: readonly string[];
  /** The domain teams it acts for (the registry API's `teams` claim). */
  readonly teams?: readonly string[];
  /** The application the token is issued to (`azp`). */
  readonly client?: string;
  /** Lifetime in seconds (default 8 hours). */
  readonly expiresInSeconds?: number;
}

/** A token of the local-development issuer (never in production). */
export function mintDevToken(claims: DevTokenClaims, issuer: IssuerConfig = devIssuer()): string {
  if (!issuer.secret) throw new IdentityConfigError('Development tokens need an HS256 issuer with a secret.');
  if (process.env.NODE_ENV === 'production') throw new IdentityConfigError('Development tokens are refused in production.');
  return jwt.sign(
    {
      roles: claims.roles ?? [],
      scope: (claims.scopes ?? []).join(' '),
      ...(claims.purpose ? { purpose: claims.purpose } : {}),
      regions: claims.regions ?? [],
      ...(claims.teams && claims.teams.length > 0 ? { teams: claims.teams } : {}),
      ...(claims.client ? { azp: claims.client } : {}),
    },
    issuer.secret,
    {
      algorithm: 'HS256',
      issuer: issuer.issuer,
      audience: typeof issuer.audience === 'string' ? issuer.audience : issuer.audience[0]!,
      subject: claims.subject,
      expiresIn: claims.expiresInSeconds ?? 8 * 3600,
    },
  );
}
