/**
 * A scaffold's source, read through DuckDB: a CSV, Parquet or JSON-lines file, or a table or query of
 * a PostgreSQL database (extracted first, in a read-only transaction, with COPY to a CSV file). This
 * module checks it (size, encoding, column names), reads the first rows into a sample table for the
 * profile, and lands the whole source in the domain's raw folder as the CSV file its loads read
 * (renamed columns under their new names).
 */
import { isUtf8 } from 'node:buffer';
import { copyFile, open, stat } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { extname } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { ScaffoldError } from './codes.js';

export type SourceFormat = 'csv' | 'parquet' | 'jsonl' | 'postgres';

export interface SourceSpec {
  /** A file path, or a `postgres://` connection string. */
  readonly location: string;
  /** Default: from the file's extension (or the URL's scheme). */
  readonly format?: SourceFormat;
  /** PostgreSQL: the table (`schema.table` or `table`) … */
  readonly table?: string;
  /** … or a query. */
  readonly query?: string;
}

export interface SourceLimits {
  /** Largest source, in bytes (env `DOMAIN_SOURCE_MAX_BYTES`, default 8 GiB). */
  readonly maxBytes: number;
  /** Most columns (env `DOMAIN_SOURCE_MAX_COLUMNS`, default 500). */
  readonly maxColumns: number;
}

export const DEFAULT_LIMITS: SourceLimits = { maxBytes: 8 * 1024 ** 3, maxColumns: 500 };

export function limitsFromEnv(env: NodeJS.ProcessEnv = process.env): SourceLimits {
  const read = (name: string, fallback: number) => {
    const value = env[name];
    if (value === undefined || value === '') return fallback;
    const number = Number(value);
    if (!Number.isSafeInteger(number) || number < 1) throw new ScaffoldError('SCAFFOLD_USAGE', `${name} must be a whole number of at least 1, got "${value.slice(0, 40)}".`);
    return number;
  };
  return { maxBytes: read('DOMAIN_SOURCE_MAX_BYTES', DEFAULT_LIMITS.maxBytes), maxColumns: read('DOMAIN_SOURCE_MAX_COLUMNS', DEFAULT_LIMITS.maxColumns) };
}

/** A column as the source names and types it (DuckDB's type names). */
export interface SourceColumn {
  readonly name: string;
  readonly type: string;
}

/** A source ready to read: a file DuckDB reads, the SQL that reads it, its columns. */
export interface ReadableSource {
  readonly format: SourceFormat;
  /** The file read (for PostgreSQL: the extract). */
  readonly file: string;
  /** What the source was, for `source.json` (a connection string without its password). */
  readonly description: Record<string, string>;
  /** The table function that reads it all (`read_csv('…', …)`). */
  readonly reader: string;
  /** The names as the source gives them, in order (before DuckDB de-duplicates them). */
  readonly names: readonly string[];
  /** A CSV file DuckDB sniffed: whether it can be landed as it is (comma-separated, ISO dates). */
  readonly landsAsIs: boolean;
}

/** A SQL string literal. */
export const literal = (text: string) => `'${text.replaceAll("'", "''")}'`;
/** A SQL identifier, quoted. */
export const identifier = (name: string) => `"${name.replaceAll('"', '""')}"`;

