import { ensureSourceData } from '/work/main/subgraphs/synthetic-sources/source-data.js';
import { ensureWarehouse } from '/work/main/subgraphs/kit/warehouse/build.js';
import { finance } from '/work/main/subgraphs/finance/index.js';
const { manifest } = await ensureSourceData({ rawDir: '/tmp/s5/raw', scale: 5 });
const t0 = performance.now();
const marks: string[] = [];
await ensureWarehouse({ domain: finance as any, url: 'duckdb:/tmp/s5/finance.duckdb', rawDir: '/tmp/s5/raw/finance', sourceFingerprint: manifest.fingerprint, force: true,
  onProgress: (p) => marks.push(`${p.step} ${Math.round(performance.now() - t0)}`) });
console.log(marks, Math.round(performance.now() - t0), manifest.rows);
