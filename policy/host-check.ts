/**
 * DNS rebinding protection: a web page on `attacker.example`, resolved to 127.0.0.1, makes the
 * browser send `Host: attacker.example` to a mesh on a developer's machine. Every route of the
 * gateway and of each subgraph refuses a request whose `Host`, or whose `Origin` when it has one,
 * names a host that is not allowed (HTTP 403, HOST_NOT_ALLOWED).
 *
 * Allowed hosts come from `ALLOWED_HOSTS` (host names separated by commas, `*.` for subdomains; `*`
 * turns the check off). Without it, development allows the loopback names (`localhost`,
 * `*.localhost`, `127.0.0.1`, `::1`), and production allows any host: a deployment is reached
 * through names its proxy already checks; set `ALLOWED_HOSTS` there to check them here too.
 */
import type { RequestHandler } from 'express';
import { errorResponseBody } from './errors.js';

export const LOOPBACK_HOSTS: readonly string[] = ['localhost', '*.localhost', '127.0.0.1', '::1'];

/** The allowed host names, or null when every host is allowed. */
export function allowedHostsFromEnv(env: NodeJS.ProcessEnv = process.env): readonly string[] | null {
  const raw = env.ALLOWED_HOSTS?.trim();
  if (raw === '*') return null;
  if (raw) return raw.split(',').map((host) => host.trim().toLowerCase()).filter(Boolean);
  return env.NODE_ENV === 'production' ? null : LOOPBACK_HOSTS;
}

/** The host name of a `Host` header value (`name:port`, `[::1]:port`), lower-case, or null. */
function hostNameOf(value: string): string | null {
  // A name or an address, with a port: nothing a URL parser would read as user info or a path.
  if (!/^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/.test(value)) return null;
  try {
    return new URL(`http://${value}`).hostname.replace(/^\[|\]$/g, '').toLowerCase();
  } catch {
    return null;
  }
}

function matches(host: string, allowed: readonly string[]): boolean {
  return allowed.some((pattern) => (pattern.startsWith('*.') ? host.endsWith(pattern.slice(1)) : host === pattern));
}

/**
 * Why a request's Host or Origin is refused (`host "evil.test"`), or null when both are allowed (or
 * no list is set): for HTTP routes and WebSocket upgrades alike.
 */
export function foreignHostOf(headers: { readonly host?: string | undefined; readonly origin?: string | undefined }, allowed: readonly string[] | null): string | null {
  if (allowed === null) return null;
  const host = hostNameOf(headers.host ?? '');
  const origin = headers.origin;
  let originHost: string | null = null;
  if (origin !== undefined) {
    try {
      originHost = new URL(origin).hostname.replace(/^\[|\]$/g, '').toLowerCase();
    } catch {
      originHost = null; // `null` (a sandboxed page, a file) or garbage: not an allowed origin
    }
  }
  const hostAllowed = host !== null && matches(host, allowed);
  const originAllowed = origin === undefined || (originHost !== null && matches(originHost, allowed));
  if (hostAllowed && originAllowed) return null;
  return !hostAllowed ? `host "${(headers.host ?? '').slice(0, 100)}"` : `origin "${String(origin).slice(0, 100)}"`;
}

export const foreignHostMessage = (named: string, allowed: readonly string[]) => `Requests for the ${named} are refused: allowed hosts are ${allowed.join(', ')} (set ALLOWED_HOSTS).`;

export function refuseForeignHosts(allowed: readonly string[] | null): RequestHandler {
  return (req, res, next) => {
    const named = foreignHostOf(req.headers, allowed);
    if (named === null) return next();
    res.status(403).json(errorResponseBody('HOST_NOT_ALLOWED', foreignHostMessage(named, allowed!), res.locals.requestId));
  };
}
