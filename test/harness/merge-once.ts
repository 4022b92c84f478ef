/**
 * One load of the finance domain in a process of its own, for tests that kill it half-way
 * (test/incremental-crash.e2e.ts): prints each step of the load as it happens, one per line.
 *
 *   node --import tsx test/harness/merge-once.ts <warehouse url> <raw dir> <fingerprint> <extractedAt>
 */
import { finance } from '../../subgraphs/finance/index.js';
import { ensureWarehouse } from '../../subgraphs/kit/warehouse/build.js';

const [url, rawDir, sourceFingerprint, sourceExtractedAt] = process.argv.slice(2) as [string, string, string, string];
const build = await ensureWarehouse({
  domain: finance,
  url,
  rawDir,
  sourceFingerprint,
  sourceExtractedAt,
  onProgress: (progress) => process.stdout.write(`step ${progress.step}\n`),
});
process.stdout.write(`done ${JSON.stringify({ built: build.built, incremental: build.incremental ?? null })}\n`);
