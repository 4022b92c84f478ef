import { parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { RequestPolicy } from './decide.js';
import { POLICY_DIRECTIVES_SDL } from './directives.js';
import { governanceRules } from './governance.rules.js';
import { readPolicy, type PolicyIndex } from './policy-index.js';
import { ANONYMOUS } from './principal.js';

const index = readPolicy(
  parse(`${POLICY_DIRECTIVES_SDL}
    type Customer @classify(level: "INTERNAL") @rowPolicy(column: "region", claim: "regions", bypassRoles: ["steward"]) {
      name: String @classify(level: "CONFIDENTIAL", tags: ["pii"])
    }`),
  governanceRules,
);

function counting(inner: PolicyIndex): PolicyIndex & { calls: number } {
  const counted = { ...inner, calls: 0 };
  counted.field = (type, field) => {
    counted.calls += 1;
    return inner.field(type, field);
  };
  return counted;
}

describe('a request policy', () => {
  it('decides each field once per request, however many rows ask', () => {
    const policyIndex = counting(index);
    const policy = new RequestPolicy(policyIndex, { ...ANONYMOUS, anonymous: false, subject: 'ana', roles: ['analyst'] });
    for (let row = 0; row < 10_000; row++) expect(policy.field('Customer', 'name').allowed).toBe(true);
    expect(policyIndex.calls).toBe(1);
  });

  it('turns row policies into filters by claim, bypass role, or no rows at all', () => {
    const analyst = new RequestPolicy(index, { ...ANONYMOUS, anonymous: false, roles: ['analyst'], attributes: { regions: ['EMEA', 'APAC'] } });
    expect(analyst.rows('Customer')).toEqual({ kind: 'match', column: 'region', values: ['EMEA', 'APAC'] });
    expect(new RequestPolicy(index, { ...ANONYMOUS, anonymous: false, roles: ['steward'] }).rows('Customer')).toEqual({ kind: 'all' });
    expect(new RequestPolicy(index, ANONYMOUS).rows('Customer')).toEqual({ kind: 'match', column: 'region', values: [] });
    expect(new RequestPolicy(index, ANONYMOUS).rows('Product')).toEqual({ kind: 'all' });
  });
});
