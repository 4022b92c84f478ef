/**
 * Where the gateway's supergraph comes from, and how it learns of a new one.
 *
 * - `registry` (the default): the supergraph the registry derived from its published subgraphs;
 *   the registry's revision is polled, and each new revision is loaded.
 * - `file`: a supergraph SDL file composed by any Federation 2 tool, reloaded when it changes. A
 *   supergraph without our policy directives has unclassified fields: their treatment is
 *   configuration (denied by default).
 * - `subgraphs`: composed once at start from the running subgraphs' `_service { sdl }` (no reload);
 *   for a quick local mesh without a registry.
 *
 * A source only reads and validates; the gateway decides whether a new supergraph replaces the
 * serving one (see server.ts).
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse } from 'graphql';
import type { Logger } from 'pino';
import { governanceRules } from '../../policy/governance.rules.js';
import { readPolicy, type PolicyIndex } from '../../policy/policy-index.js';
import type { GovernanceRules, Level } from '../../policy/rules.js';
import type { SubgraphEndpoint } from '../subgraph-calls/subgraph-endpoint.js';
import { openRegistry } from '../registry/open.js';
import type { Registry } from '../registry/registry.js';
import { composeFromSubgraphs, GovernanceViolationError } from './supergraph.js';
import { readCostIndex, type CostIndex } from '../request-stages/cost.js';

/** How fields without a classification are treated in a supergraph file: see `UNCLASSIFIED_FIELDS`. */
export type UnclassifiedTreatment = 'deny' | 'allow' | Level;

export type SupergraphSourceConfig =
  | {
      readonly kind: 'registry';
      /** The registry's location (env `REGISTRY_URL`). */
      readonly registryUrl: string;
      /** How often the registry's revision is read (env `RELOAD_POLL_MS`, default 1000). */
      readonly pollMs: number;
    }
  | {
      readonly kind: 'file';
      /** The supergraph SDL file (env `SUPERGRAPH_FILE`). */
      readonly path: string;
      /** How often the file is looked at (env `RELOAD_POLL_MS`, default 1000). */
      readonly pollMs: number;
      /** Env `UNCLASSIFIED_FIELDS`: `deny` (default), `allow` (as PUBLIC), or a level's default. */
      readonly unclassified: UnclassifiedTreatment;
    }
  | {
      readonly kind: 'subgraphs';
      /** The subgraphs to compose (env `SUBGRAPHS`). */
      readonly subgraphs: readonly SubgraphEndpoint[];
    };

export interface LoadedSupergraph {
  readonly supergraphSdl: string;
  readonly policy: PolicyIndex;
  /** Its `@cost` and `@listSize` directives, for the cost limit. */
  readonly cost: CostIndex;
  /** Short hash of the SDL. */
  readonly version: string;
  /** Where it came from, for logs and readiness: `registry revision 4`, a file path, … */
  readonly origin: string;
}

export interface SupergraphSource {
  /** Waits (up to `timeoutMs`) for a first supergraph. */
  first(timeoutMs: number): Promise<LoadedSupergraph>;
  /**
   * Calls `onChange` with each new supergraph, or `onError` when one cannot be read or validated,
   * until the returned function is called. Not every source changes.
   */
  watch(handlers: { onChange: (next: LoadedSupergraph) => Promise<void>; onError: (error: Error) => void }): () => void;
  close(): Promise<void>;
}

/** The governance rules a supergraph file is read with: the global rules, unclassified as configured. */
export function rulesForUnclassified(treatment: UnclassifiedTreatment, rules: GovernanceRules = governanceRules): GovernanceRules {
  if (treatment === 'deny') return { ...rules, unclassified: 'DENIED' };
  return { ...rules, unclassified: treatment === 'allow' ? 'PUBLIC' : treatment };
}

