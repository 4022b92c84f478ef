// The IDE's session: who is signed in and with which token, kept in this tab's session storage and
// never shown. Three ways in: the organisation's identity provider (OpenID Connect, authorization
// code with PKCE, by openid-client as a public client), the development sign-in, or a pasted token.
// With OpenID Connect the access token is renewed with the refresh token before it expires, and
// signing out ends the provider's session too (RP-initiated logout) when the provider offers it.
import * as oidc from 'openid-client';

const SESSION_KEY = 'datamesh:session';
const PENDING_KEY = 'datamesh:oidc-pending';
const LOOPBACK = ['127.0.0.1', 'localhost', '[::1]'];

/** The claims of a token, for showing who is signed in (the gateway verifies it; this only reads it). */
export function claimsOf(token) {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(payload));
  } catch {
    return null;
  }
}

/** Where the provider sends the browser back: the IDE itself. */
export function redirectUri() {
  return `${location.origin}/ide/`;
}

/** A session for a token: when it expires (its `exp`), how it was obtained, when. */
export function sessionFor(token, via, extra = {}) {
  const claims = claimsOf(token);
  const expiresAt = extra.expiresAt ?? (claims?.exp ? claims.exp * 1000 : null);
  return { token, via, signedInAt: extra.signedInAt ?? Date.now(), expiresAt, refreshToken: extra.refreshToken ?? null, idToken: extra.idToken ?? null };
}

/** The stored session; none when it cannot be read, or its token expired with no way to renew it. */
export function loadSession() {
  try {
    const session = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? 'null');
    if (!session?.token || claimsOf(session.token) === null) return null;
    if (session.expiresAt && session.expiresAt <= Date.now() && !session.refreshToken) return null;
    return session;
  } catch {
    return null;
  }
}

export function saveSession(session) {
  if (session) sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  else sessionStorage.removeItem(SESSION_KEY);
}

/** The provider's metadata, by discovery (plain http only on a loopback address, as the gateway allows). */
async function providerOf(settings) {
  const issuer = new URL(settings.issuer);
  const insecure = issuer.protocol === 'http:' && LOOPBACK.includes(issuer.hostname);
  return oidc.discovery(issuer, settings.clientId, undefined, oidc.None(), insecure ? { execute: [oidc.allowInsecureRequests] } : undefined);
}

const resourceOf = (settings) => (settings.resource ? { resource: settings.resource } : undefined);

/** Sends the browser to the provider to sign in (PKCE: the verifier and state wait in session storage). */
export async function startOidcSignIn(settings) {
  const provider = await providerOf(settings);
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  sessionStorage.setItem(PENDING_KEY, JSON.stringify({ verifier, state }));
  const url = oidc.buildAuthorizationUrl(provider, {
    redirect_uri: redirectUri(),
    scope: settings.scope,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    ...resourceOf(settings),
  });
  location.assign(url.href);
}

/** Whether this page is the provider's answer to a sign-in this tab started. */
export function isOidcCallback() {
  const params = new URLSearchParams(location.search);
  return sessionStorage.getItem(PENDING_KEY) !== null && (params.has('code') || params.has('error'));
}

function oidcSession(tokens, previous) {
  const expiresIn = tokens.expiresIn();
  return sessionFor(tokens.access_token, 'oidc', {
    signedInAt: previous?.signedInAt,
    expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : undefined,
    refreshToken: tokens.refresh_token ?? previous?.refreshToken ?? null,
    idToken: tokens.id_token ?? previous?.idToken ?? null,
  });
}

/** Exchanges the code the provider sent back (checking state and PKCE); the address bar loses it either way. */
export async function finishOidcSignIn(settings) {
  const pending = JSON.parse(sessionStorage.getItem(PENDING_KEY));
  sessionStorage.removeItem(PENDING_KEY);
  const answered = new URL(location.href);
  history.replaceState(null, '', redirectUri());
  if (answered.searchParams.has('error')) {
    throw new Error(`The identity provider did not sign you in: ${answered.searchParams.get('error_description') ?? answered.searchParams.get('error')}.`);
  }
  const provider = await providerOf(settings);
  try {
    const tokens = await oidc.authorizationCodeGrant(provider, answered, { pkceCodeVerifier: pending.verifier, expectedState: pending.state }, resourceOf(settings));
    return oidcSession(tokens);
  } catch (failure) {
    // openid-client says "invalid response encountered"; its cause says what (a state that is not ours, a code refused).
    throw new Error(`The sign-in could not be completed: ${failure.cause?.message ?? failure.error_description ?? failure.message}. Sign in again.`);
  }
}

/** A new access token for the session, from its refresh token. */
export async function refreshOidcSession(settings, session) {
  const provider = await providerOf(settings);
  return oidcSession(await oidc.refreshTokenGrant(provider, session.refreshToken, resourceOf(settings)), session);
}

/** When to renew: at four fifths of the token's remaining life, and not before a few seconds from now. */
export function renewalDelay(session) {
  if (!session?.expiresAt || !session.refreshToken) return null;
  return Math.max(2_000, Math.floor((session.expiresAt - Date.now()) * 0.8));
}

/** Signs out here, and at the provider when it offers an end-session endpoint (the browser goes there and comes back). */
export async function endSession(settings, session) {
  saveSession(null);
  if (session?.via !== 'oidc' || !settings) return;
  try {
    const provider = await providerOf(settings);
    if (!provider.serverMetadata().end_session_endpoint) return;
    const url = oidc.buildEndSessionUrl(provider, { post_logout_redirect_uri: redirectUri(), ...(session.idToken ? { id_token_hint: session.idToken } : {}) });
    location.assign(url.href);
  } catch {
    // The provider cannot be reached: signed out here all the same.
  }
}
