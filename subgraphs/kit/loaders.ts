/**
 * DataLoader helpers: one batched SQL statement per entity type (and argument set) per request.
 */
import DataLoader from 'dataloader';

export type BatchLoad<K, V> = (keys: readonly K[]) => Promise<readonly (V | Error)[]>;

/**
 * The loaders of one request. A loader is named and keyed by the field arguments it serves, so
 * `orders(first: 5)` on 100 customers is one statement, and `orders(first: 10)` beside it another.
 */
export class RequestLoaders {
  readonly #loaders = new Map<string, DataLoader<unknown, unknown>>();
  /** The data products (by name) the request read, for `extensions.dataProducts`. */
  readonly productsRead = new Set<string>();

  get<K, V>(name: string, args: unknown, batch: BatchLoad<K, V>): DataLoader<K, V> {
    // graphql-js coerces input objects in their type's field order, so equal arguments stringify equally.
    const id = `${name}\u0000${JSON.stringify(args ?? null)}`;
    let loader = this.#loaders.get(id) as DataLoader<K, V> | undefined;
    if (!loader) {
      loader = new DataLoader<K, V>(batch);
      this.#loaders.set(id, loader as DataLoader<unknown, unknown>);
    }
    return loader;
  }
}

/** Rows matched to keys, one row (or null) per key, in key order. */
export function oneByKey<K, R>(keys: readonly K[], rows: readonly R[], keyOf: (row: R) => K): (R | null)[] {
  const index = new Map<K, R>();
  for (const row of rows) index.set(keyOf(row), row);
  return keys.map((key) => index.get(key) ?? null);
}

/** Rows grouped by key, one (possibly empty) list per key, in key order; row order is kept. */
export function manyByKey<K, R>(keys: readonly K[], rows: readonly R[], keyOf: (row: R) => K): R[][] {
  const groups = new Map<K, R[]>(keys.map((key) => [key, []]));
  for (const row of rows) groups.get(keyOf(row))?.push(row);
  return keys.map((key) => groups.get(key) ?? []);
}
