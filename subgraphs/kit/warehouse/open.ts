import { openDuckDbWarehouse } from './duckdb.js';
import { openPostgresWarehouse } from './postgres.js';
import { parseWarehouseUrl, type Warehouse } from './warehouse.js';

export interface OpenWarehouseOptions {
  /** Default `true`: serving never writes. Ingestion opens for writing. */
  readonly readOnly?: boolean;
}

/** Opens the warehouse a URL names (`duckdb:<file>` or `postgres://…?schema=…`). */
export function openWarehouse<DB>(url: string, options: OpenWarehouseOptions = {}): Warehouse<DB> {
  const location = parseWarehouseUrl(url);
  switch (location.dialect) {
    case 'duckdb':
      return openDuckDbWarehouse<DB>({ file: location.file, readOnly: options.readOnly ?? true });
    case 'postgres':
      // Serving reads only (read-only transactions); grant the subgraph's database role SELECT only.
      return openPostgresWarehouse<DB>({
        connectionString: location.connectionString,
        schema: location.schema,
        readOnly: options.readOnly ?? true,
      });
  }
}
