/**
 * `npm run bench` (with the others): an incremental load of the finance domain against its full
 * load, at `INCREMENTAL_BENCH_SCALE` (default 5: 500,000 orders, 1.2 million lines), on DuckDB and
 * on PostgreSQL. The increment is 1% of the orders (5,000 at scale 5: new orders with their lines
 * and invoices, earlier live orders moving on, now and then one withdrawn), as the live synthetic
 * source delivers it; each iteration merges one more into the serving version (staged, merged by
 * key, the changed rows' amounts derived, checked and profiled, swapped in). The full load is what
 * a rebuild does (every raw file, every increment delivered, all checks and profiles, keys and
 * indexes, the swap). The aim: the increment at most 5% of the full load.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, bench, describe } from 'vitest';
import { finance } from '../subgraphs/finance/index.js';
import { ensureWarehouse, type WarehouseBuild } from '../subgraphs/kit/warehouse/build.js';
import { INCREMENTS_FOLDER } from '../subgraphs/kit/warehouse/increments.js';
import { generateSourceData } from '../subgraphs/synthetic-sources/generate.js';
import { deliverIncrement } from '../subgraphs/synthetic-sources/live.js';
import { onPostgres, TEST_POSTGRES } from './harness/postgres.js';

const SCALE = Number(process.env.INCREMENTAL_BENCH_SCALE ?? 5);
const dir = await mkdtemp(join(tmpdir(), 'incremental-bench-'));
const database = `incremental_bench_${process.pid}_${randomUUID().slice(0, 8)}`;
await onPostgres(`CREATE DATABASE ${database}`);
afterAll(async () => {
  await onPostgres(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  await rm(dir, { recursive: true, force: true });
});

const raw = join(dir, 'raw');
const manifest = await generateSourceData({ rawDir: raw, scale: SCALE });
const ONE_PERCENT = Math.round(manifest.rows['finance/orders']! / 100);
const ITERATIONS = 3;

/** Increments delivered beforehand and held aside; each iteration puts the next in place. */
const held = join(dir, 'held');
await mkdir(held);
for (let i = 0; i < 2 * ITERATIONS + 2; i += 1) {
  const { name } = await deliverIncrement({ rawDir: raw, now: new Date(Date.UTC(2026, 11, 7, 0, i)), orders: ONE_PERCENT });
  await rename(join(raw, 'finance', INCREMENTS_FOLDER, name), join(held, name));
}
const waiting = (await readdir(held)).sort();
const deliverNext = () => rename(join(held, waiting[0]!), join(raw, 'finance', INCREMENTS_FOLDER, waiting.shift()!));

const load = async (url: string, force = false): Promise<WarehouseBuild> => {
  const build = await ensureWarehouse({ domain: finance, url, rawDir: join(raw, 'finance'), sourceFingerprint: manifest.fingerprint, sourceExtractedAt: manifest.extractedAt, force });
  if (!build.built) throw new Error(`the load did not swap in: ${build.loadError ?? build.quality?.outcome}`);
  return build;
};

// Each case takes seconds: a few iterations, no time budget.
const options = { iterations: ITERATIONS, warmupIterations: 0, time: 0, warmupTime: 0 };
const urls = { duckdb: `duckdb:${join(dir, 'finance.duckdb')}`, postgres: `${TEST_POSTGRES}/${database}?schema=finance` };

for (const [dialect, url] of Object.entries(urls)) {
  await load(url, true);
  describe(`finance at scale ${SCALE} on ${dialect}: a 1% increment (${ONE_PERCENT.toLocaleString('en')} orders) against the full load`, () => {
    bench('the full load: every raw file and increment into a new version, checked, keyed, profiled, swapped in (baseline)', async () => {
      await load(url, true);
    }, options);
    bench('the increment merged by key into the serving version, its changed rows derived, checked and profiled, swapped in', async () => {
      await deliverNext();
      const build = await load(url);
      if (build.incremental?.increments.length !== 1) throw new Error(`merged ${build.incremental?.increments.length ?? 'no'} increments`);
    }, options);
  });
}
