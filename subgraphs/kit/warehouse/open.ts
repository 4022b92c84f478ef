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
