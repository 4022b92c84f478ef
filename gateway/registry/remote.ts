/**
 * The registry API's client (gateway/registry/api.ts): what `npm run registry` uses when
 * `--registry` (or `REGISTRY_URL`) is an http(s) URL, with the token of `REGISTRY_TOKEN` or
 * `--token-file`. Answers come back as the API gives them; an error answer is a RegistryError with
 * the API's code.
 */
import type { ProductDocument } from '../catalog/domain-entries.js';
import type { CheckReport } from './checks.js';
import { REGISTRY_ERRORS, RegistryError, type RegistryErrorCode } from './codes.js';
import type { SubgraphOwner, SubgraphVersion } from './registry.js';

/** A report as the API sends it. */
export type RemoteReport = Omit<CheckReport, 'composed' | 'dataProducts'>;

export interface RemoteWrite {
  readonly report: RemoteReport;
  readonly published: Omit<SubgraphVersion, 'sdl' | 'dataProducts'> | null;
  readonly revision: number;
}

export interface RemoteRegistry {
  readonly location: string;
  status(): Promise<{ revision: number; supergraphVersion: string | null; subgraphs: (Omit<SubgraphVersion, 'sdl' | 'dataProducts'> & { owner: SubgraphOwner | null })[] }>;
  history(name: string): Promise<{ serving: number | null; owner: SubgraphOwner | null; versions: (Omit<SubgraphVersion, 'sdl' | 'dataProducts'> & { dataProducts: { id: string; version: string }[] | null })[] }>;
  documents(name: string, version?: number): Promise<unknown>;
  check(name: string, proposal: { sdl: string; url?: string; dataProducts?: readonly ProductDocument[] | null }): Promise<{ report: RemoteReport }>;
  publish(name: string, proposal: { sdl: string; url?: string; dataProducts?: readonly ProductDocument[] | null; team?: string }): Promise<RemoteWrite>;
  rollback(name: string, version?: number): Promise<RemoteWrite>;
  remove(name: string): Promise<{ report: RemoteReport; removed: boolean; revision: number }>;
  setOwner(name: string, team: string): Promise<{ owner: SubgraphOwner }>;
  registerDocuments(client: string, documents: readonly { name: string; body: string }[]): Promise<{ registered: number }>;
}

export const isRegistryApiUrl = (location: string) => /^https?:\/\//i.test(location);

export function remoteRegistry(location: string, token: string | undefined): RemoteRegistry {
  // `…/registry` or `…/registry/v1`, with or without a trailing slash.
  const base = `${location.replace(/\/+$/, '').replace(/\/v1$/, '')}/v1`;
  if (!token) throw new RegistryError('REGISTRY_UNAUTHENTICATED', `The registry API at ${location} needs a token: set REGISTRY_TOKEN, or give --token-file.`);
  const call = async <T>(method: string, path: string, body?: unknown, accept: readonly number[] = []): Promise<T> => {
    let response: Response;
    try {
      response = await fetch(`${base}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(60_000),
      });
    } catch (error) {
      throw new RegistryError('REGISTRY_UNAVAILABLE', `The registry API at ${base} did not answer: ${(error as Error).message}`, { cause: error });
    }
    const answer = (await response.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null;
    if (response.ok || accept.includes(response.status)) return answer as T;
    const code = answer?.error?.code && answer.error.code in REGISTRY_ERRORS ? (answer.error.code as RegistryErrorCode) : 'REGISTRY_UNAVAILABLE';
    throw new RegistryError(code, answer?.error?.message ?? `The registry API answered HTTP ${response.status}.`);
  };
  const subgraph = (name: string) => `/subgraphs/${encodeURIComponent(name)}`;
  return {
    location: base,
    status: () => call('GET', '/subgraphs'),
    history: (name) => call('GET', `${subgraph(name)}/history`),
    documents: (name, version) => call('GET', `${subgraph(name)}/documents${version === undefined ? '' : `?version=${version}`}`),
    check: (name, proposal) => call('POST', `${subgraph(name)}/check`, proposal, [422]),
    publish: (name, proposal) => call('POST', `${subgraph(name)}/publish`, proposal, [422]),
    rollback: (name, version) => call('POST', `${subgraph(name)}/rollback`, version === undefined ? {} : { version }, [422]),
    remove: (name) => call('DELETE', subgraph(name), undefined, [422]),
    setOwner: (name, team) => call('PUT', `${subgraph(name)}/owner`, { team }),
    registerDocuments: (client, documents) => call('POST', `/clients/${encodeURIComponent(client)}/documents`, { documents }),
  };
}
