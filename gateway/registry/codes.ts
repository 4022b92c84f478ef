/**
 * The registry's code catalogue: what a check reports (each finding has one of these codes) and
 * why a registry command fails. gateway/registry/README.md's tables are generated from here (`npm run docs:errors`).
 */

export type Severity = 'error' | 'warning' | 'info';

export const CHECK_CODES = {
  SDL_INVALID: { severity: 'error', description: 'The subgraph SDL is not valid GraphQL; the message gives the line and column.' },
  COMPOSITION_FAILED: {
    severity: 'error',
    description: 'The subgraph does not compose with the others; the composition error code and message follow.',
  },
  BREAKING_CHANGE_IN_USE: {
    severity: 'error',
    description:
      'A breaking change (removed or retyped field, new required argument, removed enum value, tightened input) touches a coordinate that a client used or registered; the clients are named.',
  },
  BREAKING_CHANGE_UNUSED: {
    severity: 'warning',
    description: 'A breaking change that no recorded operation and no registered document uses: allowed.',
  },
  DANGEROUS_CHANGE: { severity: 'warning', description: 'A change that may alter what existing clients receive (e.g. a new enum value, a changed default).' },
  SAFE_CHANGE: { severity: 'info', description: 'A change no client can notice (e.g. a new field or type).' },
  UNCHANGED: { severity: 'info', description: 'The SDL, URL and data product documents are those of the serving version: nothing to publish.' },
  GOVERNANCE_UNCLASSIFIED: {
    severity: 'error',
    description: 'A field has no `@classify`, on itself or its type: every field must be classified.',
  },
  GOVERNANCE_PII_UNPROTECTED: {
    severity: 'error',
    description: 'A field tagged `pii` is neither masked nor restricted to named roles or purposes.',
  },
  GOVERNANCE_RULE_VIOLATION: {
    severity: 'error',
    description: 'A policy directive would loosen a global rule, names an unknown level or strategy, or masks a type it cannot.',
  },
  GOVERNANCE_DATA_PRODUCT_UNOWNED: {
    severity: 'error',
    description: 'An entity type served from a Query field has no `@dataProduct(name:, owner:)`.',
  },
  GOVERNANCE_DATA_PRODUCT_UNDOCUMENTED: {
    severity: 'error',
    description: 'A data-product type has no description.',
  },
  HARMONIZATION_RULE_VIOLATION: {
    severity: 'error',
    description:
      'A data product breaks a harmonization rule of the governance group (policy/harmonization.rules.ts: required metadata, address and field name conventions, statuses, owners, SLA); the product and the rule are named.',
  },
  CONTRACT_BREAKING_CHANGE: {
    severity: 'error',
    description:
      'A data contract changes in a way its consumers notice (a product or column removed, a column retyped or made optional, an SLA property removed or loosened) without raising the product\'s major version.',
  },
  CONTRACT_BREAKING_CHANGE_ANNOUNCED: {
    severity: 'warning',
    description: 'A breaking contract change that the product announces by raising its major version: allowed.',
  },
  CONTRACT_SAFE_CHANGE: { severity: 'info', description: 'A contract change no consumer can be hurt by (a column added, an SLA tightened).' },
  GOVERNANCE_PII_UNDECLARED: {
    severity: 'error',
    description:
      'A field is not tagged `pii`, but the profile of its column (made at the load) says that a share of its values at or above the governance rules\' `discovery.minimumShare` looks like personal data; the field, the detector and the share are named. Severity follows `discovery.severity`.',
  },
  GOVERNANCE_HASH_LOW_CARDINALITY: {
    severity: 'error',
    description:
      'A field is masked (or to be masked, in shadow) with HASH, but its column holds fewer distinct values than `discovery.hashMinimumDistinct` (default 50), and they repeat: a hash of so few values is decoded by their frequencies. Use REDACT or a generalization. Severity follows `discovery.severity`.',
  },
  GOVERNANCE_PLACEHOLDER: {
    severity: 'error',
    description:
      'The SDL or a data product document still holds a `<fill in: …>` placeholder that `npm run domain -- new` wrote for what it could not infer (the product\'s owner, its purpose); each is named with where it is. Write the real value in the domain\'s `index.ts` or `schema.graphql`.',
  },
  GOVERNANCE_POLICY_SPEC_MISMATCH: {
    severity: 'error',
    description: 'The subgraph links another version of the policy spec than `policy/` ships, or redefines its directives differently.',
  },
} as const satisfies Record<string, { severity: Severity; description: string }>;

export type CheckCode = keyof typeof CHECK_CODES;

export const REGISTRY_ERRORS = {
  REGISTRY_USAGE: 'The command line is wrong (unknown command or option, missing argument); the usage is printed.',
  REGISTRY_INVALID_NAME: 'A subgraph or client name has characters a name may not have.',
  REGISTRY_INVALID_URL: 'The routing URL is not an http(s) URL, or carries credentials.',
  REGISTRY_SDL_UNAVAILABLE: 'The SDL could not be read: the file is missing, or the running subgraph did not answer `_service { sdl }`.',
  REGISTRY_DOCUMENTS_UNAVAILABLE: 'The data product documents could not be read: the `--documents` folder is missing or holds a file that is not an ODPS/ODCS pair, or the running subgraph\'s `/catalog` failed.',
  REGISTRY_UNKNOWN_SUBGRAPH: 'No version of that subgraph was ever published.',
  REGISTRY_UNKNOWN_VERSION: 'That subgraph has no such version.',
  REGISTRY_INVALID_DOCUMENT: 'A client document does not parse or does not validate against the current API schema.',
  REGISTRY_UNAVAILABLE: 'The registry store (directory or PostgreSQL) could not be read or written.',
  REGISTRY_UNAUTHENTICATED: 'The registry API was called without a token, or with one the mesh does not trust (expired, forged, another issuer); HTTP 401.',
  REGISTRY_FORBIDDEN: 'The token\'s teams do not own the subgraph (or client) it writes, or it names no team; the owner is named. HTTP 403.',
  REGISTRY_LAST_SUBGRAPH: 'The supergraph\'s only subgraph cannot be removed.',
} as const;

export type RegistryErrorCode = keyof typeof REGISTRY_ERRORS;

export class RegistryError extends Error {
  override name = 'RegistryError';
  constructor(
    readonly code: RegistryErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The tables of the two catalogues (gateway/registry/README.md). */
export function renderCheckCodeTable(): string {
  return [
    '| code | severity | meaning |',
    '| --- | --- | --- |',
    ...Object.entries(CHECK_CODES).map(([code, spec]) => `| \`${code}\` | ${spec.severity} | ${spec.description} |`),
    ...Object.entries(REGISTRY_ERRORS).map(([code, description]) => `| \`${code}\` | command fails (exit 2) | ${description} |`),
  ].join('\n');
}
