/**
 * Sources a pipeline reads incrementally by itself: a PostgreSQL table past a watermark. A product
 * declares it with its pipeline (`pipeline: { source: { urlEnv, table, watermark, deletedWhen } }`):
 * each run first extracts, in one read-only snapshot, the rows whose watermark column (`updated_at`,
 * a growing id) is past the last one extracted and at most the snapshot's newest, into an increment
 * of the domain's raw folder (`_deleted` set where the source's `deletedWhen` column is: a soft
 * delete, a tombstone); then the load merges it like any other (increments.ts). The first run
 * extracts the rows not deleted as the table's full file. What was extracted is kept in
 * `<rawDir>/increments/.watermarks.json`, written after the increment is in place: a run that dies
 * between the two extracts the same rows again, and merging them by key again changes nothing.
 *
 * The watermark must grow with every insert and update, and a row must become visible no later than
 * its watermark's value is passed (a transaction that commits an older `updated_at` after a newer
 * one was extracted is missed: a growing id or a commit timestamp avoids it).
 */
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import type { Domain } from '../domain.js';
import type { PostgresSource } from '../pipelines/runner.js';
import { DELETED_COLUMN, INCREMENTS_FOLDER, incrementName, IncrementError } from './increments.js';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_$ ]{0,62}$/;
const STATE_FILE = '.watermarks.json';

interface ExtractState {
  /** Per warehouse table: the last watermark extracted, as text, and the increments made. */
  [table: string]: { readonly watermark: string | null; readonly sequence: number };
}

/** What one run extracted per table: the full file, an increment, or nothing new. */
export type Extracted = { readonly table: string; readonly kind: 'full' | 'increment' | 'nothing'; readonly rows: number; readonly watermark: string | null };

function quoted(client: pg.Client, name: string, what: string): string {
  const parts = name.split('.');
  if (parts.length > 2 || parts.some((part) => !IDENTIFIER.test(part))) throw new IncrementError(`The source's ${what} "${name.slice(0, 80)}" is not a plain identifier.`);
  return parts.map((part) => client.escapeIdentifier(part)).join('.');
}

async function copyOut(client: pg.Client, query: string, file: string): Promise<number> {
  const stream = client.query(copyTo(`COPY (${query}) TO STDOUT WITH (FORMAT csv, HEADER)`));
  await pipeline(stream, createWriteStream(file));
  return Number(stream.rowCount ?? 0);
}

/** Extracts what each product's declared PostgreSQL source holds past its watermark into the domain's raw folder. */
export async function extractSources(domain: Domain<any, any>, rawDir: string, env: NodeJS.ProcessEnv = process.env, now: () => Date = () => new Date()): Promise<Extracted[]> {
  const declared = domain.dataProducts.flatMap(({ spec }) => (spec.pipeline?.source ? [{ product: spec.name, table: spec.table, source: spec.pipeline.source as PostgresSource }] : []));
  if (declared.length === 0) return [];
  const folder = join(rawDir, INCREMENTS_FOLDER);
  await mkdir(folder, { recursive: true });
  const statePath = join(folder, STATE_FILE);
  const state = JSON.parse((await readFile(statePath, 'utf8').catch(() => '{}')) || '{}') as ExtractState;
  const extracted: Extracted[] = [];
  for (const { product, table: tableName, source } of declared) {
    const table = domain.tables.find((candidate) => candidate.name === tableName)!;
    const url = env[source.urlEnv];
    if (!url) throw new IncrementError(`${domain.name}.${product} reads its source from ${source.urlEnv}, which is not set.`);
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000, statement_timeout: 10 * 60_000 });
    await client.connect().catch((error: Error) => {
      throw new IncrementError(`${domain.name}.${product}: its source (${source.urlEnv}) could not be reached: ${error.message}`);
    });
    try {
      const from = quoted(client, source.table, 'table');
      const watermark = quoted(client, source.watermark, 'watermark column');
      const deleted = source.deletedWhen ? quoted(client, source.deletedWhen, 'deleted column') : null;
      const columns = table.columns
        .filter((column) => !column.derived)
        .map((column) => `${quoted(client, source.columns?.[column.name] ?? column.name, 'column')} AS ${client.escapeIdentifier(column.name)}`)
        .join(', ');
      // One snapshot: the newest watermark and the rows up to it.
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await client.query("SET LOCAL TIME ZONE 'UTC'");
      const high = ((await client.query<{ high: string | null }>(`SELECT max(${watermark})::text AS high FROM ${from}`)).rows[0]?.high ?? null);
      const last = state[tableName] ?? { watermark: null, sequence: 0 };
      const file = join(rawDir, table.file ?? `${table.name}.csv`);
      const full = last.watermark === null;
      let rows = 0;
      if (full) {
        // The full file supersedes every increment of the table made before it.
        for (const entry of await readdir(folder, { withFileTypes: true })) {
          if (entry.isDirectory() && existsSync(join(folder, entry.name, table.file ?? `${table.name}.csv`))) await rm(join(folder, entry.name), { recursive: true, force: true });
        }
        const upTo = high === null ? '' : ` AND ${watermark} <= ${client.escapeLiteral(high)}`;
        rows = await copyOut(client, `SELECT ${columns} FROM ${from} WHERE ${deleted ? `${deleted} IS NULL` : 'true'}${upTo}`, `${file}.extracting`);
        await rename(`${file}.extracting`, file);
      } else if (high !== null && high !== last.watermark) {
        const name = incrementName(now(), last.sequence + 1);
        const partial = join(folder, `.${name}`);
        await rm(partial, { recursive: true, force: true });
        await mkdir(partial);
        const tombstone = deleted ? `(${deleted} IS NOT NULL)` : 'false';
        rows = await copyOut(
          client,
          `SELECT ${columns}, ${tombstone} AS ${client.escapeIdentifier(DELETED_COLUMN)} FROM ${from} WHERE ${watermark} > ${client.escapeLiteral(last.watermark!)} AND ${watermark} <= ${client.escapeLiteral(high)}`,
          join(partial, table.file ?? `${table.name}.csv`),
        );
        await rename(partial, join(folder, name));
      }
      await client.query('COMMIT');
      const moved = full || (high !== null && high !== last.watermark);
      if (moved) state[tableName] = { watermark: high, sequence: last.sequence + (full ? 0 : 1) };
      extracted.push({ table: tableName, kind: full ? 'full' : moved ? 'increment' : 'nothing', rows, watermark: high });
      await writeFile(`${statePath}.writing`, `${JSON.stringify(state, null, 2)}\n`);
      await rename(`${statePath}.writing`, statePath);
    } catch (error) {
      if (error instanceof IncrementError) throw error;
      throw new IncrementError(`${domain.name}.${product}: extracting from its source failed: ${(error as Error).message}`);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  return extracted;
}
