/**
 * What the registry's commands do: check a proposed subgraph, publish it (only when every check
 * passes, under the registry's lock, so that the check and the write see the same state), and roll
 * a subgraph back to an earlier version (published anew, after the same checks).
 */
import { governanceRules } from '../../policy/governance.rules.js';
import type { SubgraphEndpoint } from '../subgraph-calls/subgraph-endpoint.js';
import { signingKeyFromEnv } from '../../policy/subgraph-signature.js';
import { catalogUrlOf, documentProblems, fetchDomainDocuments, NoCatalogError, type ProductDocument } from '../catalog/domain-entries.js';
import { fetchFailureReason, fetchSubgraphSdl } from '../supergraph/supergraph.js';
import type { GovernanceRules } from '../../policy/rules.js';
import { checkRemoval, checkSubgraph, type CheckReport, type ProposedSubgraph } from './checks.js';
import { sameDocuments } from './contracts.js';
import { RegistryError } from './codes.js';
import { assertRoutingUrl, assertSubgraphName, type Registry, type RegistryState, type SubgraphOwner, type SubgraphVersion } from './registry.js';

/**
 * Who may write a subgraph, decided under the registry's lock (the registry API's team check): given
 * its owner (null: none yet) and whether it was ever published, it throws a RegistryError
 * (`REGISTRY_FORBIDDEN`) or says who writes (the verified publisher, with the team it acts for) and
 * the owner to claim the subgraph for (a first publish), if any. The platform's operators, on the
 * store itself, write without one.
 */
export type WriteAuthorization = (owner: SubgraphOwner | null, everPublished: boolean) => { readonly publishedBy: string; readonly claim: Omit<SubgraphOwner, 'setAt'> | null };

async function authorized(registry: Registry, name: string, state: RegistryState | null, owners: Readonly<Record<string, SubgraphOwner>>, authorize: WriteAuthorization | undefined) {
  if (!authorize) return null;
  const everPublished = Boolean(state?.subgraphs.some((s) => s.name === name)) || (await registry.history(name)).length > 0;
  return authorize(owners[name] ?? null, everPublished);
}

export interface JudgeOptions {
  /** Usage recorded within this many days counts as use (default 30). */
  readonly usageDays?: number;
  /** The governance rules (default `policy/governance.rules.ts`). */
  readonly rules?: GovernanceRules;
}

export interface PublishOutcome {
  readonly report: CheckReport;
  /** The version written, when the publish was accepted and changed something. */
  readonly published: SubgraphVersion | null;
  readonly revision: number;
}

async function judge(registry: Registry, state: RegistryState | null, proposal: ProposedSubgraph, options: JudgeOptions & { breakingInUse?: 'error' | 'warning' }) {
  assertSubgraphName(proposal.name);
  assertRoutingUrl(proposal.url);
  const since = new Date(Date.now() - (options.usageDays ?? 30) * 86_400_000);
  return checkSubgraph({
    state,
    proposal,
    usage: await registry.usage(since),
    documents: await registry.documents(),
    rules: options.rules ?? governanceRules,
    ...(options.breakingInUse ? { breakingInUse: options.breakingInUse } : {}),
  });
}

/** Would this subgraph be accepted? Writes nothing. */
export async function checkProposal(registry: Registry, proposal: ProposedSubgraph, options: JudgeOptions = {}): Promise<CheckReport> {
  return judge(registry, await registry.state(), proposal, options);
}

async function publishChecked(
  registry: Registry,
  proposal: ProposedSubgraph & { publishedBy: string; note: string | null },
  options: JudgeOptions & { breakingInUse?: 'error' | 'warning'; authorize?: WriteAuthorization },
): Promise<PublishOutcome> {
  const { result: report, written } = await registry.transaction(async (state, owners) => {
    const decided = await authorized(registry, proposal.name, state, owners, options.authorize);
    const claim = decided?.claim ?? null;
    const report = await judge(registry, state, proposal, options);
    if (!report.accepted || report.unchanged || !report.composed) return { commit: null, result: report };
    return {
      commit: {
        subgraph: { name: proposal.name, url: proposal.url, sdl: proposal.sdl, publishedBy: decided?.publishedBy ?? proposal.publishedBy, note: proposal.note, dataProducts: report.dataProducts },
        supergraphSdl: report.composed.supergraphSdl,
        apiSchemaSdl: report.composed.apiSchemaSdl,
        supergraphVersion: report.composed.version,
        ...(claim ? { owner: claim } : {}),
      },
      result: report,
    };
  });
  return { report, published: written, revision: await registry.revision() };
}

