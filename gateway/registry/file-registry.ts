/**
 * The registry in a directory (the default: `<DATA_DIR>/registry`).
 *
 *   state.json                      the current state (revision, serving versions, supergraph)
 *   subgraphs/<name>/<version>.json one file per published version, never rewritten once served
 *   usage.json                      recorded usage, per client and coordinate
 *   clients/<client>.json           a client's registered documents
 *   owners.json                     each owned subgraph's team (set at its first publish through the
 *                                   registry API, or by the governance group)
 *
 * Writers take a lock on the directory (`proper-lockfile`: works across processes, and a lock
 * left by a crashed process goes stale). Every file is written to a temporary name and renamed,
 * so readers (the gateway's watcher) never see half a file. A publish writes its version file,
 * then the state; the state's `published` counters say which versions were ever committed, so a
 * crash between the two leaves no phantom version in the history.
 */
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import lockfile from 'proper-lockfile';
import { RegistryError } from './codes.js';
import {
  assertClientName,
  assertSubgraphName,
  mergeUsage,
  sdlHash,
  type ClientDocument,
  type Registry,
  type RegistryChange,
  type RegistryState,
  type SubgraphOwner,
  type SubgraphVersion,
  type UsageRecord,
} from './registry.js';

interface StateFile extends RegistryState {
  /** The highest version ever committed, per subgraph. */
  readonly published: Record<string, number>;
}

let temporaries = 0;

async function writeAtomically(path: string, content: string): Promise<void> {
  const temporary = `${path}.${process.pid}.${temporaries++}.tmp`;
  await writeFile(temporary, content);
  await rename(temporary, path);
}

/** A version written before versions kept their data product documents has none. */
const withDocuments = (version: SubgraphVersion): SubgraphVersion => ({ ...version, dataProducts: version.dataProducts ?? null });

async function readJson<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new RegistryError('REGISTRY_UNAVAILABLE', `The registry file ${path} cannot be read: ${(error as Error).message}`, { cause: error });
  }
}

const versionFile = (version: number) => `${String(version).padStart(6, '0')}.json`;

