/**
 * HASH as the documented derivation gives it, computed apart from the code under test with openssl:
 * the field's key is HMAC-SHA256(MASK_HASH_KEY, "field:<Type.field>") as hex text, the pseudonym
 * HMAC-SHA256(that key, value) as hex (policy/masking.test.ts pins fixed vectors of the same).
 */
import { spawnSync } from 'node:child_process';

/** HMAC-SHA256 of `text` under `key`, as hex, by openssl. */
export function opensslHmac(key: string, text: string): string {
  const run = spawnSync('openssl', ['dgst', '-sha256', '-hmac', key], { input: text, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`openssl failed: ${run.stderr}`);
  return run.stdout.trim().split(/\s+/).at(-1)!;
}

/** The pseudonym a field (`Type.field`) masked with HASH shows for `value` under `hashKey`. */
export function expectedPseudonym(hashKey: string, coordinate: string, value: string): string {
  return opensslHmac(opensslHmac(hashKey, `field:${coordinate}`), value);
}
