/**
 * A domain made from a CSV file and its first load, as `npm run domain -- new` and the domain's
 * first start do them, for the benchmark (test/scaffold.bench.ts). As a program, each step runs in
 * a process of its own, as it does for a team, so that its peak memory is its own:
 *
 *   tsx test/harness/scaffold-load.ts scaffold <csv> <work folder>   prints { ms, peakRssMb }
 *   tsx test/harness/scaffold-load.ts load <work folder>             prints { rows, ms, peakRssMb }
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isDomain, type Domain } from '../../subgraphs/kit/domain.js';
import { ensureWarehouse } from '../../subgraphs/kit/warehouse/build.js';
import { scaffoldDomain } from '../../subgraphs/scaffold/scaffold.js';
import '../../subgraphs/domains.js'; // the mesh's kit, for the domain's `@data-mesh/kit`

/** `npm run domain -- new bench --source <csv>` into `<work>/bench`. */
export async function scaffold(csv: string, work: string): Promise<void> {
  await scaffoldDomain({ name: 'bench', source: { location: csv }, into: join(work, 'bench'), owner: 'bench@example.com', purpose: 'Benchmark.' });
}

/** The first load of the domain made in `<work>/bench`: rows loaded, and whether its gate passed. */
export async function firstLoad(work: string): Promise<{ rows: number; outcome: string }> {
  const module = (await import(pathToFileURL(join(work, 'bench', 'index.ts')).href)) as Record<string, unknown>;
  const domain = Object.values(module).find(isDomain) as Domain<any, any>;
  const build = await ensureWarehouse({ domain, url: `duckdb:${join(work, 'bench.duckdb')}`, rawDir: join(work, 'bench', 'data'), sourceFingerprint: 'bench' });
  return { rows: Object.values(build.rows ?? {})[0] ?? 0, outcome: build.quality?.outcome ?? 'none' };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [step, ...args] = process.argv.slice(2);
  const started = performance.now();
  const result = step === 'scaffold' ? (await scaffold(args[0]!, args[1]!), {}) : await firstLoad(args[0]!);
  console.log(JSON.stringify({ ...result, ms: Math.round(performance.now() - started), peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024) }));
}
