/**
 * Which client an operation comes from, for rate limits, per-client metrics and usage: the token's
 * client (`azp`/`client_id`, verified), else the `apollographql-client-name` header, else, for
 * anonymous callers, their remote address.
 *
 * A header is the caller's word. It never stands for a verified client: it is named `claimed:<name>`
 * wherever clients are counted (metrics, usage records), and it gets no rate bucket of its own (the
 * subject's bucket counts its operations), so that a caller who sends an app's name can neither
 * spend that app's budget nor be counted as that app.
 */
import type { Request } from 'express';
import type { Principal } from '../../policy/principal.js';

/** The longest client name taken from a header (with `claimed:`, a metric label's 64 characters). */
const MAX_HEADER_NAME = 56;

/** The prefix of a client the request names only by its header. */
export const CLAIMED_PREFIX = 'claimed:';

/** The header by which a request names its client (Apollo's convention). */
export const CLIENT_NAME_HEADER = 'apollographql-client-name';

/** The client a request names, as a header value reads (`headers.get`), and whether a verified token says so. */
export function namedClient(principal: Principal, header: string | null | undefined): { readonly name: string; readonly verified: boolean } | null {
  if (principal.client) return { name: principal.client, verified: true };
  const claimed = header?.trim();
  return claimed ? { name: claimed, verified: false } : null;
}

/** The remote address of a request, as a bucket and label name (`ip:…`). */
export function addressOf(req: Request): string {
  return `ip:${req.socket.remoteAddress ?? 'unknown'}`;
}

/** The client as counted: the verified name, `claimed:<header>`, the address of an anonymous caller, or `unnamed`. */
export function clientOf(req: Request, principal: Principal): string {
  const named = namedClient(principal, req.get(CLIENT_NAME_HEADER));
  if (named) return named.verified ? named.name : `${CLAIMED_PREFIX}${named.name.slice(0, MAX_HEADER_NAME)}`;
  return principal.anonymous ? addressOf(req) : 'unnamed';
}
