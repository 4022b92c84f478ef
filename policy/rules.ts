import type { MaskStrategy } from './masking.js';

/**
 * The shape of the governance rules (the rules themselves are in `governance.rules.ts`).
 */

/** Sensitivity levels, least to most sensitive. */
export const LEVELS = ['PUBLIC', 'INTERNAL', 'CONFIDENTIAL', 'RESTRICTED'] as const;
export type Level = (typeof LEVELS)[number];

export function isLevel(value: unknown): value is Level {
  return typeof value === 'string' && (LEVELS as readonly string[]).includes(value);
}

export function levelRank(level: Level): number {
  return LEVELS.indexOf(level);
}

/** What a principal needs to see a field; every part given must hold. */
export interface Requirement {
  /** A verified token is needed (no anonymous access). */
  readonly authenticated: boolean;
  /** The token must name its subject (the `sub` claim, or the configured subject claim): reads are audited as someone. */
  readonly subject?: boolean;
  /** At least one of these roles. */
  readonly roles?: readonly string[];
  /** Every scope of at least one group. */
  readonly scopes?: readonly (readonly string[])[];
  /** The principal's declared purpose is one of these. */
  readonly purposes?: readonly string[];
}

/** A default mask: applied to every principal who may read the field but holds no exemption. */
export interface MaskDefault {
  readonly strategy: MaskStrategy;
  readonly exemptRoles: readonly string[];
  readonly exemptPurposes?: readonly string[];
}

export interface GovernanceRules {
  /** Default requirement of each level; a domain may tighten a field's, never loosen it. */
  readonly levels: Readonly<Record<Level, Requirement>>;
  /**
   * The level of a field that has none: the strictest, so that nothing is open by mistake.
   * `DENIED` closes such fields to every principal (the gateway's treatment of a supergraph that
   * carries no policy directives, unless an operator says otherwise).
   */
  readonly unclassified: Level | 'DENIED';
  /** Default masks by level (with the tags' masks, the strongest applies). */
  readonly levelMasks?: Readonly<Partial<Record<Level, MaskDefault>>>;
  /**
   * Tags that force a minimum level, e.g. `pii` fields are at least CONFIDENTIAL, and their default
   * mask (REDACT where the strategy does not fit the field's type).
   */
  readonly tags: Readonly<Record<string, { readonly minimumLevel: Level; readonly mask?: MaskDefault }>>;
  /**
   * How the profiles of each load are judged against the policy (see discovery.ts): the share of
   * values a detector must recognise for a column to hold personal data, the distinct values a HASH
   * mask needs, and whether findings refuse (`error`) or are reported (`warning`).
   */
  readonly discovery?: Partial<DiscoveryRules>;
}

/** Nobody meets it: an empty list of roles (the treatment of `unclassified: 'DENIED'`). */
export const NOBODY: Requirement = { authenticated: true, roles: [] };

/** How a field without a level is treated: its level, requirement and the rule that says so. */
export function unclassifiedTreatment(rules: GovernanceRules): { level: Level; requirement: Requirement; rule: string } {
  if (rules.unclassified === 'DENIED') return { level: 'RESTRICTED', requirement: NOBODY, rule: 'unclassified: denied to everyone' };
  return { level: rules.unclassified, requirement: rules.levels[rules.unclassified], rule: `unclassified: ${rules.unclassified} default` };
}

/** Returns its typed argument (the governance group edits a checked file). */
export function defineGovernanceRules(rules: GovernanceRules): GovernanceRules {
  return rules;
}

/** How the column profiles of each load are judged against the policy (applied by discovery.ts). */
export interface DiscoveryRules {
  /** A detector that recognises at least this share of a column's sampled values says the column holds such data (default 0.5). */
  readonly minimumShare: number;
  /** A HASH mask needs at least this many distinct values in its column (default 50). */
  readonly hashMinimumDistinct: number;
  /** Whether findings refuse a publish and a start (`error`, the default) or are reported (`warning`). */
  readonly severity: 'error' | 'warning';
}