export function formatOf(spec: SourceSpec): SourceFormat {
  if (spec.format) return spec.format;
  if (/^postgres(ql)?:\/\//i.test(spec.location)) return 'postgres';
  const extension = extname(spec.location).toLowerCase();
  if (extension === '.csv') return 'csv';
  if (extension === '.parquet') return 'parquet';
  if (extension === '.jsonl' || extension === '.ndjson') return 'jsonl';
  throw new ScaffoldError('SCAFFOLD_SOURCE_FORMAT', `The format of ${spec.location.slice(0, 200)} is not known from its name: give --format csv, parquet or jsonl (or a postgres:// URL).`);
}

/** Its size, or why it cannot be read. */
async function sizeOf(file: string, limits: SourceLimits): Promise<number> {
  let size: number;
  try {
    const found = await stat(file);
    if (!found.isFile()) throw new Error('not a file');
    size = found.size;
    await (await open(file, 'r')).close();
  } catch (error) {
    throw new ScaffoldError('SCAFFOLD_SOURCE_UNREADABLE', `${file} cannot be read: ${(error as Error).message}.`, { cause: error });
  }
  if (size > limits.maxBytes) throw new ScaffoldError('SCAFFOLD_SOURCE_TOO_LARGE', `${file} is ${size} bytes; the limit is ${limits.maxBytes} (DOMAIN_SOURCE_MAX_BYTES).`);
  return size;
}

/** How much of `bytes` ends on a whole character: an incomplete last sequence is left for the next chunk. */
function wholeCharacters(bytes: Uint8Array): number {
  const n = bytes.length;
  for (let back = 1; back <= Math.min(3, n); back++) {
    const byte = bytes[n - back]!;
    if ((byte & 0xc0) === 0x80) continue; // a continuation byte: look further back for its lead
    const length = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return length > back ? n - back : n;
  }
  return n;
}

/** Throws unless the file is UTF-8 throughout: read in chunks of 1 MiB (memory stays flat), each checked by `isUtf8`. */
async function assertUtf8(file: string): Promise<void> {
  const handle = await open(file, 'r');
  const chunk = Buffer.alloc(1 << 20);
  let carried = 0;
  let offset = 0;
  try {
    for (;;) {
      const { bytesRead } = await handle.read(chunk, carried, chunk.length - carried);
      if (bytesRead === 0) break;
      const filled = carried + bytesRead;
      const whole = wholeCharacters(chunk.subarray(0, filled));
      if (!isUtf8(chunk.subarray(0, whole))) {
        throw new ScaffoldError('SCAFFOLD_SOURCE_NOT_UTF8', `${file} is not UTF-8: invalid bytes within bytes ${offset} to ${offset + whole}. Convert it first (iconv -f <its encoding> -t UTF-8).`);
      }
      chunk.copy(chunk, 0, whole, filled);
      carried = filled - whole;
      offset += whole;
    }
    if (carried > 0) throw new ScaffoldError('SCAFFOLD_SOURCE_NOT_UTF8', `${file} is not UTF-8: it ends in the middle of a character.`);
  } finally {
    await handle.close();
  }
}

async function rows(connection: DuckDBConnection, query: string): Promise<Record<string, unknown>[]> {
  return (await connection.runAndReadAll(query)).getRowObjectsJson() as Record<string, unknown>[];
}

/** Runs a DuckDB read of the source, turning its failure into a coded error. */
export async function reading<T>(what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof ScaffoldError) throw error;
    const message = (error as Error).message.split('\n').slice(0, 3).join(' ').slice(0, 500);
    if (/not utf-8|invalid unicode/i.test(message)) throw new ScaffoldError('SCAFFOLD_SOURCE_NOT_UTF8', `${what} is not UTF-8: ${message}`, { cause: error });
    throw new ScaffoldError('SCAFFOLD_SOURCE_UNREADABLE', `${what} cannot be read: ${message}`, { cause: error });
  }
}

function tooMany(what: string, count: number, limits: SourceLimits): void {
  if (count > limits.maxColumns) throw new ScaffoldError('SCAFFOLD_TOO_MANY_COLUMNS', `${what} has ${count} columns; a data product serves at most ${limits.maxColumns} (DOMAIN_SOURCE_MAX_COLUMNS).`);
}

/** The PostgreSQL type a column comes as, in DuckDB's words (for reading the extract with the source's types). */
function duckTypeOfPostgres(oid: number): string {
  switch (oid) {
    case 16:
      return 'BOOLEAN';
    case 20:
      return 'BIGINT';
    case 21:
    case 23:
      return 'INTEGER';
    case 700:
    case 701:
      return 'DOUBLE';
    case 1700:
      return 'DOUBLE';
    case 1082:
      return 'DATE';
    case 1114:
      return 'TIMESTAMP';
    case 1184:
      return 'TIMESTAMPTZ';
    default:
      return 'VARCHAR';
  }
}

/** A connection string without its password, for the record. */
function withoutPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.href;
  } catch {
    return '(a connection string)';
  }
}

