/**
 * A run killed with `kill -9` half-way through merging an increment (issue 26): on each warehouse
 * dialect, a process merging a delivery into the serving version is killed once the delivery is
 * merged and before the new version is swapped in (DuckDB: the copy written, not yet renamed;
 * PostgreSQL: the transaction open). The serving version is byte for byte what it was (DuckDB: the
 * file's hash; PostgreSQL: every row of every table), and the next run merges the same delivery
 * whole, with the answers of a full rebuild.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { sql, type Kysely } from 'kysely';
import { describe, expect, it } from 'vitest';
import { finance } from '../subgraphs/finance/index.js';
import { ensureWarehouse } from '../subgraphs/kit/warehouse/build.js';
import { DIALECTS } from '../subgraphs/kit/warehouse/dialects.js';
import { openWarehouse } from '../subgraphs/kit/warehouse/open.js';
import { generateSourceData } from '../subgraphs/synthetic-sources/generate.js';
import { deliverIncrement } from '../subgraphs/synthetic-sources/live.js';
import { warehousesOnEachDialect } from './harness/postgres.js';

const root = resolve(import.meta.dirname, '..');
const warehouses = warehousesOnEachDialect('crash_test');
const dir = () => warehouses.dir();

/** Every row of every finance table, in key order. */
async function rowsOf(url: string): Promise<Record<string, unknown[]>> {
  const warehouse = openWarehouse(url);
  try {
    const tables: Record<string, unknown[]> = {};
    for (const table of finance.tables) tables[table.name] = (await sql`select * from ${sql.table(table.name)} order by ${sql.join(table.primaryKey.map((column) => sql.ref(column)))}`.execute(warehouse.db as Kysely<unknown>)).rows;
    return tables;
  } finally {
    await warehouse.close();
  }
}

/** Starts a load in its own process and kills it (SIGKILL) when it reports `step`; resolves with the steps it reported. */
function killAt(step: string, args: readonly string[]): Promise<string[]> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'test/harness/merge-once.ts'), ...args], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  const seen: string[] = [];
  return new Promise((done, fail) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      seen.push(line);
      if (line === `step ${step}`) child.kill('SIGKILL');
    });
    child.once('exit', (code, signal) => (signal === 'SIGKILL' ? done(seen) : fail(new Error(`the load ended (${code}) before it was killed: ${seen.join(' | ')}`))));
  });
}

describe.each(DIALECTS.map((adapter) => adapter.dialect))('on %s', (dialect) => {
  it('leaves the serving version as it was when killed mid-merge, and merges the delivery whole on the next run', async () => {
    const raw = join(dir(), `raw-${dialect}`);
    const { fingerprint, extractedAt } = await generateSourceData({ rawDir: raw, scale: 0.1 });
    const url = warehouses.url(dialect, 'finance');
    const load = (at: string, force = false) => ensureWarehouse({ domain: finance, url: at, rawDir: join(raw, 'finance'), sourceFingerprint: fingerprint, sourceExtractedAt: extractedAt, force });
    expect((await load(url)).built).toBe(true);
    const before = await rowsOf(url);
    const fileHash = async () => (dialect === 'duckdb' ? createHash('sha256').update(await readFile(join(dir(), 'finance.duckdb'))).digest('hex') : null);
    const hash = await fileHash();
    await deliverIncrement({ rawDir: raw, now: new Date('2026-12-07T09:00:00Z'), orders: 300 });

    // Killed once the delivery is merged and checked, before the swap.
    const steps = await killAt('checked', [url, join(raw, 'finance'), fingerprint, extractedAt]);
    expect(steps).toEqual(['step loading', 'step loaded', 'step checked']);
    expect(await fileHash()).toBe(hash);
    expect(await rowsOf(url)).toEqual(before);
    if (dialect === 'duckdb') expect(existsSync(join(dir(), 'finance.duckdb.merging'))).toBe(true); // the abandoned copy, replaced by the next run

    // The next run: the same delivery, whole.
    const retried = await load(url);
    expect(retried.incremental?.changes.orders).toMatchObject({ inserted: 300 });
    const rebuilt = warehouses.url(dialect, 'rebuilt');
    await load(rebuilt, true);
    expect(await rowsOf(url)).toEqual(await rowsOf(rebuilt));
  });
});