/** Publishes the subgraph when every check passes; otherwise writes nothing. */
export function publishSubgraph(
  registry: Registry,
  proposal: ProposedSubgraph & { publishedBy: string },
  options: JudgeOptions & { authorize?: WriteAuthorization } = {},
): Promise<PublishOutcome> {
  return publishChecked(registry, { ...proposal, note: null }, options);
}

/**
 * Publishes an earlier version of a subgraph again (URL and SDL), as a new version. It must still
 * compose and pass governance; breaking changes in use are reported as warnings.
 */
export async function rollbackSubgraph(
  registry: Registry,
  options: JudgeOptions & { name: string; version?: number; publishedBy: string; authorize?: WriteAuthorization },
): Promise<PublishOutcome> {
  const history = await registry.history(assertSubgraphName(options.name));
  if (history.length === 0) throw new RegistryError('REGISTRY_UNKNOWN_SUBGRAPH', `No version of "${options.name}" was ever published.`);
  // A caller who may not write it learns nothing of its versions (checked again under the lock).
  options.authorize?.((await registry.owners())[options.name] ?? null, true);
  const serving = (await registry.state())?.subgraphs.find((s) => s.name === options.name);
  // Without a version: the one before the serving one.
  const target =
    options.version === undefined
      ? history.find((v) => serving && v.version < serving.version && (v.sdlHash !== serving.sdlHash || v.url !== serving.url || !sameDocuments(v.dataProducts, serving.dataProducts)))
      : history.find((v) => v.version === options.version);
  if (!target) {
    throw new RegistryError(
      'REGISTRY_UNKNOWN_VERSION',
      options.version === undefined
        ? `"${options.name}" has no earlier version that differs from the serving one.`
        : `"${options.name}" has no version ${options.version}; versions: ${history.map((v) => v.version).join(', ')}.`,
    );
  }
  return publishChecked(
    registry,
    { name: target.name, url: target.url, sdl: target.sdl, dataProducts: target.dataProducts, publishedBy: options.publishedBy, note: `rollback to version ${target.version}` },
    { ...options, breakingInUse: 'warning' },
  );
}

/** A subgraph's versions, newest first, and the serving one's number (null: removed); refused when it was never published. */
export async function publishedHistory(registry: Registry, name: string): Promise<{ readonly history: SubgraphVersion[]; readonly serving: number | null }> {
  const history = await registry.history(assertSubgraphName(name));
  if (history.length === 0) throw new RegistryError('REGISTRY_UNKNOWN_SUBGRAPH', `No version of "${name}" was ever published.`);
  return { history, serving: (await registry.state())?.subgraphs.find((s) => s.name === name)?.version ?? null };
}

/** One published version of a subgraph: the one asked for, else the serving one, else the newest. */
export async function publishedVersion(registry: Registry, name: string, version?: number): Promise<SubgraphVersion> {
  const { history, serving } = await publishedHistory(registry, name);
  const wanted = version ?? serving ?? history[0]!.version;
  const found = history.find((v) => v.version === wanted);
  if (!found) throw new RegistryError('REGISTRY_UNKNOWN_VERSION', `"${name}" has no version ${wanted}; versions: ${history.map((v) => v.version).join(', ')}.`);
  return found;
}

export interface RemovalOutcome {
  readonly report: CheckReport;
  /** The subgraph left the supergraph. */
  readonly removed: boolean;
  readonly revision: number;
}

/**
 * Removes a subgraph from the supergraph (its history stays): only when the others compose without
 * it and nothing it served is in use. The last subgraph cannot be removed.
 */
