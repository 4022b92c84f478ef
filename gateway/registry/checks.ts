/**
 * The checks a subgraph must pass before it is published: governance lint of its SDL, composition
 * with the other serving subgraphs (and the composed supergraph's policy), and breaking changes
 * of the API schema, judged by what clients use.
 *
 * A breaking change that touches a coordinate a client used recently (recorded by the gateway) or
 * uses in a registered document is an error naming the clients; one nobody uses is a warning.
 * Its data products' documents are checked too (contracts.ts): harmonization rules, and breaking
 * contract changes; and their column profiles (policy/discovery.ts) against the proposed policy:
 * a column that looks like personal data behind a field not tagged pii, a HASH mask on a column of
 * few values.
 */
import { CriticalityLevel, diff, type Change } from '@graphql-inspector/core';
import { buildSchema, GraphQLError, parse, type DocumentNode, type GraphQLSchema } from 'graphql';
import type { GovernanceRules } from '../../policy/rules.js';
import { composeSupergraph, CompositionFailedError, GovernanceViolationError, type ComposedSupergraph } from '../supergraph/supergraph.js';
import { CHECK_CODES, type CheckCode, type Severity } from './codes.js';
import { coordinatesOf, touches } from './coordinates.js';
import { contractChanges, contractSchemaFindings, harmonizationFindings, sameDocuments } from './contracts.js';
import { lintSubgraph } from './governance-lint.js';
import { discoveryFindings } from '../../policy/discovery.js';
import { placeholdersInValue } from '../../policy/placeholders.js';
import { readPolicy } from '../../policy/policy-index.js';
import type { ProductDocument } from '../catalog/domain-entries.js';
import type { ClientDocument, RegistryState, UsageRecord } from './registry.js';

export interface Finding {
  readonly code: CheckCode;
  readonly severity: Severity;
  /** The schema coordinate it concerns (`Customer.email`), when it concerns one. */
  readonly coordinate: string | null;
  readonly message: string;
  /** For a breaking change in use: the clients that use it. */
  readonly clients?: readonly string[];
}

export interface ProposedSubgraph {
  readonly name: string;
  readonly url: string;
  readonly sdl: string;
  /**
   * Its data products' documents (ODPS and ODCS). Absent: those of the serving version stay, and
   * are checked against the new SDL.
   */
  readonly dataProducts?: readonly ProductDocument[] | null;
}

export interface CheckReport {
  readonly subgraph: string;
  /** The data product documents the version would have (the proposal's, or the serving version's kept). */
  readonly dataProducts: readonly ProductDocument[] | null;
  /** No finding is an error. */
  readonly accepted: boolean;
  readonly findings: readonly Finding[];
  /** The supergraph the proposal composes to (absent when composition failed). */
  readonly composed: ComposedSupergraph | null;
  /** The SDL and URL equal the serving version's. */
  readonly unchanged: boolean;
}

export interface CheckOptions {
  /** The registry's current state (null before the first publish). */
  readonly state: RegistryState | null;
  readonly proposal: ProposedSubgraph;
  /** Usage recorded by the gateway within the judged window. */
  readonly usage: readonly UsageRecord[];
  readonly documents: readonly ClientDocument[];
  readonly rules: GovernanceRules;
  /**
   * How breaking changes in use count (default `error`). A rollback passes `warning`: the operator
   * is deliberately returning to a version clients ran against before.
   */
  readonly breakingInUse?: 'error' | 'warning';
}

function finding(code: CheckCode, coordinate: string | null, message: string, extra: Partial<Finding> = {}): Finding {
  return { code, severity: CHECK_CODES[code].severity, coordinate, message, ...extra };
}

