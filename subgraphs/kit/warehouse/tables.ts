/**
 * Declared warehouse tables: each domain lists its tables once, and ingestion creates them with
 * Kysely's schema builder (so the DDL fits any dialect), bulk-loads the raw CSV files as they are,
 * and, once the data quality checks pass, adds the keys, NOT NULL constraints and indexes.
 */
import { join } from 'node:path';
import { sql, type Kysely, type RawBuilder } from 'kysely';
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
  /**
   * A derived column computed from its own row's loaded columns by this SQL expression (for
   * example `round(quantity * unit_price, 2)`): filled as the rows are loaded, and as an increment
   * or a backfill writes them, so that no derivation step rewrites them afterwards.
   */
  readonly fromRow?: string;
}

export interface TableSpec {
  readonly name: string;
  /** The raw file in the domain's raw folder (default `<name>.csv`). */
  readonly file?: string;
  /**
   * `increments`: the table has no full file; it is filled only by increments (an input fed by
   * another domain's change feed writes them: events/inputs.ts), and a full load starts it empty.
   * `derived`: neither files nor increments fill it: the domain derives it from its other tables,
   * at ingestion and in `deriveIncrement` (e.g. sales per product, kept instead of summed per request).
   */
  readonly source?: 'files' | 'increments' | 'derived';
  readonly columns: readonly ColumnSpec[];
  readonly primaryKey: readonly string[];
  /** Secondary indexes, created after the load: the columns lookups and joins filter on. */
  readonly indexes?: readonly (readonly string[])[];
}

/** A column as a table declares it: its type, or its type with options. */
export type ColumnDeclaration = ColumnType | { readonly type: ColumnType; readonly nullable?: boolean; readonly derived?: boolean; readonly fromRow?: string };

/** A table declared once: its spec (for DDL and loading), and its columns (for the row type). */
export interface Table<Name extends string, Columns extends Readonly<Record<string, ColumnDeclaration>>> extends TableSpec {
  readonly name: Name;
  readonly declared: Columns;
}

type ValueOf<T extends ColumnType> = T extends 'integer' | `decimal(${number}, ${number})` ? number : T extends 'boolean' ? boolean : string;
/** A nullable column reads as null when empty, unless it is derived (filled after every load). */
type ValueOfColumn<C> = C extends ColumnType
  ? ValueOf<C>
  : C extends { readonly type: infer T extends ColumnType; readonly nullable: true; readonly derived?: false }
    ? ValueOf<T> | null
    : C extends { readonly type: infer T extends ColumnType }
      ? ValueOf<T>
      : never;

/** The row type of a declared table, as the warehouse adapters return it (dates and timestamps as ISO text). */
export type RowOf<T> = T extends Table<string, infer C> ? { -readonly [K in keyof C]: ValueOfColumn<C[K]> } : never;

/** The Kysely database type of a domain's declared tables: each table's name to its row type. */
export type WarehouseOf<Tables extends readonly Table<string, any>[]> = { [T in Tables[number] as T['name']]: RowOf<T> };

/**
 * Declares a table: its columns in order (`{ id: 'varchar', amount: 'decimal(10, 2)' }`), its key
 * and indexes; its row type follows (`RowOf<typeof table>`), so that the two never disagree.
 */
export function defineTable<const Name extends string, const Columns extends Readonly<Record<string, ColumnDeclaration>>>(
  name: Name,
  options: {
    readonly columns: Columns;
    readonly primaryKey: readonly (keyof Columns & string)[];
    readonly indexes?: readonly (readonly (keyof Columns & string)[])[];
    readonly file?: string;
    readonly source?: 'files' | 'increments' | 'derived';
  },
): Table<Name, Columns> {
  const columns = Object.entries(options.columns).map(([column, declared]): ColumnSpec => (typeof declared === 'string' ? { name: column, type: declared } : { name: column, ...declared }));
  const undeclared = columns.find((column) => column.fromRow !== undefined && !column.derived);
  if (undeclared) throw new Error(`${name}.${undeclared.name}: a column computed from its row (fromRow) is derived: declare it derived: true.`);
  return {
    name,
    declared: options.columns,
    columns,
    primaryKey: options.primaryKey,
    ...(options.indexes ? { indexes: options.indexes } : {}),
    ...(options.file ? { file: options.file } : {}),
    ...(options.source === 'increments' || options.source === 'derived' ? { source: options.source } : {}),
  };
}

