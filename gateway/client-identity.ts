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

export function clientOf(req: Request, principal: Principal): string {
  if (principal.client) return principal.client;
  const header = req.get('apollographql-client-name')?.trim().slice(0, MAX_HEADER_NAME);
  if (header) return header;
  if (principal.anonymous) return `ip:${req.socket.remoteAddress ?? 'unknown'}`;
  return 'unnamed';
}