/** Who uses which coordinate: recorded usage and registered documents (valid against `schema`). */
function usageIndex(schema: GraphQLSchema, usage: readonly UsageRecord[], documents: readonly ClientDocument[]): Map<string, Set<string>> {
  const index = new Map<string, Set<string>>();
  const note = (coordinate: string, client: string) => {
    if (!index.has(coordinate)) index.set(coordinate, new Set());
    index.get(coordinate)!.add(client);
  };
  for (const record of usage) note(record.coordinate, record.client);
  for (const document of documents) {
    let parsed: DocumentNode;
    try {
      parsed = parse(document.body);
    } catch {
      continue; // validated at registration; a document that no longer parses uses nothing
    }
    for (const coordinate of coordinatesOf(schema, parsed)) note(coordinate, `${document.client} (registered: ${document.name})`);
  }
  return index;
}

const ADDITIONS = new Set(['FIELD_ARGUMENT_ADDED', 'INPUT_FIELD_ADDED']);

function clientsTouchedBy(change: Change, index: Map<string, Set<string>>): string[] {
  if (!change.path) return [];
  const clients = new Set<string>();
  for (const [coordinate, users] of index) {
    if (touches(change.path, coordinate, ADDITIONS.has(change.type))) for (const client of users) clients.add(client);
  }
  return [...clients].sort();
}

async function breakingChanges(options: CheckOptions, before: string, after: string): Promise<Finding[]> {
  const oldSchema = buildSchema(before);
  const changes = await diff(oldSchema, buildSchema(after));
  const index = usageIndex(oldSchema, options.usage, options.documents);
  return changes.map((change) => {
    const coordinate = change.path ?? null;
    if (change.criticality.level === CriticalityLevel.Breaking) {
      const clients = clientsTouchedBy(change, index);
      if (clients.length === 0) return finding('BREAKING_CHANGE_UNUSED', coordinate, `${change.message} No client uses it.`);
      const used = finding('BREAKING_CHANGE_IN_USE', coordinate, `${change.message} Used by ${clients.join(', ')}.`, { clients });
      return options.breakingInUse === 'warning' ? { ...used, severity: 'warning' } : used;
    }
    if (change.criticality.level === CriticalityLevel.Dangerous) return finding('DANGEROUS_CHANGE', coordinate, change.message);
    return finding('SAFE_CHANGE', coordinate, change.message);
  });
}

/**
 * Would removing a subgraph be accepted? The others must compose without it, and what it served
 * must not be in use (its fields are breaking changes, judged by clients' usage as for a publish).
 */
export async function checkRemoval(options: Omit<CheckOptions, 'proposal'> & { readonly name: string }): Promise<CheckReport> {
  const findings: Finding[] = [];
  const report = (composed: ComposedSupergraph | null): CheckReport => ({ subgraph: options.name, dataProducts: null, accepted: !findings.some((f) => f.severity === 'error'), findings, composed, unchanged: false });
  const rest = (options.state?.subgraphs ?? []).filter((s) => s.name !== options.name);
  let composed: ComposedSupergraph;
  try {
    composed = composeSupergraph(rest.map(({ name, url, sdl }) => ({ name, url, sdl })), options.rules);
  } catch (error) {
    if (!(error instanceof CompositionFailedError || error instanceof GovernanceViolationError)) throw error;
    findings.push(finding('COMPOSITION_FAILED', null, `The other subgraphs do not compose without ${options.name}: ${error.message}`));
    return report(null);
  }
  if (options.state) findings.push(...(await breakingChanges({ ...options, proposal: { name: options.name, url: '', sdl: '' } }, options.state.apiSchemaSdl, composed.apiSchemaSdl)));
  return report(composed);
}

