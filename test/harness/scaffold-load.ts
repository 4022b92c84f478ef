/**
 * One scaffold and first load, as `npm run domain -- new` and the domain's first start do them,
 * for the benchmark (test/scaffold.bench.ts): in a process of its own, so that its peak memory is
 * its own. `tsx test/harness/scaffold-load.ts <csv> <work folder>` prints JSON: the rows loaded,
 * the milliseconds of each step, the process's peak resident memory.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isDomain, type Domain } from '../../subgraphs/kit/domain.js';
import { ensureWarehouse } from '../../subgraphs/kit/warehouse/build.js';
import { scaffoldDomain } from '../../subgraphs/scaffold/scaffold.js';
import '../../subgraphs/domains.js'; // the mesh's kit, for the domain's `@data-mesh/kit`

export async function scaffoldAndLoad(csv: string, work: string): Promise<{ rows: number; scaffoldMs: number; loadMs: number; outcome: string }> {
  const started = performance.now();
  const made = await scaffoldDomain({ name: 'bench', source: { location: csv }, into: join(work, 'bench'), owner: 'bench@example.com', purpose: 'Benchmark.' });
  const scaffolded = performance.now();
  const module = (await import(pathToFileURL(join(made.folder, 'index.ts')).href)) as Record<string, unknown>;
  const domain = Object.values(module).find(isDomain) as Domain<any, any>;
  const build = await ensureWarehouse({ domain, url: `duckdb:${join(work, 'bench.duckdb')}`, rawDir: join(made.folder, 'data'), sourceFingerprint: 'bench' });
  return { rows: build.rows?.[made.product] ?? 0, scaffoldMs: scaffolded - started, loadMs: performance.now() - scaffolded, outcome: build.quality?.outcome ?? 'none' };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [csv, work] = process.argv.slice(2);
  const result = await scaffoldAndLoad(csv!, work!);
  console.log(JSON.stringify({ ...result, peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024) }));
}
