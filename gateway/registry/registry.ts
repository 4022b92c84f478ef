/**
 * The registry of published subgraphs: what the supergraph is derived from.
 *
 * For each subgraph it keeps every published version (routing URL, SDL, who published it and
 * when), never rewriting one; the current state names the serving version of each subgraph and
 * holds the supergraph composed from them, with a revision number that grows by one per publish
 * (the gateway watches it). It also keeps what consumers use, for the breaking-change check: the
 * schema coordinates recorded from each client's operations, and the documents clients register.
 *
 * Two stores share this contract: a directory (`file-registry.ts`, the default) and a PostgreSQL
 * schema (`postgres-registry.ts`).
 */
import { createHash } from 'node:crypto';
import type { ProductDocument } from '../catalog/domain-entries.js';
import { RegistryError } from './codes.js';

export interface SubgraphVersion {
  /** The subgraph's name in the supergraph. */
  readonly name: string;
  /** 1 for the first publish of this subgraph, then one more per publish (a rollback included). */
  readonly version: number;
  /** The subgraph's GraphQL endpoint, where the gateway routes its fetches. */
  readonly url: string;
  /** The subgraph SDL (as its `_service { sdl }` prints it). */
  readonly sdl: string;
  /** SHA-256 of the SDL, hex. */
  readonly sdlHash: string;
  readonly publishedBy: string;
  /** ISO 8601. */
  readonly publishedAt: string;
  /** Why it was published, e.g. `rollback to version 2`. */
  readonly note: string | null;
  /**
   * The ODPS document and ODCS contract of each of its data products, as published with this
   * version (null: it published none, as a subgraph not built with the kit).
   */
  readonly dataProducts: readonly ProductDocument[] | null;
}

export interface RegistryState {
  /** Grows by one with every accepted publish or rollback. */
  readonly revision: number;
  /** The serving version of every subgraph, by name. */
  readonly subgraphs: readonly SubgraphVersion[];
  /** The supergraph composed from them. */
  readonly supergraphSdl: string;
  /** The API schema clients see (the supergraph without federation machinery). */
  readonly apiSchemaSdl: string;
  /** Short hash of the supergraph SDL. */
  readonly supergraphVersion: string;
  readonly composedAt: string;
}

/** The team that owns a subgraph: only its tokens (and the governance group) may publish, roll back or delete it. */
export interface SubgraphOwner {
  readonly team: string;
  /** Who set it: the first publisher, or the governance group's member. */
  readonly setBy: string;
  /** ISO 8601. */
  readonly setAt: string;
}

/** What a publish writes: the subgraph's new version and the state that serves it. */
export interface RegistryCommit {
  readonly subgraph: Omit<SubgraphVersion, 'version' | 'sdlHash' | 'publishedAt'>;
  readonly supergraphSdl: string;
  readonly apiSchemaSdl: string;
  readonly supergraphVersion: string;
  /** The team the subgraph is claimed for, written with it (a first publish through the registry API). */
  readonly owner?: Omit<SubgraphOwner, 'setAt'>;
}

/** What a delete writes: the state without the subgraph (its history stays). */
export interface RegistryRemoval {
  readonly remove: string;
  readonly supergraphSdl: string;
  readonly apiSchemaSdl: string;
  readonly supergraphVersion: string;
}

/** The governance group sets (or moves) a subgraph's owner. */
export interface RegistryOwnerChange {
  readonly setOwner: string;
  readonly owner: Omit<SubgraphOwner, 'setAt'>;
}

export type RegistryChange = RegistryCommit | RegistryRemoval | RegistryOwnerChange;

/** How often a client used a schema coordinate, and when last. */
export interface UsageRecord {
  readonly client: string;
  /** `Type.field`, `Type.field.argument`, `Enum.VALUE` or `Input.field`. */
  readonly coordinate: string;
  readonly count: number;
  /** ISO 8601. */
  readonly lastSeen: string;
}

