import type { Kysely } from 'kysely';
import { adapterOf } from './dialects.js';
import { parseWarehouseUrl, type Warehouse } from './warehouse.js';

export interface OpenWarehouseOptions {
  /** Default `true`: serving never writes. Ingestion opens for writing. */
  readonly readOnly?: boolean;
}

/** Opens the warehouse a URL names (`duckdb:<file>` or `postgres://…?schema=…`), with its dialect's adapter. */
export function openWarehouse<DB>(url: string, options: OpenWarehouseOptions = {}): Warehouse<DB> {
  const { adapter, location } = adapterOf(parseWarehouseUrl(url));
  return adapter.open<DB>(location, options.readOnly ?? true);
}

/**
 * What `read` finds in the warehouse at a URL, opened read-only beside any serving connection;
 * `empty` when there is no warehouse there, or it cannot be read.
 */
export async function readWarehouseAt<T>(url: string, read: (db: Kysely<any>) => Promise<T>, empty: T): Promise<T> {
  let warehouse: Warehouse<unknown>;
  try {
    warehouse = openWarehouse(url, { readOnly: true });
  } catch {
    return empty;
  }
  try {
    return await read(warehouse.db as Kysely<any>);
  } catch {
    return empty;
  } finally {
    await warehouse.close();
  }
}
