/**
 * Which client an operation comes from, for rate limits and per-client metrics: the token's client
 * (`azp`/`client_id`, verified), else the `apollographql-client-name` header, else, for anonymous
 * callers, their remote address. A header is the caller's word: the rate limits also keep a bucket
 * per subject (per address for anonymous callers), which no header changes.
 */
import type { Request } from 'express';
import type { Principal } from '../policy/principal.js';

/** The longest client name taken from a header. */
const MAX_HEADER_NAME = 64;

/** The client a request names: the token's, else the header's; null when neither names one. */
export function namedClientOf(req: Request, principal: Principal): string | null {
  return principal.client ?? (req.get('apollographql-client-name')?.trim().slice(0, MAX_HEADER_NAME) || null);
}

/** The remote address of a request, as a bucket and label name (`ip:…`). */
export function addressOf(req: Request): string {
  return `ip:${req.socket.remoteAddress ?? 'unknown'}`;
}

export function clientOf(req: Request, principal: Principal): string {
  return namedClientOf(req, principal) ?? (principal.anonymous ? addressOf(req) : 'unnamed');
}