/** A GraphQL document a client registered (its operations, as the client ships them). */
export interface ClientDocument {
  readonly client: string;
  /** The document's name, unique per client (e.g. its file name or operation name). */
  readonly name: string;
  readonly body: string;
  readonly registeredBy: string;
  readonly registeredAt: string;
}

export interface Registry {
  /** Where it is, for reports: a directory or a PostgreSQL URL without its password. */
  readonly location: string;
  /** The current state; null until the first publish. */
  state(): Promise<RegistryState | null>;
  /** The current revision (0 before the first publish): cheap, for watchers. */
  revision(): Promise<number>;
  /** Every published version of a subgraph, newest first. */
  history(name: string): Promise<SubgraphVersion[]>;
  /**
   * Runs `work` under the registry's lock with the current state and owners. When it returns a
   * change, it is written whole before the lock is released (a publish: the new version, the new
   * state and the owner it claims; a removal: the state without the subgraph; an owner change), so
   * that concurrent writers are checked one after the other. Resolves to the work's result and the
   * version written, if any.
   */
  transaction<T>(
    work: (state: RegistryState | null, owners: Readonly<Record<string, SubgraphOwner>>) => Promise<{ readonly commit: RegistryChange | null; readonly result: T }>,
  ): Promise<{ readonly result: T; readonly written: SubgraphVersion | null }>;
  /** Each owned subgraph's owner, by name. */
  owners(): Promise<Record<string, SubgraphOwner>>;
  /** Adds usage counts (the gateway's flush); `lastSeen` of each record is its newest sighting. */
  recordUsage(records: readonly UsageRecord[]): Promise<void>;
  /** Usage seen since the given time. */
  usage(since: Date): Promise<UsageRecord[]>;
  /** Registers (or replaces) a client's documents by name. */
  registerDocuments(documents: readonly Omit<ClientDocument, 'registeredAt'>[]): Promise<void>;
  /** Every registered client document. */
  documents(): Promise<ClientDocument[]>;
  close(): Promise<void>;
}

const SUBGRAPH_NAME = /^[a-z][a-z0-9_-]{0,62}$/;
const CLIENT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** A subgraph name is also a folder name: lower-case letters, digits, `-` and `_`. */
export function assertSubgraphName(name: string): string {
  if (!SUBGRAPH_NAME.test(name)) {
    throw new RegistryError('REGISTRY_INVALID_NAME', `Subgraph name "${name.slice(0, 80)}" must be 1-63 lower-case letters, digits, - or _, starting with a letter.`);
  }
  return name;
}

/** A registered client's name is also a file name: letters, digits, `.`, `-` and `_`. */
export function assertClientName(name: string): string {
  if (!CLIENT_NAME.test(name)) {
    throw new RegistryError('REGISTRY_INVALID_NAME', `Client name "${name.slice(0, 80)}" must be 1-128 letters, digits, ., - or _, starting with a letter or digit.`);
  }
  return name;
}

export function assertRoutingUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new RegistryError('REGISTRY_INVALID_URL', `"${url.slice(0, 200)}" is not a URL.`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new RegistryError('REGISTRY_INVALID_URL', `The routing URL must be http or https, got "${parsed.protocol}".`);
  }
  if (parsed.username || parsed.password) {
    throw new RegistryError('REGISTRY_INVALID_URL', 'The routing URL must not carry credentials; the gateway forwards the caller\'s token.');
  }
  return url;
}

export function sdlHash(sdl: string): string {
  return createHash('sha256').update(sdl).digest('hex');
}

/** Sums usage records per client and coordinate (counts added, newest `lastSeen` kept). */
export function mergeUsage(records: readonly UsageRecord[]): UsageRecord[] {
  const merged = new Map<string, UsageRecord>();
  for (const record of records) {
    const key = `${record.client}\u0000${record.coordinate}`;
    const seen = merged.get(key);
    merged.set(
      key,
      seen
        ? { ...seen, count: seen.count + record.count, lastSeen: seen.lastSeen > record.lastSeen ? seen.lastSeen : record.lastSeen }
        : record,
    );
  }
  return [...merged.values()];
}
