/**
 * The DuckDB warehouse adapter: an embedded database file per domain.
 *
 * Kysely compiles PostgreSQL-flavoured SQL with `$n` placeholders, which DuckDB accepts as prepared
 * statement parameters; this file supplies the driver that runs it through `@duckdb/node-api` and
 * converts result values into the adapter-independent {@link WarehouseValue} contract.
 */
import {
  DOUBLE,
  DuckDBInstance,
  DuckDBTypeId,
  JSDuckDBValueConverter,
  ResultReturnType,
  type DuckDBConnection,
  type DuckDBType,
  type DuckDBValue,
  type DuckDBValueConverter,
} from '@duckdb/node-api';
import {
  CompiledQuery,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  sql,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type QueryResult,
} from 'kysely';
import {
  StatementObservers,
  type CsvLoad,
  type StatementListener,
  type Warehouse,
  type WarehouseValue,
} from './warehouse.js';

export interface DuckDbWarehouseOptions {
  /** The database file, or `:memory:`. */
  readonly file: string;
  /** Open read-only (default `true`): serving never writes, and several processes may read one file. */
  readonly readOnly?: boolean;
  /** DuckDB's memory limit (e.g. `512MB`; default DuckDB's, 80% of the machine's): beyond it, sorts and aggregates spill to disk. */
  readonly memoryLimit?: string;
}

function toSafeNumber(value: bigint): number | string {
  // Counts and integer sums fit easily; anything beyond 2^53 stays exact as a string.
  return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER)
    ? Number(value)
    : value.toString();
}

/** DuckDB values → {@link WarehouseValue}: the same shapes the PostgreSQL adapter produces. */
const convertValue: DuckDBValueConverter<WarehouseValue> = (value, type) => {
  if (value === null) return null;
  switch (type.typeId) {
    case DuckDBTypeId.DECIMAL:
      // Through the decimal's exact text, so 12.34 becomes the double nearest 12.34.
      return Number(String(value));
    case DuckDBTypeId.BIGINT:
    case DuckDBTypeId.UBIGINT:
    case DuckDBTypeId.HUGEINT:
    case DuckDBTypeId.UHUGEINT:
      return toSafeNumber(BigInt(String(value)));
    case DuckDBTypeId.DATE:
      return String(value);
    case DuckDBTypeId.TIMESTAMP:
    case DuckDBTypeId.TIMESTAMP_MS:
    case DuckDBTypeId.TIMESTAMP_S:
    case DuckDBTypeId.TIMESTAMP_TZ: {
      const date = JSDuckDBValueConverter(value, type, JSDuckDBValueConverter);
      return date instanceof Date ? date.toISOString() : String(date);
    }
    default: {
      const converted = JSDuckDBValueConverter(value, type, JSDuckDBValueConverter);
      if (converted === null || ['string', 'number', 'boolean'].includes(typeof converted)) {
        return converted as WarehouseValue;
      }
      // Nested types (lists, structs) are in no data product; keep them readable as JSON text.
      return JSON.stringify(converted, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    }
  }
};

/**
 * The types to bind parameters with: inferred, except for a whole number beyond 2^53. DuckDB infers
 * an integer type from a whole JS number, and a value such as `1e20` (a valid GraphQL Float, as in
 * `orders(filter: { minTotal: 1e20 })`) fails as "bigint out of int64 range"; it is a double, as
 * the caller sent it.
 */
function parameterTypes(parameters: readonly unknown[]): (DuckDBType | undefined)[] | undefined {
  let types: (DuckDBType | undefined)[] | undefined;
  parameters.forEach((value, i) => {
    if (typeof value === 'number' && Number.isInteger(value) && !Number.isSafeInteger(value)) (types ??= [])[i] = DOUBLE;
  });
  return types && Array.from({ length: parameters.length }, (_, i) => types![i]);
}

class DuckDbConnection implements DatabaseConnection {
  constructor(readonly connection: DuckDBConnection) {}

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    const result = await this.connection.run(query.sql, query.parameters as DuckDBValue[], parameterTypes(query.parameters) as DuckDBType[] | undefined);
    if (result.returnType === ResultReturnType.CHANGED_ROWS) {
      return { rows: [], numAffectedRows: BigInt(result.rowsChanged) };
    }
    const rows = await result.convertRowObjects(convertValue);
    return { rows: rows as R[] };
  }

  async *streamQuery<R>(query: CompiledQuery): AsyncIterableIterator<QueryResult<R>> {
    const result = await this.connection.stream(query.sql, query.parameters as DuckDBValue[], parameterTypes(query.parameters) as DuckDBType[] | undefined);
    for (;;) {
      const chunk = await result.fetchChunk();
      if (chunk === null || chunk.rowCount === 0) return;
      const names = result.deduplicatedColumnNames();
      const rows = chunk
        .convertRows(convertValue)
        .map((values) => Object.fromEntries(names.map((name, c) => [name, values[c] ?? null])));
      yield { rows: rows as R[] };
    }
  }
}

