/**
 * The warehouse adapter: the only way resolvers reach a domain's database.
 *
 * Queries are built with Kysely, so every value a caller supplies is a bound parameter (never
 * concatenated into SQL) and the SQL is compiled for the warehouse's dialect. Each adapter returns
 * rows in one value contract, whatever the database: see {@link WarehouseValue}.
 */
import type { Kysely, LogEvent } from 'kysely';

export type WarehouseDialect = 'duckdb' | 'postgres';

/**
 * What a row's column holds, on every adapter: exact decimals and integers as JS numbers, DATE as
 * `YYYY-MM-DD`, TIMESTAMP (UTC) as ISO-8601 with `Z`, text as strings.
 */
export type WarehouseValue = string | number | boolean | null;

export interface StatementEvent {
  readonly sql: string;
  readonly parameters: readonly unknown[];
  readonly durationMs: number;
  /** Set when the statement failed. */
  readonly error?: unknown;
}

export type StatementListener = (event: StatementEvent) => void;

export interface CsvLoad {
  /** An existing table of the warehouse. */
  readonly table: string;
  /** A CSV file with a header row naming (at least) `columns`. */
  readonly file: string;
  /** The table's columns to fill, named as in the CSV header. */
  readonly columns: readonly string[];
}

export interface Warehouse<DB = unknown> {
  readonly dialect: WarehouseDialect;
  /** Where it lives, without credentials (for logs and readiness details). */
  readonly location: string;
  /** The query builder over the domain's tables. */
  readonly db: Kysely<DB>;
  /**
   * Its data cannot change while it is open: a DuckDB file opened read-only (no other process can
   * write it meanwhile, and a new load is a new file swapped in, which an open warehouse never
   * sees). What is true of its rows at start stays true until it closes.
   */
  readonly immutable: boolean;
  /** Observe every statement run (tests count them, metrics time them). Returns an unsubscribe. */
  onStatement(listener: StatementListener): () => void;
  /** Bulk-load a CSV file into a table in one statement; resolves to the number of rows loaded. */
  loadCsv(load: CsvLoad): Promise<number>;
  /** Connection pool usage, for adapters with a pool (null otherwise). */
  poolStats(): { total: number; idle: number; waiting: number } | null;
  close(): Promise<void>;
}

/**
 * A warehouse URL names its adapter: `duckdb:<file>` (or `duckdb::memory:`), or
 * `postgres://user@host:port/database?schema=<schema>` (default schema `public`).
 */
export type WarehouseLocation =
  | { readonly dialect: 'duckdb'; readonly file: string }
  | { readonly dialect: 'postgres'; readonly connectionString: string; readonly schema: string };

export class WarehouseConfigError extends Error {
  override name = 'WarehouseConfigError';
}

export function parseWarehouseUrl(url: string): WarehouseLocation {
  if (url.startsWith('duckdb:')) {
    const file = url.slice('duckdb:'.length);
    if (file === '') throw new WarehouseConfigError(`Warehouse URL "${url}" names no file: use duckdb:<path>.`);
    return { dialect: 'duckdb', file };
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new WarehouseConfigError('The PostgreSQL warehouse URL cannot be parsed.');
    }
    const schema = parsed.searchParams.get('schema') || 'public';
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
      throw new WarehouseConfigError(`Warehouse schema "${schema}" must be a lower-case SQL identifier.`);
    }
    parsed.searchParams.delete('schema');
    return { dialect: 'postgres', connectionString: parsed.toString(), schema };
  }
  const scheme = url.split(':', 1)[0] ?? '';
  throw new WarehouseConfigError(`Warehouse URL scheme "${scheme}" is not supported: use duckdb:<path> or postgres://…`);
}

/**
 * Fans statement events out to listeners. A failing listener is reported once on stderr and never
 * fails the statement it observes.
 */
export class StatementObservers {
  readonly #listeners = new Set<StatementListener>();

  /** Kysely's `log` option: every statement it runs, with its duration and any error. */
  readonly kyselyLog = (event: LogEvent): void => {
    this.emit({
      sql: event.query.sql,
      parameters: event.query.parameters,
      durationMs: event.queryDurationMillis,
      ...(event.level === 'error' ? { error: event.error } : {}),
    });
  };

  add(listener: StatementListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  emit(event: StatementEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (error) {
        console.error('statement listener failed', error);
      }
    }
  }
}

