/**
 * How analysts sign in to the IDE with the organisation's identity provider: OpenID Connect, the
 * authorization code flow with PKCE, run in the browser by `openid-client` as a public client (no
 * secret), configured by the issuer's URL and the IDE's client id:
 *
 *   IDE_OIDC_ISSUER      the provider's issuer URL (https; http only on a loopback address)
 *   IDE_OIDC_CLIENT_ID   the IDE's client id at the provider (a public client whose redirect and
 *                        post-logout redirect URI are `<gateway>/ide/`)
 *   IDE_OIDC_SCOPE       default `openid profile offline_access` (offline_access: a refresh token,
 *                        so the IDE renews the access token before it expires)
 *   IDE_OIDC_RESOURCE    the resource indicator (RFC 8707, an absolute URI) the access token is
 *                        asked for, when the provider needs one to issue a JWT for this API
 *
 * The access token the IDE sends is verified like any other (AUTH_ISSUERS must trust the issuer:
 * the gateway refuses to start otherwise). The token stays in the page's memory and session
 * storage: never shown, never in GraphiQL's headers editor. The development sign-in stays for
 * `npm start`; both may be offered.
 */
import type { IdentityConfig } from '../../policy/identity.js';

export class IdeSignInConfigError extends Error {
  override name = 'IdeSignInConfigError';
}

export interface IdeSignInConfig {
  readonly issuer: string;
  readonly clientId: string;
  readonly scope: string;
  readonly resource: string | null;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** The IDE's OpenID Connect sign-in from the environment; null when `IDE_OIDC_ISSUER` is not set. */
export function ideSignInFromEnv(env: NodeJS.ProcessEnv, identity: IdentityConfig): IdeSignInConfig | null {
  const issuer = env.IDE_OIDC_ISSUER;
  if (!issuer) {
    if (env.IDE_OIDC_CLIENT_ID) throw new IdeSignInConfigError('IDE_OIDC_CLIENT_ID is set without IDE_OIDC_ISSUER: set both, or neither.');
    return null;
  }
  return checkIdeSignIn(
    { issuer, clientId: env.IDE_OIDC_CLIENT_ID ?? '', scope: env.IDE_OIDC_SCOPE || 'openid profile offline_access', resource: env.IDE_OIDC_RESOURCE || null },
    identity,
  );
}

/** Refuses a sign-in the gateway could not honour: a bad URL, plain http off loopback, an issuer it does not trust. */
export function checkIdeSignIn(config: IdeSignInConfig, identity: IdentityConfig): IdeSignInConfig {
  let url: URL;
  try {
    url = new URL(config.issuer);
  } catch {
    throw new IdeSignInConfigError(`IDE_OIDC_ISSUER is not a URL: "${config.issuer.slice(0, 80)}".`);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.has(url.hostname))) {
    throw new IdeSignInConfigError(`IDE_OIDC_ISSUER must be https (http only on a loopback address), got "${url.origin}".`);
  }
  if (url.username || url.password) throw new IdeSignInConfigError('IDE_OIDC_ISSUER must not carry credentials.');
  if (!/^[\x21-\x7e]{1,200}$/.test(config.clientId)) throw new IdeSignInConfigError('IDE_OIDC_CLIENT_ID must be set (printable, at most 200 characters) with IDE_OIDC_ISSUER.');
  if (config.resource !== null && !URL.canParse(config.resource)) throw new IdeSignInConfigError(`IDE_OIDC_RESOURCE must be an absolute URI (RFC 8707), got "${config.resource.slice(0, 80)}".`);
  if (!config.scope.split(/\s+/).includes('openid')) throw new IdeSignInConfigError(`IDE_OIDC_SCOPE must include openid, got "${config.scope.slice(0, 80)}".`);
  if (!identity.issuers.some((trusted) => trusted.issuer === config.issuer)) {
    throw new IdeSignInConfigError(`IDE_OIDC_ISSUER ${config.issuer} is not among AUTH_ISSUERS: the gateway would refuse every token the IDE signs in with.`);
  }
  return config;
}

/** The origin the IDE page may connect to for sign-in (its Content-Security-Policy's connect-src). */
export function signInOrigin(config: IdeSignInConfig | null): string | null {
  return config ? new URL(config.issuer).origin : null;
}