export async function openFileRegistry(directory: string): Promise<Registry> {
  const dir = resolve(directory);
  try {
    await mkdir(join(dir, 'subgraphs'), { recursive: true });
    await mkdir(join(dir, 'clients'), { recursive: true });
  } catch (error) {
    throw new RegistryError('REGISTRY_UNAVAILABLE', `The registry directory ${dir} cannot be created: ${(error as Error).message}`, { cause: error });
  }
  const statePath = join(dir, 'state.json');
  const usagePath = join(dir, 'usage.json');
  const ownersPath = join(dir, 'owners.json');
  const readState = () => readJson<StateFile>(statePath);
  const readOwners = async () => (await readJson<Record<string, SubgraphOwner>>(ownersPath)) ?? {};
  const writeOwner = async (name: string, owner: Omit<SubgraphOwner, 'setAt'>) =>
    writeAtomically(ownersPath, `${JSON.stringify({ ...(await readOwners()), [assertSubgraphName(name)]: { ...owner, setAt: new Date().toISOString() } }, null, 2)}\n`);
  const publicState = (state: StateFile): RegistryState => {
    const { published: _published, ...rest } = state;
    return { ...rest, subgraphs: rest.subgraphs.map(withDocuments) };
  };
  /** A removal: the state without the subgraph, one revision on (its versions and counter stay). */
  const remove = async (state: StateFile | null, change: Extract<RegistryChange, { remove: string }>) => {
    const name = assertSubgraphName(change.remove);
    if (!state?.subgraphs.some((s) => s.name === name)) throw new RegistryError('REGISTRY_UNKNOWN_SUBGRAPH', `"${name}" is not in the supergraph.`);
    const next: StateFile = {
      ...state,
      revision: state.revision + 1,
      subgraphs: state.subgraphs.filter((s) => s.name !== name),
      supergraphSdl: change.supergraphSdl,
      apiSchemaSdl: change.apiSchemaSdl,
      supergraphVersion: change.supergraphVersion,
      composedAt: new Date().toISOString(),
    };
    await writeAtomically(statePath, `${JSON.stringify(next, null, 2)}\n`);
  };

  const locked = async <T>(work: () => Promise<T>): Promise<T> => {
    let release: () => Promise<void>;
    try {
      release = await lockfile.lock(dir, { realpath: false, stale: 15_000, retries: { retries: 100, minTimeout: 20, maxTimeout: 250 } });
    } catch (error) {
      throw new RegistryError('REGISTRY_UNAVAILABLE', `The registry ${dir} is locked by another writer: ${(error as Error).message}`, { cause: error });
    }
    try {
      return await work();
    } finally {
      await release();
    }
  };

  const history = async (name: string): Promise<SubgraphVersion[]> => {
    assertSubgraphName(name);
    const published = (await readState())?.published[name] ?? 0;
    let files: string[];
    try {
      files = await readdir(join(dir, 'subgraphs', name));
    } catch {
      return [];
    }
    const versions: SubgraphVersion[] = [];
    for (const file of files.filter((f) => /^\d{6}\.json$/.test(f))) {
      const version = await readJson<SubgraphVersion>(join(dir, 'subgraphs', name, file));
      if (version && version.version <= published) versions.push(withDocuments(version));
    }
    return versions.sort((a, b) => b.version - a.version);
  };

  return {
    location: dir,
    async state() {
      const state = await readState();
      return state && publicState(state);
    },
    owners: readOwners,
    async revision() {
      return (await readState())?.revision ?? 0;
    },
    history,
    transaction: (work) =>
      locked(async () => {
        const state = await readState();
        const { commit, result } = await work(state && publicState(state), await readOwners());
        if (!commit) return { result, written: null };
        if ('setOwner' in commit) {
          await writeOwner(commit.setOwner, commit.owner);
          return { result, written: null };
        }
        if ('remove' in commit) {
          await remove(state, commit);
          return { result, written: null };
        }
        const name = assertSubgraphName(commit.subgraph.name);
        const version: SubgraphVersion = {
          ...commit.subgraph,
          version: (state?.published[name] ?? 0) + 1,
          sdlHash: sdlHash(commit.subgraph.sdl),
          publishedAt: new Date().toISOString(),
        };
        await mkdir(join(dir, 'subgraphs', name), { recursive: true });
        await writeAtomically(join(dir, 'subgraphs', name, versionFile(version.version)), `${JSON.stringify(version, null, 2)}\n`);
        const next: StateFile = {
          revision: (state?.revision ?? 0) + 1,
          subgraphs: [...(state?.subgraphs ?? []).filter((s) => s.name !== name), version].sort((a, b) => a.name.localeCompare(b.name)),
          supergraphSdl: commit.supergraphSdl,
          apiSchemaSdl: commit.apiSchemaSdl,
          supergraphVersion: commit.supergraphVersion,
          composedAt: version.publishedAt,
          published: { ...state?.published, [name]: version.version },
        };
        // The claim first: a crash before the state leaves an owner without a version, never a version without its owner.
        if (commit.owner) await writeOwner(name, commit.owner);
        await writeAtomically(statePath, `${JSON.stringify(next, null, 2)}\n`);
        return { result, written: version };
      }),
    recordUsage: (records) =>
      records.length === 0
        ? Promise.resolve()
        : locked(async () => {
            const known = (await readJson<UsageRecord[]>(usagePath)) ?? [];
            await writeAtomically(usagePath, JSON.stringify(mergeUsage([...known, ...records])));
          }),
    async usage(since) {
      const cutoff = since.toISOString();
      return ((await readJson<UsageRecord[]>(usagePath)) ?? []).filter((record) => record.lastSeen >= cutoff);
    },
    registerDocuments: (documents) =>
      locked(async () => {
        const byClient = new Map<string, Omit<ClientDocument, 'registeredAt'>[]>();
        for (const document of documents) {
          const client = assertClientName(document.client);
          byClient.set(client, [...(byClient.get(client) ?? []), document]);
        }
        for (const [client, added] of byClient) {
          const path = join(dir, 'clients', `${client}.json`);
          const known = (await readJson<ClientDocument[]>(path)) ?? [];
          const registeredAt = new Date().toISOString();
          const names = new Set(added.map((document) => document.name));
          const next = [...known.filter((document) => !names.has(document.name)), ...added.map((document) => ({ ...document, registeredAt }))];
          await writeAtomically(path, `${JSON.stringify(next, null, 2)}\n`);
        }
      }),
    async documents() {
      const files = (await readdir(join(dir, 'clients')).catch(() => [] as string[])).filter((file) => file.endsWith('.json'));
      const all: ClientDocument[] = [];
      for (const file of files) all.push(...((await readJson<ClientDocument[]>(join(dir, 'clients', file))) ?? []));
      return all;
    },
    close: async () => undefined,
  };
}
