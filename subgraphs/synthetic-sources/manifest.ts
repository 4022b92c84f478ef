/**
 * Which synthetic data set is on disk: its manifest and fingerprint. Kept apart from the generator
 * so that a start with data already present never loads the generator and its locales
 * (source-data.ts decides whether to generate).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Bump when the output for a given seed and scale changes: warehouses built from older files rebuild. */
export const GENERATOR_VERSION = 6;
export const DEFAULT_SEED = 20_240_101;

export interface GenerateOptions {
  /** The folder to write: `<rawDir>/<domain>/<table>.csv` and `<rawDir>/manifest.json`. */
  readonly rawDir: string;
  /** 1 (default) is ~10k customers, 1k products, 100k orders; any positive number. */
  readonly scale?: number;
  /** Seed of every random choice (default {@link DEFAULT_SEED}). */
  readonly seed?: number;
}

export interface RawManifest {
  readonly generatorVersion: number;
  readonly seed: number;
  readonly scale: number;
  /** Identifies the content: warehouses record it to know whether they are current. */
  readonly fingerprint: string;
  /** Rows per file, keyed `<domain>/<table>`. */
  readonly rows: Record<string, number>;
  /** When the data set was extracted from its (synthetic) sources: its "today", ISO 8601. */
  readonly extractedAt: string;
}

export function fingerprintOf(seed: number, scale: number): string {
  return createHash('sha256').update(JSON.stringify({ v: GENERATOR_VERSION, seed, scale })).digest('hex').slice(0, 16);
}

export async function readRawManifest(rawDir: string): Promise<RawManifest | null> {
  try {
    return JSON.parse(await readFile(join(rawDir, 'manifest.json'), 'utf8')) as RawManifest;
  } catch {
    return null;
  }
}