export function loadSupergraph(sdl: string, origin: string, rules: GovernanceRules): LoadedSupergraph {
  const document = parse(sdl);
  const policy = readPolicy(document, rules);
  if (policy.violations.length > 0) throw new GovernanceViolationError(policy.violations);
  return { supergraphSdl: sdl, policy, cost: readCostIndex(document), version: createHash('sha256').update(sdl).digest('hex').slice(0, 12), origin };
}

/** Runs `tick` every `pollMs` (never two at once) until stopped. */
function poll(pollMs: number, tick: () => Promise<void>): () => void {
  let stopped = false;
  void (async () => {
    while (!stopped) {
      await sleep(pollMs, undefined, { ref: false });
      if (!stopped) await tick();
    }
  })();
  return () => {
    stopped = true;
  };
}

function registrySource(config: Extract<SupergraphSourceConfig, { kind: 'registry' }>, log: Logger): SupergraphSource {
  let registry: Registry | undefined;
  let revision = 0;
  const open = async () => (registry ??= await openRegistry(config.registryUrl));
  const current = async (): Promise<LoadedSupergraph | null> => {
    const state = await (await open()).state();
    if (!state) return null;
    revision = state.revision;
    return loadSupergraph(state.supergraphSdl, `registry revision ${state.revision}`, governanceRules);
  };
  return {
    async first(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (let attempt = 0; ; attempt++) {
        const loaded = await current().catch((error: Error) => {
          if (Date.now() >= deadline) throw error;
          log.warn({ err: error }, 'the registry cannot be read yet');
          return null;
        });
        if (loaded) return loaded;
        if (Date.now() >= deadline) {
          throw new Error(`The registry at ${config.registryUrl} has no published supergraph after ${timeoutMs} ms: publish the subgraphs (npm run registry -- publish …).`);
        }
        if (attempt % 20 === 0) log.info({ registry: config.registryUrl }, 'waiting for a first publish to the registry');
        await sleep(250);
      }
    },
    watch({ onChange, onError }) {
      return poll(config.pollMs, async () => {
        try {
          if ((await (await open()).revision()) === revision) return;
          const loaded = await current();
          if (loaded) await onChange(loaded);
        } catch (error) {
          onError(error as Error);
        }
      });
    },
    close: async () => registry?.close(),
  };
}

function fileSource(config: Extract<SupergraphSourceConfig, { kind: 'file' }>): SupergraphSource {
  const rules = rulesForUnclassified(config.unclassified);
  let seen = '';
  const read = async (): Promise<LoadedSupergraph> => {
    const sdl = await readFile(config.path, 'utf8');
    const loaded = loadSupergraph(sdl, config.path, rules);
    seen = loaded.version;
    return loaded;
  };
  return {
    first: () => read(),
    watch({ onChange, onError }) {
      let mark = '';
      return poll(config.pollMs, async () => {
        try {
          const { mtimeMs, size } = await stat(config.path);
          if (`${mtimeMs}:${size}` === mark) return;
          mark = `${mtimeMs}:${size}`;
          const before = seen;
          const loaded = await read();
          if (loaded.version !== before) await onChange(loaded);
        } catch (error) {
          onError(error as Error);
        }
      });
    },
    close: async () => undefined,
  };
}

function subgraphsSource(config: Extract<SupergraphSourceConfig, { kind: 'subgraphs' }>, log: Logger): SupergraphSource {
  return {
    async first(timeoutMs) {
      const composed = await composeFromSubgraphs({ subgraphs: config.subgraphs, timeoutMs, log });
      return {
        supergraphSdl: composed.supergraphSdl,
        policy: composed.policy,
        cost: readCostIndex(parse(composed.supergraphSdl)),
        version: composed.version,
        origin: `composed from ${composed.subgraphs.join(', ')}`,
      };
    },
    watch: () => () => undefined,
    close: async () => undefined,
  };
}

export function createSupergraphSource(config: SupergraphSourceConfig, log: Logger): SupergraphSource {
  switch (config.kind) {
    case 'registry':
      return registrySource(config, log);
    case 'file':
      return fileSource(config);
    case 'subgraphs':
      return subgraphsSource(config, log);
  }
}