/**
 * Creates a table without its key and NOT NULL constraints: a load takes the raw file as it is, so
 * that the data quality checks can measure what is wrong in it (a duplicated key, an empty required
 * column) instead of the load stopping at the first row. The constraints are added once the checks
 * pass (`finishTables`).
 */
async function createTable(db: Kysely<unknown>, table: TableSpec, dialect: WarehouseDialect): Promise<void> {
  let builder = db.schema.createTable(table.name);
  for (const column of table.columns) {
    builder = builder.addColumn(column.name, column.type, (c) => (column.type === 'varchar' ? dialectAdapter(dialect).textColumn(c) : c));
  }
  await builder.execute();
}

/**
 * Finishes loaded tables once their data passed the quality checks: each table's NOT NULL columns
 * and primary key, then its secondary indexes (DuckDB alters no table that an index depends on).
 * A table of more than `indexedRowsMax` rows gets neither key constraint nor index (see
 * `DialectAdapter.indexedRowsMax`; the quality gate has checked its key). Fails, naming the table,
 * when the data breaks a constraint.
 */
export async function finishTables(db: Kysely<unknown>, tables: readonly TableSpec[], indexedRowsMax = Number.POSITIVE_INFINITY): Promise<void> {
  const indexed = new Set<string>();
  for (const table of tables) {
    for (const column of table.columns) {
      if (!column.nullable) await db.schema.alterTable(table.name).alterColumn(column.name, (c) => c.setNotNull()).execute();
    }
    if (Number.isFinite(indexedRowsMax)) {
      const counted = await db.selectFrom(table.name as never).select(sql<number>`count(*)`.as('rows')).executeTakeFirstOrThrow();
      if (Number((counted as { rows: unknown }).rows) > indexedRowsMax) continue;
    }
    indexed.add(table.name);
    await db.schema.alterTable(table.name).addPrimaryKeyConstraint(`${table.name}_pkey`, [...table.primaryKey] as never).execute();
  }
  for (const table of tables.filter(({ name }) => indexed.has(name))) {
    for (const columns of table.indexes ?? []) {
      await db.schema
        .createIndex(`${table.name}_${columns.join('_')}_idx`)
        .on(table.name)
        .columns([...columns])
        .execute();
    }
  }
}

/**
 * Creates the tables and loads each from its CSV in one statement, as the file is (no constraint
 * stops the load); returns rows per table. `finishTables` adds keys and indexes after the checks.
 */
export async function loadTables<DB>(
  warehouse: Warehouse<DB>,
  rawDir: string,
  tables: readonly TableSpec[],
): Promise<Record<string, number>> {
  const db = warehouse.db as Kysely<unknown>;
  const rows: Record<string, number> = {};
  for (const table of tables) {
    await createTable(db, table, warehouse.dialect);
    if (table.source === 'increments' || table.source === 'derived') {
      rows[table.name] = 0; // filled by the increments merged after the full files, or by the domain's derivation
      continue;
    }
    rows[table.name] = await warehouse.loadCsv({
      table: table.name,
      file: join(rawDir, table.file ?? `${table.name}.csv`),
      columns: table.columns.filter((c) => !c.derived).map((c) => c.name),
    });
    const fromRow = table.columns.filter((c) => c.fromRow !== undefined);
    if (fromRow.length > 0) await sql`UPDATE ${sql.table(table.name)} SET ${sql.join(fromRow.map((c) => sql`${sql.ref(c.name)} = ${sql.raw(c.fromRow!)}`))}`.execute(db);
  }
  return rows;
}

/**
 * What an INSERT of staged rows writes into a table: its raw columns as they are, and the columns
 * computed from the row (`fromRow`), by their expressions over the staged row's columns.
 */
export function writtenColumns(table: TableSpec): { names: RawBuilder<unknown>; values: RawBuilder<unknown> } {
  const written = table.columns.filter((c) => !c.derived || c.fromRow !== undefined);
  return {
    names: sql.join(written.map((c) => sql.ref(c.name))),
    values: sql.join(written.map((c) => (c.fromRow === undefined ? sql.ref(c.name) : sql`${sql.raw(c.fromRow)}`))),
  };
}
