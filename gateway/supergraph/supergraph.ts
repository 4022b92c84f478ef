/**
 * Composing the supergraph from the running subgraphs: each subgraph's SDL is read from its
 * `_service { sdl }` field, composed with `@apollo/composition`, and written to files that tools
 * read (the supergraph SDL, and the API schema that clients see). Every composition adds the
 * platform's own subgraph, the federated data product catalog (gateway/catalog/), which the
 * gateway serves in process.
 */
import { SIGNATURE_HEADER, signSubgraphRequest, signingKeyFromEnv } from '../../policy/subgraph-signature.js';
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { composeServices } from '@apollo/composition';
import { GraphQLError, Kind, parse, printSchema, type DirectiveNode } from 'graphql';
import type { Logger } from 'pino';
import { governanceRules } from '../../policy/governance.rules.js';
import { readPolicy, type PolicyIndex, type PolicyViolation } from '../../policy/policy-index.js';
import type { GovernanceRules } from '../../policy/rules.js';
import { CATALOG_SUBGRAPH_NAME, CATALOG_SUBGRAPH_SDL, CATALOG_SUBGRAPH_URL, isCatalogSubgraph } from '../catalog/catalog-subgraph.js';
import type { SubgraphEndpoint } from '../subgraph-calls/subgraph-endpoint.js';

export interface SubgraphSdl extends SubgraphEndpoint {
  readonly sdl: string;
}

export interface ComposedSupergraph {
  readonly supergraphSdl: string;
  /** The policy directives of the supergraph, read against the governance rules. */
  readonly policy: PolicyIndex;
  /** The schema clients query: the supergraph without federation machinery. */
  readonly apiSchemaSdl: string;
  /** Short hash of the supergraph SDL: which version is serving. */
  readonly version: string;
  readonly subgraphs: readonly string[];
  readonly composedAt: string;
}

/** A supergraph whose policy directives would loosen a global governance rule. */
export class GovernanceViolationError extends Error {
  override name = 'GovernanceViolationError';
  constructor(readonly violations: readonly PolicyViolation[]) {
    super(`The supergraph breaks the governance rules:\n${violations.map((v) => `- ${v.message}`).join('\n')}`);
  }
}

export class CompositionFailedError extends Error {
  override name = 'CompositionFailedError';
  constructor(readonly errors: readonly GraphQLError[]) {
    super(`Composition failed:\n${errors.map((error) => `- ${error.message}`).join('\n')}`);
  }
}

export function composeSupergraph(
  subgraphs: readonly SubgraphSdl[],
  rules: GovernanceRules = governanceRules,
): ComposedSupergraph {
  if (subgraphs.some(({ name }) => name === CATALOG_SUBGRAPH_NAME)) {
    throw new CompositionFailedError([new GraphQLError(`The subgraph name "${CATALOG_SUBGRAPH_NAME}" is reserved for the platform's data product catalog: publish the domain under another name.`)]);
  }
  // Every supergraph the platform composes has the federated catalog (served by the gateway itself).
  const result = composeServices(
    [...subgraphs, { name: CATALOG_SUBGRAPH_NAME, url: CATALOG_SUBGRAPH_URL, sdl: CATALOG_SUBGRAPH_SDL }].map(({ name, url, sdl }) => ({ name, url, typeDefs: parse(sdl) })),
  );
  if (result.errors) throw new CompositionFailedError(result.errors);
  const supergraphSdl = result.supergraphSdl;
  const policy = readPolicy(parse(supergraphSdl), rules);
  if (policy.violations.length > 0) throw new GovernanceViolationError(policy.violations);
  return {
    supergraphSdl,
    policy,
    apiSchemaSdl: printSchema(result.schema.toAPISchema().toGraphQLJSSchema()),
    version: createHash('sha256').update(supergraphSdl).digest('hex').slice(0, 12),
    subgraphs: subgraphs.map(({ name }) => name),
    composedAt: new Date().toISOString(),
  };
}

/** Why a fetch failed, in a line: fetch's own cause (`ECONNREFUSED …`) rather than "fetch failed". */
export function fetchFailureReason(error: unknown): string {
  return error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error);
}

const SDL_QUERY = JSON.stringify({ query: 'query SubgraphSdl { _service { sdl } }' });

/** A subgraph's SDL, read from its `_service` field. */
export async function fetchSubgraphSdl(endpoint: SubgraphEndpoint, timeoutMs = 5_000, signingKey = signingKeyFromEnv()): Promise<string> {
  // A platform tool: it signs as the gateway does (subgraphs answer `_service` to signed callers only).
  const response = await fetch(endpoint.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signSubgraphRequest({ key: signingKey, body: SDL_QUERY }) },
    body: SDL_QUERY,
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  const body = (await response.json()) as { data?: { _service?: { sdl?: unknown } } };
  const sdl = body.data?._service?.sdl;
  if (typeof sdl !== 'string') throw new Error('the answer has no _service.sdl');
  return sdl;
}

/**
 * Waits until every subgraph answers (subgraphs may still be starting), then composes. Fails after
 * `timeoutMs`, naming the subgraphs that never answered, or at once on a composition error.
 */
