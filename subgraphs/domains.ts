/**
 * The domains of this mesh that run here, as the mesh manifest names them (policy/mesh-manifest.ts:
 * env `MESH_MANIFEST`, default `subgraphs/mesh.json`, the three built-in domains). Each is the
 * domain its module exports (`defineDomain`), in this repository or outside it; a domain the
 * manifest lists without a module runs elsewhere and joins by publishing.
 */
import { registerHooks } from 'node:module';
import { pathToFileURL } from 'node:url';
import { MeshManifestError, readMeshManifest, type ManifestDomain } from '../policy/mesh-manifest.js';
import { isDomain, type Domain } from './kit/domain.js';

// Each domain is typed by its own warehouse and repository; the list only needs the common shape.
export type AnyDomain = Domain<any, any>;

/** The domain a manifest entry's module exports: exactly one, named as the manifest names it. */
async function domainOf(entry: ManifestDomain & { module: string }): Promise<AnyDomain> {
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
