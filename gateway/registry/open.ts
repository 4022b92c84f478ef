/**
 * Opens the registry a location names (env `REGISTRY_URL`): a directory path (or `file:` URL), or
 * `postgres://…?schema=registry`. The default is `<DATA_DIR>/registry`.
 */
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openFileRegistry } from './file-registry.js';
import { openPostgresRegistry } from './postgres-registry.js';
import type { Registry } from './registry.js';

/** Where the registry is, from the environment. */
export function registryUrlFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  return env.REGISTRY_URL || join(resolve(env.DATA_DIR || 'data'), 'registry');
}

export function openRegistry(location: string): Promise<Registry> {
  if (/^postgres(ql)?:\/\//.test(location)) {
    const url = new URL(location);
    const schema = url.searchParams.get('schema') ?? 'registry';
    url.searchParams.delete('schema');
    return openPostgresRegistry({ connectionString: url.toString(), schema });
  }
  return openFileRegistry(location.startsWith('file:') ? fileURLToPath(location) : location);
}
