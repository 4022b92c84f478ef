/**
 * `npm run bench` (with the others): a domain made from a 1,000,000-row CSV file and its first load
 * (`npm run domain -- new`, then the gated load a first start makes: the raw file into a new
 * warehouse version, its quality checks, keys and NOT NULL columns, its column profiles), against
 * DuckDB's own `read_csv` of the same file into a table of a new database file. The aim: under
 * 1.5×. Then the peak memory of each step, in a process of its own as for a team, for files of
 * 100,000, 1,000,000, 3,000,000 and 10,000,000 rows (`SCAFFOLD_BENCH_ROWS` sets the timed file's rows).
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, bench, describe } from 'vitest';
import { firstLoad, scaffold } from './harness/scaffold-load.js';

const root = resolve(import.meta.dirname, '..');
const dir = await mkdtemp(join(tmpdir(), 'scaffold-bench-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

/** A CSV of parcels: an id, an e-mail (personal data), a region and a carrier (few values), an amount, a date. */
async function parcels(rows: number): Promise<string> {
  const file = join(dir, `parcels-${rows}.csv`);
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  await connection.run(
    `COPY (SELECT 'S-' || lpad(cast(i AS VARCHAR), 8, '0') AS id, 'user' || i || '@example.com' AS email, (['EMEA', 'AMERICAS', 'APAC'])[1 + i % 3] AS region,
       (['Parcelo', 'Swiftly', 'Boxr', 'Rapido'])[1 + i % 4] AS carrier, round((i % 10000) / 100.0 + 0.25, 2) AS amount, DATE '2024-01-01' + cast(i % 700 AS INTEGER) AS created_on
     FROM range(${rows}) t(i)) TO '${file}' (HEADER)`,
  );
  connection.closeSync();
  instance.closeSync();
  return file;
}

const ROWS = Number(process.env.SCAFFOLD_BENCH_ROWS ?? 1_000_000);
const csv = await parcels(ROWS);
let runs = 0;
const fresh = async () => {
  const work = join(dir, `run-${runs++}`);
  await mkdir(work);
  return work;
};

// Each case takes seconds: a few iterations, no time budget.
const options = { iterations: 3, warmupIterations: 1, time: 0, warmupTime: 0 };

describe(`a domain from a CSV file of ${ROWS.toLocaleString('en')} rows`, () => {
  bench("DuckDB's read_csv of the file into a table of a new database file (baseline)", async () => {
    const instance = await DuckDBInstance.create(join(await fresh(), 'plain.duckdb'));
    const connection = await instance.connect();
    await connection.run(`CREATE TABLE parcels AS SELECT * FROM read_csv('${csv}')`);
    connection.closeSync();
    instance.closeSync();
  }, options);
  bench('npm run domain -- new, then the first load: quality gate, keys, column profiles, swap', async () => {
    const work = await fresh();
    await scaffold(csv, work);
    const { rows, outcome } = await firstLoad(work);
    if (rows !== ROWS || outcome !== 'passed') throw new Error(`loaded ${rows} rows, ${outcome}`);
  }, options);
});

// Peak memory: each step in a process of its own, as for a team (the scaffold's command, then the
// domain's first start), for each size; printed after the run.
const run = promisify(execFile);
const step = async (...args: string[]) => {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', join(root, 'test/harness/scaffold-load.ts'), ...args], { cwd: root, maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim().split('\n').pop()!) as { ms: number; peakRssMb: number; rows?: number };
};
const peaks: string[] = [];
for (const rows of [100_000, 1_000_000, 3_000_000, 10_000_000]) {
  const file = rows === ROWS ? csv : await parcels(rows);
  const work = await fresh();
  const made = await step('scaffold', file, work);
  const loaded = await step('load', work);
  if (loaded.rows !== rows) throw new Error(`loaded ${loaded.rows} of ${rows} rows`);
  peaks.push(`${rows.toLocaleString('en')} rows: the scaffold ${made.peakRssMb} MB (${made.ms} ms), the first load ${loaded.peakRssMb} MB (${loaded.ms} ms)`);
  if (file !== csv) await rm(file, { force: true });
}
afterAll(() => {
  console.log(`peak resident memory, a process each:\n  ${peaks.join('\n  ')}`);
});