/** `schema.table` or `table`, as identifiers (a name with other characters is refused). */
function tableReference(table: string): string {
  const parts = table.split('.');
  if (parts.length > 2 || parts.some((part) => !/^[A-Za-z_][A-Za-z0-9_$]*$/.test(part))) {
    throw new ScaffoldError('SCAFFOLD_USAGE', `--table must be "table" or "schema.table" of letters, digits and _, got "${table.slice(0, 100)}"; use --query for anything else.`);
  }
  return parts.map(identifier).join('.');
}

/**
 * Extracts a PostgreSQL table or query to a CSV file, in a read-only transaction (the source cannot
 * be written through it, whatever the query says), counting bytes against the limit.
 */
async function extractPostgres(spec: SourceSpec, file: string, limits: SourceLimits): Promise<{ names: string[]; types: string[] }> {
  if (Boolean(spec.table) === Boolean(spec.query)) throw new ScaffoldError('SCAFFOLD_USAGE', 'A postgres:// source needs exactly one of --table and --query.');
  const select = spec.table ? `SELECT * FROM ${tableReference(spec.table)}` : spec.query!.trim().replace(/;\s*$/, '');
  const client = new pg.Client({ connectionString: spec.location, application_name: 'data-mesh domain scaffold', connectionTimeoutMillis: 10_000 });
  const what = `The PostgreSQL source (${withoutPassword(spec.location)})`;
  try {
    await client.connect();
  } catch (error) {
    throw new ScaffoldError('SCAFFOLD_SOURCE_UNREADABLE', `${what} refused the connection: ${(error as Error).message}`, { cause: error });
  }
  try {
    await client.query('BEGIN TRANSACTION READ ONLY');
    let described;
    try {
      described = await client.query({ text: `SELECT * FROM (${select}) AS source LIMIT 0`, rowMode: 'array' });
    } catch (error) {
      throw new ScaffoldError('SCAFFOLD_SOURCE_UNREADABLE', `${what} refused the ${spec.table ? 'table' : 'query'}: ${(error as Error).message}`, { cause: error });
    }
    const names = described.fields.map((field) => field.name);
    tooMany(what, names.length, limits);
    let bytes = 0;
    const copy = client.query(copyTo(`COPY (${select}) TO STDOUT WITH (FORMAT csv, HEADER)`));
    copy.on('data', (chunk: Buffer) => {
      bytes += chunk.byteLength;
      if (bytes > limits.maxBytes) copy.destroy(new ScaffoldError('SCAFFOLD_SOURCE_TOO_LARGE', `${what} is larger than the limit of ${limits.maxBytes} bytes (DOMAIN_SOURCE_MAX_BYTES).`));
    });
    try {
      await pipeline(copy, createWriteStream(file));
    } catch (error) {
      if (error instanceof ScaffoldError) throw error;
      throw new ScaffoldError('SCAFFOLD_SOURCE_UNREADABLE', `${what} could not be extracted: ${(error as Error).message}`, { cause: error });
    }
    await client.query('COMMIT');
    return { names, types: described.fields.map((field) => duckTypeOfPostgres(field.dataTypeID)) };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Checks the source and makes it readable: its size and encoding, its column names as given and
 * how many; a PostgreSQL source is extracted to `extractTo` first.
 */
export async function openSource(connection: DuckDBConnection, spec: SourceSpec, limits: SourceLimits, extractTo: string): Promise<ReadableSource> {
  const format = formatOf(spec);
  if (format === 'postgres') {
    const { names, types } = await extractPostgres(spec, extractTo, limits);
    // The extract's header is the source's names; DuckDB reads it with the source's own types.
    const columns = `{${names.map((name, i) => `${literal(`c${i}`)}: ${literal(types[i]!)}`).join(', ')}}`;
    const reader = `read_csv(${literal(extractTo)}, header = true, auto_detect = false, delim = ',', quote = '"', escape = '"', columns = ${columns})`;
    const description = { format, connection: withoutPassword(spec.location), ...(spec.table ? { table: spec.table } : { query: spec.query! }) };
    return { format, file: extractTo, description, reader, names, landsAsIs: false };
  }
  const file = spec.location;
  await sizeOf(file, limits);
  if (format === 'csv' || format === 'jsonl') await assertUtf8(file);
  const description = { format, file };
  if (format === 'csv') {
    // The header as written (DuckDB would rename a repeated name), then DuckDB's sniff of the file.
    const header = await reading(file, () => rows(connection, `SELECT * FROM read_csv(${literal(file)}, header = false, all_varchar = true) LIMIT 1`));
    const names = Object.values(header[0] ?? {}).map((value) => (value === null ? '' : String(value)));
    if (names.length === 0) throw new ScaffoldError('SCAFFOLD_SOURCE_EMPTY', `${file} has no header line.`);
    tooMany(file, names.length, limits);
    const [sniff] = await reading(file, () => rows(connection, `SELECT Delimiter, DateFormat, TimestampFormat FROM sniff_csv(${literal(file)})`));
    const iso = (format: unknown, isoFormats: readonly string[]) => format === null || format === undefined || isoFormats.includes(String(format));
    const landsAsIs = sniff?.Delimiter === ',' && iso(sniff.DateFormat, ['%Y-%m-%d']) && iso(sniff.TimestampFormat, ['%Y-%m-%d %H:%M:%S', '%Y-%m-%dT%H:%M:%S', '%Y-%m-%d %H:%M:%S.%f', '%Y-%m-%dT%H:%M:%S.%fZ', '%Y-%m-%dT%H:%M:%SZ']);
    // Position-named columns: DuckDB's names for repeated headers would not match ours.
    const reader = `read_csv(${literal(file)}, header = true, names = [${names.map((_, i) => literal(`c${i}`)).join(', ')}])`;
    return { format, file, description, reader, names, landsAsIs };
  }
  const reader = format === 'parquet' ? `read_parquet(${literal(file)})` : `read_json(${literal(file)}, format = 'newline_delimited')`;
  const described = await reading(file, () => rows(connection, `DESCRIBE SELECT * FROM ${reader}`));
  const names = described.map((row) => String(row.column_name));
  if (names.length === 0) throw new ScaffoldError('SCAFFOLD_SOURCE_EMPTY', `${file} has no columns.`);
  tooMany(file, names.length, limits);
  // By position, as for CSV.
  return { format, file, description, reader: `(SELECT ${names.map((name, i) => `${identifier(name)} AS ${identifier(`c${i}`)}`).join(', ')} FROM ${reader})`, names, landsAsIs: false };
}

/**
 * Reads the first `limit` rows into the table `sample` (columns `c0`, `c1`, …): how many, and
 * whether they are the whole source.
 */
export async function readSample(connection: DuckDBConnection, source: ReadableSource, limit: number): Promise<{ rows: number; whole: boolean }> {
  // One row more than the sample says whether the source has more; it is not profiled.
  await reading(source.file, () => connection.run(`CREATE OR REPLACE TABLE sample AS SELECT * FROM ${source.reader} LIMIT ${limit + 1}`));
  const [counted] = await rows(connection, 'SELECT count(*) AS n FROM sample');
  const read = Number(counted?.n ?? 0);
  if (read <= limit) return { rows: read, whole: true };
  await connection.run('DELETE FROM sample WHERE rowid = (SELECT max(rowid) FROM sample)');
  return { rows: limit, whole: false };
}

/**
 * Lands the whole source as the CSV file the domain's loads read, its header the table's column
 * names: copied as it is when it already is such a file, else written by DuckDB (each column's
 * `expression` over `c<position>` when it is not landed as it comes).
 */
export async function landSource(connection: DuckDBConnection, source: ReadableSource, file: string, columns: readonly { readonly position: number; readonly name: string; readonly renamed: boolean; readonly expression: string | null }[]): Promise<void> {
  if (source.landsAsIs && columns.every((column) => !column.renamed && column.expression === null)) {
    await copyFile(source.file, file);
    return;
  }
  const select = columns.map((column) => `${column.expression ?? `c${column.position}`} AS ${identifier(column.name)}`).join(', ');
  await reading(source.file, () => connection.run(`COPY (SELECT ${select} FROM ${source.reader}) TO ${literal(file)} (FORMAT csv, HEADER, DELIMITER ',')`));
}
