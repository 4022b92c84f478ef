/**
 * The mesh manifest: which domains make the mesh, read by the launcher (what to start, where), the
 * gateway (which subgraphs it composes by default) and the subgraphs' command line (which domains it
 * can build and serve). A JSON file; `MESH_MANIFEST` names it, the default is `subgraphs/mesh.json`
 * (the three built-in domains):
 *
 *   { "domains": [
 *       { "name": "customers", "module": "./customers/index.js", "url": "http://127.0.0.1:4001/graphql" },
 *       { "name": "shipping", "module": "/srv/shipping/index.ts", "url": "http://127.0.0.1:4010/graphql", "data": "/srv/shipping/raw" },
 *       { "name": "billing", "url": "https://billing.example.com/graphql" } ] }
 *
 * - `module`: the module that declares the domain (`defineDomain`), relative to the manifest or
 *   absolute, in this repository or outside it. A domain without one runs elsewhere (its own
 *   repository, process or machine) and joins by publishing to the registry: nothing here starts it.
 * - `url`: where the domain serves its subgraph (the launcher starts it on that port).
 * - `data`: the folder of its raw files, relative to the manifest or absolute (default
 *   `<DATA_DIR>/raw/<name>`, where the synthetic generator writes the built-in domains' files).
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export class MeshManifestError extends Error {
  override name = 'MeshManifestError';
}

export interface ManifestDomain {
  readonly name: string;
  readonly url: string;
  /** The absolute path of the module declaring it; null when it runs elsewhere. */
  readonly module: string | null;
  /** The absolute path of its raw files' folder, when the manifest gives one. */
  readonly data: string | null;
}

export interface MeshManifest {
  /** The manifest's own path. */
  readonly path: string;
  readonly domains: readonly ManifestDomain[];
}

/** The built-in mesh's manifest. */
export const DEFAULT_MESH_MANIFEST = fileURLToPath(new URL('../subgraphs/mesh.json', import.meta.url));

/** A subgraph's name in the supergraph: lower-case letters, digits and `_`, starting with a letter (it names `<NAME>_WAREHOUSE_URL` too). */
export const DOMAIN_NAME = /^[a-z][a-z0-9_]{0,62}$/;
const KEYS = new Set(['name', 'url', 'module', 'data']);

function text(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.trim() === '') throw new MeshManifestError(`${what} must be a non-empty string.`);
  return value;
}

/** Reads and checks a manifest (env `MESH_MANIFEST`, else the built-in one); paths come back absolute. */
export function readMeshManifest(path: string = process.env.MESH_MANIFEST || DEFAULT_MESH_MANIFEST): MeshManifest {
  const where = resolve(path);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(where, 'utf8'));
  } catch (error) {
    throw new MeshManifestError(`The mesh manifest ${where} could not be read: ${(error as Error).message}`);
  }
  const entries = (raw as { domains?: unknown } | null)?.domains;
  if (!Array.isArray(entries) || entries.length === 0) throw new MeshManifestError(`The mesh manifest ${where} must list its domains: { "domains": [ { "name", "url", "module"? , "data"? }, … ] }.`);
  const seen = new Set<string>();
  const ports = new Map<string, string>();
  const domains = entries.map((entry: unknown, index): ManifestDomain => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new MeshManifestError(`Domain ${index + 1} of ${where} must be an object.`);
    const fields = entry as Record<string, unknown>;
    const unknown = Object.keys(fields).filter((key) => !KEYS.has(key));
    if (unknown.length > 0) throw new MeshManifestError(`Domain ${index + 1} of ${where} has unknown keys: ${unknown.join(', ')} (known: ${[...KEYS].join(', ')}).`);
    const name = text(fields.name, `Domain ${index + 1}'s "name"`);
    if (!DOMAIN_NAME.test(name)) throw new MeshManifestError(`Domain name "${name.slice(0, 70)}" must be lower-case letters, digits and _, starting with a letter (at most 63).`);
    if (seen.has(name)) throw new MeshManifestError(`Domain "${name}" is listed twice in ${where}.`);
    seen.add(name);
    const url = text(fields.url, `Domain "${name}"'s "url"`);
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new MeshManifestError(`Domain "${name}" has an invalid url "${url.slice(0, 100)}".`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new MeshManifestError(`Domain "${name}"'s url must be http or https, got "${url.slice(0, 100)}".`);
    const local = (key: 'module' | 'data') => (fields[key] === undefined ? null : resolve(dirname(where), text(fields[key], `Domain "${name}"'s "${key}"`)));
    const module = local('module');
    if (module !== null) {
      // Two domains started here cannot share a port.
      const address = `${parsed.hostname}:${parsed.port || (parsed.protocol === 'https:' ? '443' : '80')}`;
      const other = ports.get(address);
      if (other) throw new MeshManifestError(`Domains "${other}" and "${name}" would both listen at ${address}.`);
      ports.set(address, name);
    }
    return { name, url, module, data: local('data') };
  });
  return { path: where, domains };
}
