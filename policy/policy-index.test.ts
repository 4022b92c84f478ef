import { parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { decide } from './decide.js';
import { POLICY_DIRECTIVES_SDL } from './directives.js';
import { governanceRules } from './governance.rules.js';
import { readPolicy } from './policy-index.js';
import { ANONYMOUS, type Principal } from './principal.js';

function policyOf(sdl: string) {
  return readPolicy(parse(`${POLICY_DIRECTIVES_SDL}\n${sdl}`), governanceRules);
}

function principal(overrides: Partial<Principal>): Principal {
  return { ...ANONYMOUS, anonymous: false, subject: 'p', ...overrides };
}

const analyst = principal({ roles: ['analyst'], attributes: { regions: ['EMEA'] } });
const steward = principal({ roles: ['steward'], purpose: 'customer-support' });
const stewardWithoutPurpose = principal({ roles: ['steward'] });
const employee = principal({ roles: ['viewer'] });
const scoped = principal({ roles: ['analyst'], scopes: ['read:customers', 'read:pii'] });

describe('effective field policies', () => {
  const index = policyOf(`
    type Customer @classify(level: "INTERNAL") @rowPolicy(column: "region", claim: "regions", bypassRoles: ["steward"]) {
      id: ID!
      name: String @classify(level: "CONFIDENTIAL", tags: ["pii"])
      birthDate: String @classify(level: "RESTRICTED", tags: ["pii"])
      email: String @classify(level: "CONFIDENTIAL", tags: ["pii"]) @requireScopes(anyOf: [["read:pii", "read:customers"]])
      ltv: Float @classify(level: "CONFIDENTIAL") @requireRoles(anyOf: ["finance"])
      segment: String
    }
    type Loose { notes: String }
    type Product @classify(level: "PUBLIC") { sku: ID! }
  `);

  it('comply with the governance rules', () => {
    expect(index.violations).toEqual([]);
  });

  // (field, principal) → allowed, or the code and the missing part of the requirement
  const cases: [string, string, Principal, true | { code: string; missing: object }][] = [
    ['Product', 'sku', ANONYMOUS, true],
    ['Customer', 'id', ANONYMOUS, { code: 'UNAUTHENTICATED', missing: { authenticated: true } }],
    ['Customer', 'id', employee, true],
    ['Customer', 'name', employee, { code: 'FORBIDDEN', missing: { roles: ['analyst', 'finance', 'support', 'steward', 'admin'] } }],
    ['Customer', 'name', analyst, true],
    ['Customer', 'birthDate', analyst, { code: 'FORBIDDEN', missing: { roles: ['steward', 'support', 'admin'], purposes: ['customer-support', 'fraud-prevention', 'legal-obligation'] } }],
    ['Customer', 'birthDate', stewardWithoutPurpose, { code: 'FORBIDDEN', missing: { purposes: ['customer-support', 'fraud-prevention', 'legal-obligation'] } }],
    ['Customer', 'birthDate', steward, true],
    ['Customer', 'email', analyst, { code: 'FORBIDDEN', missing: { scopes: [['read:pii', 'read:customers']] } }],
    ['Customer', 'email', scoped, true],
    ['Customer', 'ltv', analyst, { code: 'FORBIDDEN', missing: { roles: ['finance'] } }],
    ['Customer', 'ltv', principal({ roles: ['finance'] }), true],
    // No classification: the strictest default (deny by default).
    ['Customer', 'segment', employee, true], // a field without a level takes its type's
    ['Loose', 'notes', analyst, { code: 'FORBIDDEN', missing: { roles: ['steward', 'support', 'admin'], purposes: ['customer-support', 'fraud-prevention', 'legal-obligation'] } }],
    ['Loose', 'notes', steward, true],
    ['Unknown', 'field', steward, true],
    ['Unknown', 'field', analyst, { code: 'FORBIDDEN', missing: { roles: ['steward', 'support', 'admin'], purposes: ['customer-support', 'fraud-prevention', 'legal-obligation'] } }],
  ];

  it.each(cases)('%s.%s', (type, field, who, expected) => {
    const decision = decide(who, index.field(type, field));
    if (expected === true) expect(decision.allowed).toBe(true);
    else expect(decision).toMatchObject({ allowed: false, ...expected });
  });

  it('name the rules that decided', () => {
    expect(index.field('Customer', 'ltv').rule).toBe('CONFIDENTIAL default; @requireRoles on Customer.ltv');
    expect(index.field('Loose', 'notes')).toMatchObject({ level: 'RESTRICTED', rule: 'unclassified: RESTRICTED default' });
    expect(index.field('Customer', 'id')).toMatchObject({ level: 'INTERNAL', tags: [] });
  });

  it('read row policies and leave federation machinery open', () => {
    expect(index.rowPolicy('Customer')).toEqual({ column: 'region', claim: 'regions', bypassRoles: ['steward'] });
    expect(index.rowPolicy('Product')).toBeNull();
    expect(decide(ANONYMOUS, index.field('Query', '_service')).allowed).toBe(true);
  });
});

describe('domains may tighten a global rule, never loosen it', () => {
  const cases: [string, string, RegExp][] = [
    ['a role the level does not allow', 'type T { f: String @classify(level: "CONFIDENTIAL") @requireRoles(anyOf: ["analyst", "intern"]) }', /T\.f: @requireRoles\(anyOf: \[analyst, intern\]\) loosens the global CONFIDENTIAL rule \(roles any of .*; intern is not among them\)/],
    ['a purpose the level does not allow', 'type T { f: String @classify(level: "RESTRICTED") @requirePurpose(anyOf: ["marketing"]) }', /T\.f: .*loosens the global RESTRICTED rule .*marketing is not among them/],
    ['an empty role list', 'type T { f: String @classify(level: "INTERNAL") @requireRoles(anyOf: []) }', /T\.f: @requireRoles\(anyOf: \[\]\) loosens/],
    ['an empty scope group', 'type T { f: String @classify(level: "INTERNAL") @requireScopes(anyOf: [[]]) }', /T\.f: @requireScopes with an empty group loosens/],
    ['a pii field below CONFIDENTIAL', 'type T { f: String @classify(level: "INTERNAL", tags: ["pii"]) }', /T\.f: tagged "pii" but classified INTERNAL, below the global minimum CONFIDENTIAL/],
    ['a pii type below CONFIDENTIAL', 'type T @classify(level: "PUBLIC", tags: ["pii"]) { f: String }', /T\.f: tagged "pii" but classified PUBLIC/],
    ['an unknown level', 'type T { f: String @classify(level: "SECRET") }', /T\.f: unknown classification level "SECRET"/],
  ];

  it.each(cases)('refuses %s, naming the field and the rule', (_what, sdl, message) => {
    const { violations } = policyOf(sdl);
    expect(violations.map((v) => v.message).join('\n')).toMatch(message);
  });

  it('accepts a stricter subset of roles and purposes, and requirements on open fields', () => {
    const { violations } = policyOf(`
      type T {
        a: String @classify(level: "CONFIDENTIAL") @requireRoles(anyOf: ["finance"])
        b: String @classify(level: "RESTRICTED") @requirePurpose(anyOf: ["legal-obligation"])
        c: String @classify(level: "PUBLIC") @requireRoles(anyOf: ["anyone-at-all"])
        d: String @classify(level: "INTERNAL") @requireScopes(anyOf: [["read:x"], ["read:y", "read:z"]])
      }`);
    expect(violations).toEqual([]);
  });
});