export async function checkSubgraph(options: CheckOptions): Promise<CheckReport> {
  const { proposal, state } = options;
  const findings: Finding[] = [];
  const serving = state?.subgraphs.find((s) => s.name === proposal.name);
  // A profile is evidence of what the data holds, not the proposer's to withdraw: a product proposed
  // without one keeps the serving version's.
  const servingProfiles = new Map((serving?.dataProducts ?? []).flatMap((product) => (product.profile ? [[product.id, product.profile] as const] : [])));
  const dataProducts =
    (proposal.dataProducts ?? serving?.dataProducts ?? null)?.map((product) => {
      const kept = servingProfiles.get(product.id);
      return product.profile || !kept ? product : { ...product, profile: kept };
    }) ?? null;
  const report = (composed: ComposedSupergraph | null, unchanged = false): CheckReport => ({
    subgraph: proposal.name,
    dataProducts,
    accepted: !findings.some((f) => f.severity === 'error'),
    findings,
    composed,
    unchanged,
  });

  let document: DocumentNode;
  try {
    document = parse(proposal.sdl);
  } catch (error) {
    findings.push(finding('SDL_INVALID', null, (error as GraphQLError).message));
    return report(null);
  }
  for (const lint of lintSubgraph(document, options.rules)) findings.push(finding(lint.code, lint.coordinate, lint.message));
  // What a scaffold could not infer, left for the owner: refused until written.
  for (const product of dataProducts ?? []) {
    const where = new Map<string, string[]>();
    for (const found of placeholdersInValue({ odps: product.odps, odcs: product.odcs })) where.set(found.placeholder, [...(where.get(found.placeholder) ?? []), found.path]);
    for (const [text, paths] of where) findings.push(finding('GOVERNANCE_PLACEHOLDER', product.id, `"${text}" is still in ${paths.join(', ')}.`));
  }
  // Its data products: the harmonization rules, the contracts against the SDL and against the serving version's.
  if (dataProducts) {
    const contract = [
      ...harmonizationFindings(proposal.name, proposal.sdl, dataProducts),
      ...contractSchemaFindings(proposal.sdl, dataProducts),
      ...(serving?.dataProducts ? contractChanges(serving.dataProducts, dataProducts) : []),
    ];
    for (const f of contract) {
      const found = finding(f.code, f.coordinate, f.message);
      // A rollback returns to a contract consumers had: its breaking changes are warnings, as for the schema.
      findings.push(f.code === 'CONTRACT_BREAKING_CHANGE' && options.breakingInUse === 'warning' ? { ...found, severity: 'warning' } : found);
    }
    // What the loads found in the columns, against the policy the proposal would serve them under.
    const profiled = dataProducts.flatMap((product) => {
      const object = product.odcs.schema[0];
      if (!product.profile || !object) return [];
      return [{ typeName: object.name, profile: product.profile, fieldOf: new Map(object.properties.map((property) => [property.physicalName, property.name])) }];
    });
    if (profiled.length > 0) {
      for (const f of discoveryFindings(profiled, readPolicy(document, options.rules), options.rules)) findings.push({ ...finding(f.code, f.coordinate, f.message), severity: f.severity });
    }
  }

  let composed: ComposedSupergraph;
  try {
    composed = composeSupergraph(
      [...(state?.subgraphs ?? []).filter((s) => s.name !== proposal.name), proposal].map(({ name, url, sdl }) => ({ name, url, sdl })),
      options.rules,
    );
  } catch (error) {
    if (error instanceof CompositionFailedError) {
      for (const e of error.errors) {
        const code = typeof e.extensions.code === 'string' ? `[${e.extensions.code}] ` : '';
        // Composition names what it concerns in quotes: "Customer.name", or a type.
        const concerns = /"([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)"/.exec(e.message)?.[1] ?? null;
        findings.push(finding('COMPOSITION_FAILED', concerns, `${code}${e.message}`));
      }
    } else if (error instanceof GovernanceViolationError) {
      const known = new Set(findings.map((f) => f.message));
      for (const v of error.violations) if (!known.has(v.message)) findings.push(finding('GOVERNANCE_RULE_VIOLATION', v.coordinate, v.message));
    } else throw error;
    return report(null);
  }

  if (serving && serving.sdl === proposal.sdl && serving.url === proposal.url && sameDocuments(serving.dataProducts, dataProducts)) {
    findings.push(finding('UNCHANGED', null, `${proposal.name} version ${serving.version} already serves this SDL and these data product documents at this URL.`));
    return report(composed, true);
  }
  if (state) findings.push(...(await breakingChanges(options, state.apiSchemaSdl, composed.apiSchemaSdl)));
  return report(composed);
}
