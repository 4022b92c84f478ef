/**
 * The raw files for a seed and scale: reused when the manifest on disk says they are these, else
 * generated. The generator (and its locales) is loaded only when it must run.
 */
import { DEFAULT_SEED, fingerprintOf, readRawManifest, type GenerateOptions, type RawManifest } from './manifest.js';

export async function ensureSourceData(options: GenerateOptions): Promise<{ manifest: RawManifest; generated: boolean }> {
  const existing = await readRawManifest(options.rawDir);
  if (existing?.fingerprint === fingerprintOf(options.seed ?? DEFAULT_SEED, options.scale ?? 1)) {
    return { manifest: existing, generated: false };
  }
  const { generateSourceData } = await import('./generate.js');
  return { manifest: await generateSourceData(options), generated: true };
}
