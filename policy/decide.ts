/**
 * The decision engine: may this principal read this field, and which rows of this type?
 *
 * A request's decisions are computed once per field and cached (`RequestPolicy`), never per row.
 */
import { codedError } from './errors.js';
import type { FieldPolicy, PolicyIndex } from './policy-index.js';
import type { Principal } from './principal.js';
import type { Requirement } from './rules.js';

export type Decision =
  | { readonly allowed: true; readonly policy: FieldPolicy }
  | {
      readonly allowed: false;
      readonly policy: FieldPolicy;
      readonly code: 'UNAUTHENTICATED' | 'FORBIDDEN';
      /** The parts of the requirement the principal does not meet. */
      readonly missing: Partial<Requirement>;
    };

export function decide(principal: Principal, policy: FieldPolicy): Decision {
  const { requirement } = policy;
  if (requirement.authenticated && principal.anonymous) {
    return { allowed: false, policy, code: 'UNAUTHENTICATED', missing: { authenticated: true } };
  }
  const missing: { -readonly [K in keyof Requirement]?: Requirement[K] } = {};
  if (requirement.roles && !requirement.roles.some((role) => principal.roles.includes(role))) missing.roles = requirement.roles;
  if (requirement.scopes && !requirement.scopes.some((group) => group.every((scope) => principal.scopes.includes(scope)))) {
    missing.scopes = requirement.scopes;
  }
  if (requirement.purposes && !(principal.purpose !== null && requirement.purposes.includes(principal.purpose))) {
    missing.purposes = requirement.purposes;
  }
  if (Object.keys(missing).length === 0) return { allowed: true, policy };
  return { allowed: false, policy, code: 'FORBIDDEN', missing };
}

function describe(missing: Partial<Requirement>): string {
  const parts: string[] = [];
  if (missing.authenticated) parts.push('a signed-in principal (send a bearer token)');
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

/** One request's decisions, computed once per field (or type) and reused for every row. */
export class RequestPolicy {
  readonly #fields = new Map<string, Decision>();
  readonly #rows = new Map<string, RowFilter>();

  constructor(
    readonly index: PolicyIndex,
    readonly principal: Principal,
  ) {}

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
