/**
 * The domains of this mesh that run here, as the mesh manifest names them (policy/mesh-manifest.ts:
 * env `MESH_MANIFEST`, default `subgraphs/mesh.json`, the three built-in domains). Each is the
 * domain its module exports (`defineDomain`), in this repository or outside it; a domain the
 * manifest lists without a module runs elsewhere and joins by publishing.
 */
import { readFile } from 'node:fs/promises';
import { registerHooks } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { satisfies } from 'semver';
import { POLICY_SPEC_URL } from '../policy/directives.js';
import { MeshManifestError, readMeshManifest, type ManifestDomain } from '../policy/mesh-manifest.js';
import { isDomain, type Domain } from './kit/domain.js';
import { KIT_VERSION } from './kit/index.js';

// Each domain is typed by its own warehouse and repository; the list only needs the common shape.
export type AnyDomain = Domain<any, any>;

/**
 * The kit range a domain's package asks for (`@data-mesh/kit` in the dependencies, peer or dev, of
 * the nearest package.json above its module), or null when it names none (the built-in domains).
 */
async function kitRangeOf(module: string): Promise<{ range: string; packageJson: string } | null> {
  for (let dir = dirname(module); ; dir = dirname(dir)) {
    const packageJson = join(dir, 'package.json');
    const text = await readFile(packageJson, 'utf8').catch(() => null);
    if (text !== null) {
      const pkg = JSON.parse(text) as Partial<Record<'dependencies' | 'peerDependencies' | 'devDependencies', Record<string, string>>>;
      const range = pkg.peerDependencies?.[KIT_PACKAGE] ?? pkg.dependencies?.[KIT_PACKAGE] ?? pkg.devDependencies?.[KIT_PACKAGE];
      return range === undefined ? null : { range, packageJson };
    }
    if (dirname(dir) === dir) return null;
  }
}

/** The domain a manifest entry's module exports: exactly one, named as the manifest names it, for a kit this mesh provides. */
async function domainOf(entry: ManifestDomain & { module: string }): Promise<AnyDomain> {
  const wanted = await kitRangeOf(entry.module).catch((error: Error) => {
    throw new MeshManifestError(`Domain "${entry.name}": its package.json could not be read: ${error.message}`);
  });
  if (wanted && !satisfies(KIT_VERSION, wanted.range)) {
    throw new MeshManifestError(
      `Domain "${entry.name}" needs ${KIT_PACKAGE} ${wanted.range} (${wanted.packageJson}); this mesh provides ${KIT_VERSION}, which enforces ${POLICY_SPEC_URL}.`,
    );
  }
  let exports: Record<string, unknown>;
  try {
    exports = (await import(pathToFileURL(entry.module).href)) as Record<string, unknown>;
  } catch (error) {
    throw new MeshManifestError(`Domain "${entry.name}": its module ${entry.module} could not be loaded: ${(error as Error).message}`);
  }
  const found = [...new Set(Object.values(exports).filter(isDomain))];
  if (found.length !== 1) throw new MeshManifestError(`Domain "${entry.name}": its module ${entry.module} must export one domain made by defineDomain, found ${found.length}.`);
  const domain = found[0] as AnyDomain;
  if (domain.name !== entry.name) throw new MeshManifestError(`Domain "${entry.name}": its module declares the domain "${domain.name}"; the manifest and the declaration must give the same name.`);
  return domain;
}

/** The name a domain imports the kit by, as an outside package would (`import { defineDomain } from '@data-mesh/kit'`). */
export const KIT_PACKAGE = '@data-mesh/kit';

/**
 * The mesh provides the kit: a domain's `@data-mesh/kit` is this mesh's own (its public API,
 * subgraphs/kit/index.ts), whatever copy the domain installed for its types and tests, so that one
 * kit (one graphql, one Kysely, one policy layer) serves every domain of the process.
 */
const kitUrl = import.meta.resolve('./kit/index.js');
registerHooks({
  resolve: (specifier, context, nextResolve) => (specifier === KIT_PACKAGE ? { url: kitUrl, shortCircuit: true } : nextResolve(specifier, context)),
});

export const manifest = readMeshManifest();

export const domains: readonly AnyDomain[] = await Promise.all(
  manifest.domains.filter((entry): entry is ManifestDomain & { module: string } => entry.module !== null).map(domainOf),
);
