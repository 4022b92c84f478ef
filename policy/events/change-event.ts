/**
 * A data product's change events: what a load changed, as CloudEvents 1.0 in JSON (structured
 * mode, validated by the `cloudevents` SDK), carrying the product, the operation, the keys, the
 * product version and the changed fields: never a value. Consumers read the values through the
 * supergraph, under their own principal.
 *
 * Each event is signed by the feed that publishes it (HMAC-SHA256 with the mesh's signing key,
 * `SUBGRAPH_SIGNING_KEY`, in the `meshsignature` extension attribute), over its JSON text without
 * that attribute; a consumer drops an event whose signature is missing or wrong: anyone who can
 * publish to a product's subject but holds no key cannot inject a change.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { CloudEvent } from 'cloudevents';

export const CHANGE_EVENT_TYPE = 'mesh.dataproduct.changed.v1';

/** A product's id in events: `<domain>.<product>`, lower-case SQL-like names (they name subjects, streams and folders). */
export const PRODUCT_ID = /^[a-z][a-z0-9_]{0,62}\.[a-z][a-z0-9_]{0,62}$/;

/** The most keys one event carries: a load's larger changes are published as several events. */
export const MAX_KEYS_PER_EVENT = 500;

export interface ProductChange {
  /** `<domain>.<product>`. */
  readonly product: string;
  /** `upsert`: the rows of these keys were added or changed; `delete`: they are gone. */
  readonly operation: 'upsert' | 'delete';
  /** The changed entities' keys, as text (the product's key field). */
  readonly keys: readonly string[];
  /** The product version that holds the change (the load's time, ISO-8601). */
  readonly version: string;
  /** The product's fields the change touched (all of them for a new row; none for a delete). */
  readonly changedFields: readonly string[];
}

/** A change event as it travels: CloudEvents 1.0 attributes, the change as `data`, and its signature. */
export interface ChangeEvent {
  readonly specversion: '1.0';
  /** Unique and stable: publishing it again (a retry, a replayed outbox) is a duplicate the feed drops. */
  readonly id: string;
  /** The publishing domain: `urn:mesh:domain:<domain>`. */
  readonly source: string;
  readonly type: typeof CHANGE_EVENT_TYPE;
  /** The product, `<domain>.<product>`. */
  readonly subject: string;
  readonly time: string;
  readonly datacontenttype: 'application/json';
  readonly data: ProductChange;
  /** `v1=<hex HMAC-SHA256>` over the event's JSON without this attribute. */
  readonly meshsignature: string;
}

/** A change that cannot be an event (policy/errors.ts: EVENT_INVALID). */
export class ChangeEventError extends Error {
  override name = 'ChangeEventError';
  readonly code = 'EVENT_INVALID';
}

const mac = (key: string, text: string) => createHmac('sha256', key).update(text).digest('hex');

/** Checks a change's shape: a product id, an operation, 1 to MAX_KEYS_PER_EVENT keys, a version, field names. */
function checkedChange(change: unknown): ProductChange {
  const value = change as Partial<ProductChange> | null;
  if (typeof value !== 'object' || value === null) throw new ChangeEventError('A change event carries its change as an object.');
  if (typeof value.product !== 'string' || !PRODUCT_ID.test(value.product)) throw new ChangeEventError(`A change names its product as <domain>.<product>, not ${JSON.stringify(value.product)}.`);
  if (value.operation !== 'upsert' && value.operation !== 'delete') throw new ChangeEventError(`A change's operation is upsert or delete, not ${JSON.stringify(value.operation)}.`);
  if (!Array.isArray(value.keys) || value.keys.length === 0 || value.keys.length > MAX_KEYS_PER_EVENT || !value.keys.every((key) => typeof key === 'string' && key.length > 0 && key.length <= 200)) {
    throw new ChangeEventError(`A change carries 1 to ${MAX_KEYS_PER_EVENT} keys, each a non-empty text of up to 200 characters.`);
  }
  if (typeof value.version !== 'string' || Number.isNaN(Date.parse(value.version))) throw new ChangeEventError('A change names the product version that holds it (an ISO-8601 time).');
  if (!Array.isArray(value.changedFields) || !value.changedFields.every((field) => typeof field === 'string' && /^[_A-Za-z][_0-9A-Za-z]{0,99}$/.test(field))) {
    throw new ChangeEventError('A change lists the fields it touched by their names.');
  }
  return { product: value.product, operation: value.operation, keys: [...value.keys], version: value.version, changedFields: [...value.changedFields] };
}

/** A signed change event. `id` must be stable for the same change (a retried publish is then a duplicate). */
export function signChangeEvent(options: { readonly id: string; readonly change: ProductChange; readonly time?: Date; readonly key: string }): ChangeEvent {
  const data = checkedChange(options.change);
  const unsigned = {
    specversion: '1.0' as const,
    id: options.id,
    source: `urn:mesh:domain:${data.product.split('.')[0]}`,
    type: CHANGE_EVENT_TYPE as typeof CHANGE_EVENT_TYPE,
    subject: data.product,
    time: (options.time ?? new Date()).toISOString(),
    datacontenttype: 'application/json' as const,
    data,
  };
  // The SDK checks the attributes against the specification (id, source, time, extension names).
  new CloudEvent({ ...unsigned, meshsignature: 'v1=0' }, true).validate();
  return { ...unsigned, meshsignature: `v1=${mac(options.key, JSON.stringify(unsigned))}` };
}

/**
 * The change event in a message's text, if it is one signed by one of `keys` (the current signing
 * key, and the previous one during a rotation) for `product`; `null` for anything else: not JSON,
 * not a valid CloudEvent, unsigned, forged, altered, or about another product.
 */
export function verifyChangeEvent(text: string, options: { readonly keys: readonly string[]; readonly product: string }): ChangeEvent | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return null;
  const { meshsignature, ...unsigned } = parsed as Record<string, unknown>;
  if (typeof meshsignature !== 'string' || !/^v1=[0-9a-f]{64}$/.test(meshsignature)) return null;
  // The signed text is the event's JSON without its signature, in the order it was written.
  const body = JSON.stringify(unsigned);
  const given = Buffer.from(meshsignature.slice(3), 'hex');
  if (!options.keys.some((key) => timingSafeEqual(Buffer.from(mac(key, body), 'hex'), given))) return null;
  try {
    new CloudEvent({ ...unsigned, meshsignature }, true).validate();
    const data = checkedChange(unsigned.data);
    if (unsigned.type !== CHANGE_EVENT_TYPE || unsigned.subject !== options.product || data.product !== options.product) return null;
    return parsed as ChangeEvent;
  } catch {
    return null;
  }
}

/**
 * What a feed drops a publish as a duplicate by: the event's id with its signature, which only a
 * holder of the key can make. By the id alone, anyone able to write to the subject could publish a
 * message with the id of an event to come, and the real one would be dropped as its duplicate.
 */
export const deduplicationIdOf = (event: ChangeEvent): string => `${event.id}/${event.meshsignature.slice(3)}`;
