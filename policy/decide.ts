/**
 * The decision engine: may this principal read this field, and which rows of this type?
 *
 * A request's decisions are computed once per field and cached (`RequestPolicy`), never per row.
 */
import { codedError } from './errors.js';
import { createMasker, scopedHashKey, type Masker } from './masking.js';
import type { FieldPolicy, MaskRule, PolicyIndex } from './policy-index.js';
import type { Principal } from './principal.js';
import type { Requirement } from './rules.js';

export type Decision =
  | {
      readonly allowed: true;
      readonly policy: FieldPolicy;
      /** The mask this principal gets (null: the value as it is). */
      readonly mask: MaskRule | null;
      /** Shadow rules that would deny or mask, were they enforced (audited, not applied). */
      readonly shadow: { readonly wouldDeny: Partial<Requirement> | null; readonly wouldMask: MaskRule | null };
    }
  | {
      readonly allowed: false;
      readonly policy: FieldPolicy;
      readonly code: 'UNAUTHENTICATED' | 'FORBIDDEN';
      /** The parts of the requirement the principal does not meet. */
      readonly missing: Partial<Requirement>;
    };

/** The parts of a requirement a principal does not meet (empty: it meets them all). */
function missingOf(principal: Principal, requirement: Partial<Requirement>): Partial<Requirement> {
  const missing: { -readonly [K in keyof Requirement]?: Requirement[K] } = {};
  if (requirement.authenticated && principal.anonymous) missing.authenticated = true;
  if (requirement.subject && !principal.anonymous && !principal.subject) missing.subject = true;
  if (requirement.roles && !requirement.roles.some((role) => principal.roles.includes(role))) missing.roles = requirement.roles;
  if (requirement.scopes && !requirement.scopes.some((group) => group.every((scope) => principal.scopes.includes(scope)))) {
    missing.scopes = requirement.scopes;
  }
  if (requirement.purposes && !(principal.purpose !== null && requirement.purposes.includes(principal.purpose))) {
    missing.purposes = requirement.purposes;
  }
  return missing;
}

function exempt(principal: Principal, mask: MaskRule): boolean {
  return (
    mask.exemptRoles.some((role) => principal.roles.includes(role)) ||
    (principal.purpose !== null && mask.exemptPurposes.includes(principal.purpose))
  );
}

export function decide(principal: Principal, policy: FieldPolicy): Decision {
  const { requirement } = policy;
  if (requirement.authenticated && principal.anonymous) {
    return { allowed: false, policy, code: 'UNAUTHENTICATED', missing: { authenticated: true } };
  }
  const missing = missingOf(principal, requirement);
  if (Object.keys(missing).length > 0) return { allowed: false, policy, code: 'FORBIDDEN', missing };
  const mask = policy.mask && !exempt(principal, policy.mask) ? policy.mask : null;
  const shadowMissing = policy.shadow.requirement ? missingOf(principal, policy.shadow.requirement) : {};
  const shadowMask = policy.shadow.mask && !mask && !exempt(principal, policy.shadow.mask) ? policy.shadow.mask : null;
  return {
    allowed: true,
    policy,
    mask,
    shadow: { wouldDeny: Object.keys(shadowMissing).length > 0 ? shadowMissing : null, wouldMask: shadowMask },
  };
}

function describe(missing: Partial<Requirement>): string {
  const parts: string[] = [];
  if (missing.authenticated) parts.push('a signed-in principal (send a bearer token)');
  if (missing.subject) parts.push('a token that names its subject (sub), so that the read is audited as someone');
  if (missing.roles) parts.push(`one of the roles ${missing.roles.join(', ')}`);
  if (missing.scopes) parts.push(`the scopes ${missing.scopes.map((group) => group.join(' + ')).join(' or ')}`);
  if (missing.purposes) parts.push(`a declared purpose among ${missing.purposes.join(', ')}`);
  return parts.join('; ');
}

/** The error for a denied field: the code, the field, the missing requirement and the rule. */
export function deniedError(decision: Extract<Decision, { allowed: false }>) {
  const { policy, code, missing } = decision;
  return codedError(code, `Not allowed to read ${policy.coordinate}: it requires ${describe(missing)} (${policy.rule}).`, {
    coordinate: policy.coordinate,
    level: policy.level,
    rule: policy.rule,
    missing,
  });
}

/** Which rows of a type a principal may see. */
export type RowFilter =
  | { readonly kind: 'all' }
  | { readonly kind: 'match'; readonly column: string; readonly values: readonly string[] };

/**
 * A principal's decisions, maskers and row filters, prepared once per field (or type) and reused for
 * every row: of one request, or of every request of the same principal (see subgraph-server.ts).
 */
export class RequestPolicy {
  readonly #fields = new Map<string, Decision>();
  readonly #rows = new Map<string, RowFilter>();
  readonly #maskers = new Map<string, Masker | null>();

  constructor(
    readonly index: PolicyIndex,
    readonly principal: Principal,
    /** The HMAC key of the HASH strategy. */
    readonly hashKey: string = '',
  ) {}

  /** The function that masks this field's values for this principal, or null (no mask). */
  masker(typeName: string, fieldName: string): Masker | null {
    const key = `${typeName}.${fieldName}`;
    let masker = this.#maskers.get(key);
    if (masker === undefined) {
      const decision = this.field(typeName, fieldName);
      const mask = decision.allowed ? decision.mask : null;
      masker = mask
        ? createMasker({
            strategy: mask.strategy,
            type: decision.policy.type,
            hashKey: scopedHashKey(this.hashKey, { coordinate: key, joinGroup: mask.joinGroup }),
            ...(mask.size ? { size: mask.size } : {}),
          })
        : null;
      this.#maskers.set(key, masker);
    }
    return masker;
  }

  field(typeName: string, fieldName: string): Decision {
    const key = `${typeName}.${fieldName}`;
    let decision = this.#fields.get(key);
    if (!decision) {
      decision = decide(this.principal, this.index.field(typeName, fieldName));
      this.#fields.set(key, decision);
    }
    return decision;
  }

  rows(typeName: string): RowFilter {
    let filter = this.#rows.get(typeName);
    if (!filter) {
      const policy = this.index.rowPolicy(typeName);
      if (!policy || policy.bypassRoles.some((role) => this.principal.roles.includes(role))) filter = { kind: 'all' };
      else filter = { kind: 'match', column: policy.column, values: this.principal.attributes[policy.claim] ?? [] };
      this.#rows.set(typeName, filter);
    }
    return filter;
  }
}
