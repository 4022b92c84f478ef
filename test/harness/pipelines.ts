/**
 * A test mesh's domain running its pipelines as `npm run subgraph` does (servePipelines, the runner
 * in the process): each run loads the domain's raw files of the mesh into its DuckDB warehouse,
 * through the run's gate, and the subgraph serves what it swaps in.
 */
import { join } from 'node:path';
import { pino } from 'pino';
import type { Domain } from '../../subgraphs/kit/domain.js';
import type { PipelineRunner } from '../../subgraphs/kit/pipelines/runner.js';
import { servePipelines } from '../../subgraphs/kit/pipelines/serve-pipelines.js';
import { ensureWarehouse } from '../../subgraphs/kit/warehouse/build.js';
import type { TestMesh } from './mesh.js';

export function serveTestPipelines(mesh: TestMesh, domain: Domain<any, any>): Promise<PipelineRunner> {
  const url = `duckdb:${join(mesh.dataDir, 'warehouses', `${domain.name}.duckdb`)}`;
  return servePipelines({
    domain,
    server: mesh.subgraphs[domain.name]!,
    url,
    dataDir: mesh.dataDir,
    log: pino({ level: 'silent' }),
    env: {},
    load: async ({ gate, run }) => {
      const build = await ensureWarehouse({ domain, url, rawDir: join(mesh.dataDir, 'raw', domain.name), sourceFingerprint: mesh.manifest.fingerprint, sourceExtractedAt: mesh.manifest.extractedAt, gate, lineageParent: run });
      if (build.loadError !== undefined) return { outcome: 'failed', build };
      if (build.rejectedKeptAt !== undefined) return { outcome: 'rejected', build };
      return build.built ? { outcome: 'swapped', build } : undefined;
    },
  });
}