export async function removeSubgraph(registry: Registry, options: JudgeOptions & { name: string; authorize?: WriteAuthorization }): Promise<RemovalOutcome> {
  const name = assertSubgraphName(options.name);
  const since = new Date(Date.now() - (options.usageDays ?? 30) * 86_400_000);
  const { result: report } = await registry.transaction(async (state, owners) => {
    if (!state?.subgraphs.some((s) => s.name === name)) throw new RegistryError('REGISTRY_UNKNOWN_SUBGRAPH', `"${name}" is not in the supergraph.`);
    if (state.subgraphs.length === 1) throw new RegistryError('REGISTRY_LAST_SUBGRAPH', `"${name}" is the supergraph's only subgraph: publish another before removing it.`);
    await authorized(registry, name, state, owners, options.authorize);
    const report = await checkRemoval({ state, name, usage: await registry.usage(since), documents: await registry.documents(), rules: options.rules ?? governanceRules });
    if (!report.accepted || !report.composed) return { commit: null, result: report };
    return { commit: { remove: name, supergraphSdl: report.composed.supergraphSdl, apiSchemaSdl: report.composed.apiSchemaSdl, supergraphVersion: report.composed.version }, result: report };
  });
  return { report, removed: report.accepted, revision: await registry.revision() };
}

/** The governance group sets (or moves) a subgraph's owning team. */
export async function setSubgraphOwner(registry: Registry, options: { name: string; team: string; setBy: string }): Promise<void> {
  const name = assertSubgraphName(options.name);
  await registry.transaction(async () => ({ commit: { setOwner: name, owner: { team: options.team, setBy: options.setBy } }, result: null }));
}

/**
 * A running subgraph's data product documents, from its `/catalog` (signed, as the gateway reads
 * them); null for a subgraph that serves none (not built with the kit).
 */
export async function fetchSubgraphDocuments(endpoint: SubgraphEndpoint, signingKey = signingKeyFromEnv()): Promise<readonly ProductDocument[] | null> {
  let products: readonly ProductDocument[];
  try {
    products = (await fetchDomainDocuments(endpoint, { signingKey, timeoutMs: 5_000 })).products;
  } catch (error) {
    if (error instanceof NoCatalogError) return null;
    throw new RegistryError('REGISTRY_DOCUMENTS_UNAVAILABLE', `The data product documents of ${endpoint.name} cannot be read from ${catalogUrlOf(endpoint.url).href}: ${fetchFailureReason(error)}`, { cause: error });
  }
  for (const product of products) {
    const problems = documentProblems(product);
    if (problems.length > 0) throw new RegistryError('REGISTRY_DOCUMENTS_UNAVAILABLE', `${endpoint.name} serves a malformed data product document at /catalog (${String(product?.id)}): ${problems.join('; ')}`);
  }
  return products;
}

/**
 * Publishes each running subgraph's SDL (read from its `_service { sdl }`) and its data product
 * documents (from its `/catalog`), in order, as each team's deploy would: what `npm start` and the
 * containers' publish job do. Stops at nothing: a refused subgraph is reported and the next one is tried.
 */
export async function publishRunningSubgraphs(
  registry: Registry,
  subgraphs: readonly SubgraphEndpoint[],
  options: JudgeOptions & { publishedBy: string },
): Promise<(PublishOutcome & { name: string })[]> {
  const outcomes = [];
  for (const subgraph of subgraphs) {
    let sdl: string;
    try {
      sdl = await fetchSubgraphSdl(subgraph);
    } catch (error) {
      const reason = fetchFailureReason(error);
      throw new RegistryError('REGISTRY_SDL_UNAVAILABLE', `The SDL of ${subgraph.name} cannot be read from ${subgraph.url}: ${reason}`, { cause: error });
    }
    const dataProducts = await fetchSubgraphDocuments(subgraph);
    outcomes.push({ name: subgraph.name, ...(await publishSubgraph(registry, { ...subgraph, sdl, dataProducts, publishedBy: options.publishedBy }, options)) });
  }
  return outcomes;
}