/** Idle connections kept for the next query: opening one per query cost 7% of a subgraph's time under load. */
const IDLE_CONNECTIONS = 8;

class DuckDbDriver implements Driver {
  readonly #options: DuckDbWarehouseOptions;
  #instance: DuckDBInstance | undefined;
  readonly #idle: DuckDBConnection[] = [];

  constructor(options: DuckDbWarehouseOptions) {
    this.#options = options;
  }

  async init(): Promise<void> {
    const readOnly = this.#options.readOnly ?? true;
    this.#instance = await DuckDBInstance.create(
      this.#options.file,
      // A build (writable) need not keep rows in the file's order (every read orders by key): loads
      // run about a quarter faster and hold less in memory (test/scaffold.bench.ts).
      readOnly && this.#options.file !== ':memory:'
        ? { access_mode: 'READ_ONLY' }
        : { preserve_insertion_order: 'false', ...(this.#options.memoryLimit ? { memory_limit: this.#options.memoryLimit } : {}) },
    );
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    if (!this.#instance) throw new Error('DuckDB driver used before init');
    // One connection per query in flight keeps concurrent queries independent; released ones are reused.
    return new DuckDbConnection(this.#idle.pop() ?? (await this.#instance.connect()));
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('BEGIN TRANSACTION'));
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('COMMIT'));
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('ROLLBACK'));
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    // Released after its statement or transaction ended: nothing of it carries over to the next query.
    const released = (connection as DuckDbConnection).connection;
    if (this.#instance && this.#idle.length < IDLE_CONNECTIONS) this.#idle.push(released);
    else released.closeSync();
  }

  async destroy(): Promise<void> {
    for (const connection of this.#idle.splice(0)) connection.closeSync();
    this.#instance?.closeSync();
    this.#instance = undefined;
  }
}

function duckDbDialect(options: DuckDbWarehouseOptions): Dialect {
  return {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DuckDbDriver(options),
    createQueryCompiler: () => new PostgresQueryCompiler(),
    createIntrospector: (db) => new PostgresIntrospector(db),
  };
}

export function openDuckDbWarehouse<DB>(options: DuckDbWarehouseOptions): Warehouse<DB> {
  const observers = new StatementObservers();
  const db = new Kysely<DB>({
    dialect: duckDbDialect(options),
    log: observers.kyselyLog,
  });
  return {
    dialect: 'duckdb',
    location: `duckdb:${options.file}`,
    db,
    immutable: (options.readOnly ?? true) && options.file !== ':memory:',
    onStatement: (listener: StatementListener) => observers.add(listener),
    async loadCsv({ table, file, columns }: CsvLoad): Promise<number> {
      const names = sql.join(columns.map((column) => sql.ref(column)));
      // all_varchar: the table's declared types decide the casts, not DuckDB's sniffing of a sample.
      const result = await sql`INSERT INTO ${sql.table(table)} (${names})
        SELECT ${names} FROM read_csv(${file}, header = true, all_varchar = true)`.execute(db);
      return Number(result.numAffectedRows ?? 0n);
    },
    // One connection per query, no pool.
    poolStats: () => null,
    close: () => db.destroy(),
  };
}
