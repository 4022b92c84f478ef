/**
 * `npm run bench` (with the others): the time of every data quality check of a load, and of its
 * column profiles (sensitive-data discovery), against the load itself, on the finance domain at
 * `QUALITY_BENCH_SCALE` (default 5: 500,000 orders, 1.2 million order lines). The aim: the checks
 * under a quarter of the load.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, bench, describe } from 'vitest';
import { finance } from '../subgraphs/finance/index.js';
import type { FinanceWarehouse } from '../subgraphs/finance/tables.js';
import type { Kysely } from 'kysely';
import { runDomainChecks } from '../subgraphs/kit/warehouse/build.js';
import { finishTables } from '../subgraphs/kit/warehouse/tables.js';
import { openDuckDbWarehouse } from '../subgraphs/kit/warehouse/duckdb.js';
import { generateSourceData } from '../subgraphs/synthetic-sources/generate.js';
import { profileDomain } from '../subgraphs/kit/profiles.js';
import { subgraphTypeDefs } from '../subgraphs/kit/domain-schema.js';
import { readPolicy } from '../policy/policy-index.js';
import { governanceRules } from '../policy/governance.rules.js';

const dir = await mkdtemp(join(tmpdir(), 'quality-bench-'));
afterAll(() => rm(dir, { recursive: true, force: true }));
const rawDir = join(dir, 'raw');
await generateSourceData({ rawDir, scale: Number(process.env.QUALITY_BENCH_SCALE ?? 5) });

let loads = 0;
async function load(): Promise<string> {
  const file = join(dir, `finance-${loads++}.duckdb`);
  const warehouse = openDuckDbWarehouse<FinanceWarehouse>({ file, readOnly: false });
  try {
    await finance.ingest({ warehouse, rawDir: join(rawDir, 'finance') });
    // What a load does besides its checks: keys, NOT NULL columns and indexes.
    await finishTables(warehouse.db as Kysely<unknown>, finance.tables);
  } finally {
    await warehouse.close();
  }
  return file;
}
const loaded = await load();

// Each case takes seconds: a few iterations, no time budget.
const options = { iterations: 3, warmupIterations: 0, time: 0, warmupTime: 0 };

describe('data quality checks against the load they gate (finance)', () => {
  bench('loading the raw files into a new warehouse version (baseline)', async () => {
    await rm(await load(), { force: true });
  }, options);
  bench('every quality check of the finance products on that version', async () => {
    const warehouse = openDuckDbWarehouse({ file: loaded, readOnly: false });
    try {
      await runDomainChecks(finance, warehouse, 'manual');
    } finally {
      await warehouse.close();
    }
  }, options);
  const policy = readPolicy(subgraphTypeDefs(finance), governanceRules);
  bench('the column profiles of the finance products on that version', async () => {
    const warehouse = openDuckDbWarehouse({ file: loaded, readOnly: false });
    try {
      await profileDomain(finance, warehouse.db, { policy, rules: governanceRules, now: new Date() });
    } finally {
      await warehouse.close();
    }
  }, options);
});
