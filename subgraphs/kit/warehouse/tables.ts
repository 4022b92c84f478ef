/**
 * Declared warehouse tables: each domain lists its tables once, and ingestion creates them with
 * Kysely's schema builder (so the DDL fits any dialect), bulk-loads the raw CSV files and adds the
 * indexes after loading.
 */
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import { dialectAdapter } from './dialects.js';
import type { Warehouse, WarehouseDialect } from './warehouse.js';

export type ColumnType =
  | 'varchar'
  | 'integer'
  | 'boolean'
  | 'date'
  | 'timestamp'
  | `decimal(${number}, ${number})`;

export interface ColumnSpec {
  readonly name: string;
  readonly type: ColumnType;
  /** Default: NOT NULL. Only derived columns filled after loading may be nullable. */
  readonly nullable?: boolean;
  /** Filled by a derivation step after loading, not from the raw file. */
  readonly derived?: boolean;
}

export interface TableSpec {
  readonly name: string;
  /** The raw file in the domain's raw folder (default `<name>.csv`). */
  readonly file?: string;
  readonly columns: readonly ColumnSpec[];
  readonly primaryKey: readonly string[];
  /** Secondary indexes, created after the load: the columns lookups and joins filter on. */
  readonly indexes?: readonly (readonly string[])[];
}

async function createTable(db: Kysely<unknown>, table: TableSpec, dialect: WarehouseDialect): Promise<void> {
  let builder = db.schema.createTable(table.name);
  for (const column of table.columns) {
    builder = builder.addColumn(column.name, column.type, (c) => {
      const nullable = column.nullable ? c : c.notNull();
      return column.type === 'varchar' ? dialectAdapter(dialect).textColumn(nullable) : nullable;
    });
  }
  await builder.addPrimaryKeyConstraint(`${table.name}_pkey`, [...table.primaryKey] as never).execute();
}

/** Creates the tables, loads each from its CSV in one statement, then indexes; returns rows per table. */
export async function loadTables<DB>(
  warehouse: Warehouse<DB>,
  rawDir: string,
  tables: readonly TableSpec[],
): Promise<Record<string, number>> {
  const db = warehouse.db as Kysely<unknown>;
  const rows: Record<string, number> = {};
  for (const table of tables) {
    await createTable(db, table, warehouse.dialect);
    rows[table.name] = await warehouse.loadCsv({
      table: table.name,
      file: join(rawDir, table.file ?? `${table.name}.csv`),
      columns: table.columns.filter((c) => !c.derived).map((c) => c.name),
    });
  }
  for (const table of tables) {
    for (const columns of table.indexes ?? []) {
      await db.schema
        .createIndex(`${table.name}_${columns.join('_')}_idx`)
        .on(table.name)
        .columns([...columns])
        .execute();
    }
  }
  return rows;
}