export async function composeFromSubgraphs(options: {
  readonly subgraphs: readonly SubgraphEndpoint[];
  readonly timeoutMs: number;
  readonly log: Logger;
}): Promise<ComposedSupergraph> {
  const deadline = Date.now() + options.timeoutMs;
  const sdls = new Map<string, string>();
  const lastFailure = new Map<string, string>();
  for (let attempt = 0; ; attempt++) {
    await Promise.all(
      options.subgraphs
        .filter(({ name }) => !sdls.has(name))
        .map(async (endpoint) => {
          try {
            sdls.set(endpoint.name, await fetchSubgraphSdl(endpoint));
          } catch (error) {
            const reason = fetchFailureReason(error);
            lastFailure.set(endpoint.name, reason);
          }
        }),
    );
    const missing = options.subgraphs.filter(({ name }) => !sdls.has(name));
    if (missing.length === 0) break;
    if (Date.now() >= deadline) {
      const detail = missing.map(({ name, url }) => `${name} (${url}): ${lastFailure.get(name)}`).join('; ');
      throw new Error(`Subgraphs did not answer within ${options.timeoutMs} ms: ${detail}`);
    }
    if (attempt % 20 === 0) {
      options.log.info({ waitingFor: missing.map(({ name }) => name) }, 'waiting for subgraphs');
    }
    await sleep(250);
  }
  return composeSupergraph(options.subgraphs.map((endpoint) => ({ ...endpoint, sdl: sdls.get(endpoint.name)! })));
}

/** Writes the supergraph SDL and the API schema where tools read them (each path optional). */
export async function writeSupergraphFiles(
  composed: Pick<ComposedSupergraph, 'supergraphSdl' | 'apiSchemaSdl'>,
  paths: { readonly supergraphPath?: string; readonly apiSchemaPath?: string },
): Promise<void> {
  for (const [path, content] of [
    [paths.supergraphPath, composed.supergraphSdl],
    [paths.apiSchemaPath, composed.apiSchemaSdl],
  ] as const) {
    if (!path) continue;
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, content.endsWith('\n') ? content : `${content}\n`);
  }
}

/** The domain subgraphs a supergraph routes to, from its `join__Graph` enum (not the gateway's own catalog). */
export function subgraphsOfSupergraph(supergraphSdl: string): SubgraphEndpoint[] {
  return [...supergraphSdl.matchAll(/@join__graph\(name: "([^"]+)", url: "([^"]*)"\)/g)]
    .map(([, name, url]) => ({ name: name!, url: url! }))
    .filter((endpoint) => !isCatalogSubgraph(endpoint));
}

/**
 * Before a new supergraph is served: each subgraph it routes to at a URL the serving one does not
 * must answer over HTTP (any answer below 500 counts: a subgraph that refuses an anonymous call is
 * up). A publish that points at a subgraph not yet deployed is refused instead of failing requests.
 */
export async function probeSubgraphs(nextSdl: string, servingSdl: string, timeoutMs = 5_000, signingKey = signingKeyFromEnv()): Promise<void> {
  const known = new Set(subgraphsOfSupergraph(servingSdl).map(({ url }) => url));
  const fresh = subgraphsOfSupergraph(nextSdl).filter(({ url }) => !known.has(url));
  const failures = await Promise.all(
    fresh.map(async ({ name, url }) => {
      try {
        const body = JSON.stringify({ query: 'query SubgraphProbe { __typename }' });
        const response = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signSubgraphRequest({ key: signingKey, body }) },
          body,
          signal: AbortSignal.timeout(timeoutMs),
        });
        await response.arrayBuffer();
        return response.status < 500 ? null : `${name} (${url}) answered HTTP ${response.status}`;
      } catch (error) {
        return `${name} (${url}) did not answer: ${fetchFailureReason(error)}`;
      }
    }),
  );
  const problems = failures.filter((failure): failure is string => failure !== null);
  if (problems.length > 0) throw new Error(`The new supergraph routes to subgraphs that are not up: ${problems.join('; ')}.`);
}

/**
 * Which subgraphs resolve each field of the supergraph's object types (`Type.field` → subgraph
 * names), from its join directives: a field's `@join__field(graph:)`, else every graph of its
 * type's `@join__type(graph:)`. The catalog's lineage reads cross-domain edges from it.
 */
export function fieldOwnersOf(supergraphSdl: string): Map<string, string[]> {
  const document = parse(supergraphSdl);
  const graphs = new Map<string, string>();
  const owners = new Map<string, string[]>();
  const argument = (directive: DirectiveNode, name: string) => {
    const value = directive.arguments?.find((arg) => arg.name.value === name)?.value;
    return value && (value.kind === Kind.ENUM || value.kind === Kind.STRING) ? value.value : undefined;
  };
  for (const definition of document.definitions) {
    if (definition.kind === Kind.ENUM_TYPE_DEFINITION && definition.name.value === 'join__Graph') {
      for (const value of definition.values ?? []) {
        const name = value.directives?.find((d) => d.name.value === 'join__graph');
        if (name) graphs.set(value.name.value, argument(name, 'name') ?? value.name.value.toLowerCase());
      }
    }
  }
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OBJECT_TYPE_DEFINITION) continue;
    const typeGraphs = (definition.directives ?? []).filter((d) => d.name.value === 'join__type').map((d) => argument(d, 'graph')).filter((g): g is string => g !== undefined);
    for (const field of definition.fields ?? []) {
      const fieldGraphs = (field.directives ?? []).filter((d) => d.name.value === 'join__field').map((d) => argument(d, 'graph')).filter((g): g is string => g !== undefined);
      const names = (fieldGraphs.length > 0 ? fieldGraphs : typeGraphs).map((graph) => graphs.get(graph) ?? graph.toLowerCase());
      owners.set(`${definition.name.value}.${field.name.value}`, [...new Set(names)]);
    }
  }
  return owners;
}
