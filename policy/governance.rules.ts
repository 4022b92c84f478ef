/**
 * The global governance rules, owned by the governance group. Every domain inherits them; a domain's
 * policy directives may tighten the rule for a field, never loosen it (composition refuses a
 * subgraph that tries, naming the field and the rule).
 */
import { defineGovernanceRules } from './rules.js';

export const governanceRules = defineGovernanceRules({
  levels: {
    // Open data: anyone, including anonymous callers.
    PUBLIC: { authenticated: false },
    // Any signed-in principal of the organisation.
    INTERNAL: { authenticated: true },
    // Personal and commercially sensitive data: people whose job is analysis or stewardship.
    // Reads from this level on are audited as someone: the token must name its subject.
    CONFIDENTIAL: { authenticated: true, subject: true, roles: ['analyst', 'finance', 'support', 'steward', 'admin'] },
    // Special categories and identifying detail: stewards, and only for a declared legitimate purpose.
    RESTRICTED: {
      authenticated: true,
      subject: true,
      roles: ['steward', 'support', 'admin'],
      purposes: ['customer-support', 'fraud-prevention', 'legal-obligation'],
    },
  },
  unclassified: 'RESTRICTED',
  // No level masks by default: who may read each level is already narrow. A level mask (for example
  // CONFIDENTIAL: { strategy: 'REDACT', exemptRoles: [...] }) would apply to all its fields.
  levelMasks: {},
  tags: {
    // Personal data is pseudonymized (keyed hash: still countable and joinable) for analysts;
    // stewards, support and admins see it as it is.
    pii: { minimumLevel: 'CONFIDENTIAL', mask: { strategy: 'HASH', exemptRoles: ['steward', 'support', 'admin'] } },
    financial: { minimumLevel: 'INTERNAL' },
  },
  // Sensitive-data discovery, from each load's column profiles: a field whose column looks like
  // personal data (half its sampled values or more recognised by a detector) must be tagged pii;
  // a HASH mask needs 50 distinct values or more. Findings refuse a publish and a subgraph's start.
  discovery: { minimumShare: 0.5, hashMinimumDistinct: 50, severity: 'error' },
});
