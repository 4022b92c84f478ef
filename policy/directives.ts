/**
 * The policy directives, as SDL constants, under one versioned spec URL.
 *
 * A subgraph links the spec and composes its directives, so that they reach the supergraph SDL and
 * the gateway can enforce them before planning:
 *
 *   extend schema
 *     @link(url: "https://specs.datamesh.dev/policy/v1.0", import: ["@classify", …])
 *     @composeDirective(name: "@classify") …
 *
 * `policySchemaExtension` writes that header; `POLICY_DIRECTIVES_SDL` holds the definitions every
 * subgraph includes. Arguments are strings (not enums), so that the directives compose without
 * adding types to the API schema; the governance rules validate their values.
 */

/** The policy spec: its identity and version (bump the version on an incompatible change). */
export const POLICY_SPEC_URL = 'https://specs.datamesh.dev/policy/v1.3';

export const POLICY_DIRECTIVE_NAMES = ['classify', 'requireRoles', 'requireScopes', 'requirePurpose', 'rowPolicy', 'mask', 'dataProduct'] as const;
export type PolicyDirectiveName = (typeof POLICY_DIRECTIVE_NAMES)[number];

export const POLICY_DIRECTIVES_SDL = /* GraphQL */ `
"""
How sensitive a field (or every field of a type) is: PUBLIC, INTERNAL, CONFIDENTIAL or RESTRICTED,
with tags such as "pii". The governance rules give each level its default requirements; a field
without a level gets the strictest default.
"""
directive @classify(level: String!, tags: [String!]) on FIELD_DEFINITION | OBJECT

"""
The principal must hold at least one of these roles. With \`shadow: true\` the rule is evaluated and
audited ("would deny") but not enforced, to roll a new rule out safely.
"""
directive @requireRoles(anyOf: [String!]!, shadow: Boolean) on FIELD_DEFINITION | OBJECT

"The principal must hold every scope of at least one of these groups (\`shadow\`: audit only)."
directive @requireScopes(anyOf: [[String!]!]!, shadow: Boolean) on FIELD_DEFINITION | OBJECT

"The principal's declared purpose of use must be one of these: GDPR purpose limitation (\`shadow\`: audit only)."
directive @requirePurpose(anyOf: [String!]!, shadow: Boolean) on FIELD_DEFINITION | OBJECT

"""
Masks the field's value in the subgraph, for every principal without one of the exempt roles or
purposes: REDACT, NULLIFY, DEFAULT, HASH (keyed HMAC-SHA256), EMAIL (keeps the domain), FIRST4,
LAST4, DATE_YEAR, ROUND or BUCKET (to a multiple of \`size\`). The strategy must fit the field's type.
With \`shadow: true\` it is evaluated and audited ("would mask") but not applied. HASH uses a key of
each field's own, so that equal values in two fields hash differently; fields that must be joinable
on their hashes name one \`joinGroup\` on purpose.
"""
directive @mask(
  strategy: String!
  size: Float
  joinGroup: String
  exemptRoles: [String!]
  exemptPurposes: [String!]
  shadow: Boolean
) on FIELD_DEFINITION

"""
Rows of this type are visible only where \`column\` holds one of the values of the principal's
\`claim\` (for example region in "regions"); principals with a bypass role see every row.
"""
directive @rowPolicy(column: String!, claim: String!, bypassRoles: [String!]) on OBJECT

"""
This type is a data product: its catalogue \`name\` and the team that \`owner\`s it (who answers for its
meaning, quality and access). The registry requires it, and a description, on every entity type a
subgraph serves from its Query fields.
"""
directive @dataProduct(name: String!, owner: String!) on OBJECT
`;

/** The schema extension that links the policy spec and composes its directives into the supergraph. */
export function policySchemaExtension(federationImports: readonly string[]): string {
  const federation = [...new Set([...federationImports, '@composeDirective'])].map((name) => `"${name}"`).join(', ');
  const policy = POLICY_DIRECTIVE_NAMES.map((name) => `"@${name}"`).join(', ');
  const compose = POLICY_DIRECTIVE_NAMES.map((name) => `@composeDirective(name: "@${name}")`).join(' ');
  return `extend schema
  @link(url: "https://specs.apollo.dev/federation/v2.9", import: [${federation}])
  @link(url: "${POLICY_SPEC_URL}", import: [${policy}])
  ${compose}
${POLICY_DIRECTIVES_SDL}`;
}
