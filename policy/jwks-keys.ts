/**
 * The signing keys of one issuer's JWKS, for token verification.
 *
 * An unknown `kid` may be a key just rotated in, or junk from anyone: refetching for every unknown
 * `kid` would let junk spend a per-minute budget and lock out a real new key. So:
 * - the whole key set is refreshed in the background (every 5 minutes): a key the issuer publishes
 *   before it signs with it, as issuers do, is known before its first token;
 * - an unknown `kid` refetches at most once per `minRefetchMs` (5 s) per issuer, concurrent lookups
 *   sharing one fetch: junk, repeated or new, costs the issuer one fetch per interval at most, and
 *   can delay a rotated key by that much, never more.
 *
 * No `kid` is remembered as missing: a memory longer than the interval is what let junk (or a
 * client that tried the new key a moment early) keep a just-published key refused for a minute,
 * and one no longer than the interval saves no fetch the interval does not already save.
 */
import { JwksClient } from 'jwks-rsa';

export class UnknownKeyError extends Error {
  override name = 'UnknownKeyError';
}

export interface JwksKeys {
  /** The PEM public key of `kid`; UnknownKeyError when the issuer has none, another error when its JWKS cannot be read. */
  keyFor(kid: string): Promise<string>;
  close(): void;
}

export interface JwksKeysOptions {
  readonly jwksUri: string;
  /** The least time between two fetches caused by unknown `kid`s (default 5000 ms). */
  readonly minRefetchMs?: number;
  /** How often the key set is refreshed in the background (default 5 minutes). */
  readonly refreshMs?: number;
  readonly timeoutMs?: number;
}

export function createJwksKeys(options: JwksKeysOptions): JwksKeys {
  const minRefetchMs = options.minRefetchMs ?? 5_000;
  const client = new JwksClient({ jwksUri: options.jwksUri, cache: false, rateLimit: false, timeout: options.timeoutMs ?? 5_000 });
  let keys = new Map<string, string>();
  let fetchedAt = 0;
  let fetching: Promise<void> | null = null;
  // The last fetch failed: an unknown kid then says nothing about the issuer's keys.
  let failed: unknown = null;

  const fetchKeys = (): Promise<void> => {
    fetching ??= client
      .getSigningKeys()
      .then((list) => {
        keys = new Map(list.filter((key) => key.kid).map((key) => [key.kid, key.getPublicKey()]));
        failed = null;
      })
      .catch((error: unknown) => {
        failed = error;
        throw error;
      })
      .finally(() => {
        fetchedAt = Date.now();
        fetching = null;
      });
    return fetching;
  };
  const timer = setInterval(() => void fetchKeys().catch(() => undefined), options.refreshMs ?? 5 * 60_000);
  timer.unref();

  return {
    async keyFor(kid) {
      const known = keys.get(kid);
      if (known) return known;
      if (fetching) await fetching;
      else if (fetchedAt === 0 || Date.now() - fetchedAt >= minRefetchMs) await fetchKeys();
      const found = keys.get(kid);
      if (found) return found;
      // The JWKS could not be read: the key is unavailable, not unknown.
      if (failed) throw failed;
      throw new UnknownKeyError(kid);
    },
    close() {
      clearInterval(timer);
    },
  };
}
