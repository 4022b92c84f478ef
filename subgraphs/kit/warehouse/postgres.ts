/**
 * The PostgreSQL warehouse adapter: a domain's tables in a schema of a PostgreSQL database.
 *
 * Kysely's own PostgreSQL dialect over a `pg` pool, with type parsers that give the same value
 * contract as the DuckDB adapter (exact decimals and counts as numbers, DATE as `YYYY-MM-DD`,
 * TIMESTAMP as ISO-8601 UTC), a statement timeout on every connection, and bulk loading with COPY.
 */
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { StatementObservers, type CsvLoad, type StatementListener, type Warehouse } from './warehouse.js';

export interface PostgresWarehouseOptions {
  /** `postgres://user@host:port/database`; credentials never leave this module. */
  readonly connectionString: string;
  /** The schema holding the domain's tables (its search path). */
  readonly schema: string;
  /** Connections in the pool (default 10). */
  readonly poolSize?: number;
  /** A statement running longer is cancelled (default 15 s). */
  readonly statementTimeoutMs?: number;
  /** Default `true`: every transaction is read-only, so serving can never write. */
  readonly readOnly?: boolean;
  /** Server settings of every connection (`{ jit: 'off' }`); names and values are plain words and numbers. */
  readonly settings?: Readonly<Record<string, string>>;
}

const { types } = pg;

/** `1234567` and `-12.50` → numbers; beyond 2^53 stays exact text. */
function toNumber(text: string): number | string {
  const value = Number(text);
  return Number.isSafeInteger(value) || !/^-?\d+$/.test(text) ? value : text;
}

/** `2024-02-29 13:14:15.123` (timestamp without time zone, stored as UTC) → ISO-8601 with Z. */
function toIsoTimestamp(text: string): string {
  return new Date(`${text.replace(' ', 'T')}Z`).toISOString();
}

const TYPE_PARSERS: Record<number, (text: string) => unknown> = {
  [types.builtins.INT8]: toNumber,
  [types.builtins.NUMERIC]: toNumber,
  [types.builtins.DATE]: (text) => text,
  [types.builtins.TIMESTAMP]: toIsoTimestamp,
  [types.builtins.TIMESTAMPTZ]: (text) => new Date(text).toISOString(),
};

const typeParsers = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    TYPE_PARSERS[oid] ?? types.getTypeParser(oid, format ?? 'text')) as typeof types.getTypeParser,
};

export function openPostgresWarehouse<DB>(options: PostgresWarehouseOptions): Warehouse<DB> {
  const observers = new StatementObservers();
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.poolSize ?? 10,
    statement_timeout: options.statementTimeoutMs ?? 15_000,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    // Unqualified table names resolve to the domain's schema only; serving never writes.
    options: [`-c search_path=${options.schema}`, ...((options.readOnly ?? true) ? ['-c default_transaction_read_only=on'] : []), ...Object.entries(options.settings ?? {}).map(([name, value]) => `-c ${name}=${value}`)].join(' '),
    types: typeParsers,
  });
  // A connection that dies while idle (the server went away) must not crash the process; the pool
  // replaces it, and the next query reconnects.
  pool.on('error', () => undefined);
  const db = new Kysely<DB>({
    dialect: new PostgresDialect({ pool }),
    log: observers.kyselyLog,
  });
  const url = new URL(options.connectionString);
  return {
    dialect: 'postgres',
    location: `postgres://${url.host}${url.pathname}?schema=${options.schema}`,
    db,
    // Others may write the server's tables, and a load swaps schemas under an open pool.
    immutable: false,
    onStatement: (listener: StatementListener) => observers.add(listener),
    async loadCsv({ table, file, columns }: CsvLoad): Promise<number> {
      const client = await pool.connect();
      try {
        const names = columns.map((column) => `"${column.replaceAll('"', '""')}"`).join(', ');
        // HEADER MATCH: PostgreSQL checks the file's header names against the column list.
        const copy = client.query(
          copyFrom(`COPY "${table.replaceAll('"', '""')}" (${names}) FROM STDIN WITH (FORMAT csv, HEADER MATCH)`),
        );
        const started = performance.now();
        await pipeline(createReadStream(file), copy);
        observers.emit({ sql: `COPY ${table} FROM STDIN`, parameters: [], durationMs: performance.now() - started });
        return Number(copy.rowCount);
      } finally {
        client.release();
      }
    },
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    close: () => db.destroy(),
  };
}

/** Creates the schema if needed (ingestion builds into its own schema). */
export async function ensureSchema(warehouse: Warehouse<unknown>, schema: string): Promise<void> {
  await sql`create schema if not exists ${sql.id(schema)}`.execute(warehouse.db);
}
