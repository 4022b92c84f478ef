/**
 * The governance lint of a subgraph SDL, before it may be published:
 *
 * - it links the policy spec that `policy/` ships, and defines its directives as `policy/` does;
 * - every field is classified (on itself or its type);
 * - every `pii` field is masked or restricted to named roles or purposes;
 * - no policy directive loosens a global rule (the governance rules decide, as at start-up);
 * - every data-product type (an entity type a Query field serves, itself or as a connection's
 *   nodes) is documented and owned (`@dataProduct(name:, owner:)`).
 */
import {
  Kind,
  parse,
  print,
  visit,
  type ASTNode,
  type DirectiveDefinitionNode,
  type NameNode,
  type DocumentNode,
  type ObjectTypeDefinitionNode,
  type ObjectTypeExtensionNode,
  type TypeNode,
} from 'graphql';
import { POLICY_DIRECTIVES_SDL, POLICY_SPEC_URL } from '../../policy/directives.js';
import { placeholdersIn } from '../../policy/placeholders.js';
import { readPolicy } from '../../policy/policy-index.js';
import type { GovernanceRules } from '../../policy/rules.js';
import type { CheckCode } from './codes.js';

export interface LintFinding {
  readonly code: CheckCode;
  readonly coordinate: string | null;
  readonly message: string;
}

const POLICY_SPEC_PREFIX = POLICY_SPEC_URL.replace(/v[\d.]+$/, '');

/** A directive definition without its description, printed: what must match. */
function shape(definition: DirectiveDefinitionNode): string {
  return print(visit(definition, { enter: (node) => ('description' in node && node.description ? { ...node, description: undefined } : undefined) }));
}

const SHIPPED = new Map(
  parse(POLICY_DIRECTIVES_SDL)
    .definitions.filter((d): d is DirectiveDefinitionNode => d.kind === Kind.DIRECTIVE_DEFINITION)
    .map((d) => [d.name.value, shape(d)]),
);

function linkedPolicySpecs(document: DocumentNode): string[] {
  const urls: string[] = [];
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.SCHEMA_DEFINITION && definition.kind !== Kind.SCHEMA_EXTENSION) continue;
    for (const directive of definition.directives ?? []) {
      if (directive.name.value !== 'link') continue;
      const url = directive.arguments?.find((arg) => arg.name.value === 'url')?.value;
      if (url?.kind === Kind.STRING && url.value.startsWith(POLICY_SPEC_PREFIX)) urls.push(url.value);
    }
  }
  return urls;
}

type ObjectNode = ObjectTypeDefinitionNode | ObjectTypeExtensionNode;

/** The entity types that Query fields serve, directly or as a connection's `nodes`. */
function dataProductTypes(objects: ReadonlyMap<string, ObjectNode>): string[] {
  const found = new Set<string>();
  const unwrap = (type: TypeNode): string => print(type).replace(/[[\]!]/g, '');
  for (const field of objects.get('Query')?.fields ?? []) {
    let name = unwrap(field.type);
    const nodes = objects.get(name)?.fields?.find((f) => f.name.value === 'nodes');
    if (name.endsWith('Connection') && nodes) name = unwrap(nodes.type);
    const object = objects.get(name);
    if (object?.directives?.some((d) => d.name.value === 'key')) found.add(name);
  }
  return [...found].sort();
}

/** The kinds of node that name a part of a schema coordinate (`Type.field`). */
const COORDINATE_KINDS = new Set<string>([Kind.OBJECT_TYPE_DEFINITION, Kind.OBJECT_TYPE_EXTENSION, Kind.INTERFACE_TYPE_DEFINITION, Kind.INPUT_OBJECT_TYPE_DEFINITION, Kind.ENUM_TYPE_DEFINITION, Kind.FIELD_DEFINITION]);
const coordinatePart = (node: ASTNode): string | null => (COORDINATE_KINDS.has(node.kind) ? (node as { readonly name: NameNode }).name.value : null);

export function lintSubgraph(document: DocumentNode, rules: GovernanceRules): LintFinding[] {
  const findings: LintFinding[] = [];
  const add = (code: CheckCode, coordinate: string | null, message: string) => findings.push({ code, coordinate, message });

  const specs = linkedPolicySpecs(document);
  if (specs.length === 0) {
    add('GOVERNANCE_POLICY_SPEC_MISMATCH', null, `The subgraph does not @link the policy spec ${POLICY_SPEC_URL}.`);
  }
  for (const url of specs.filter((u) => u !== POLICY_SPEC_URL)) {
    add('GOVERNANCE_POLICY_SPEC_MISMATCH', null, `The subgraph links ${url}; policy/ ships ${POLICY_SPEC_URL}.`);
  }
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.DIRECTIVE_DEFINITION) continue;
    const shipped = SHIPPED.get(definition.name.value);
    if (shipped && shape(definition) !== shipped) {
      add('GOVERNANCE_POLICY_SPEC_MISMATCH', `@${definition.name.value}`, `@${definition.name.value} is defined differently from ${POLICY_SPEC_URL}: expected \`${shipped}\`.`);
    }
  }

  // Descriptions and directive arguments a scaffold left as `<fill in: …>`.
  const path: string[] = [];
  visit(document, {
    enter(node) {
      const name = coordinatePart(node);
      if (name !== null) path.push(name);
      if (node.kind === Kind.STRING) {
        for (const found of placeholdersIn(node.value)) add('GOVERNANCE_PLACEHOLDER', path.join('.') || null, `"${found}" is still in the SDL.`);
      }
    },
    leave(node) {
      if (coordinatePart(node) !== null) path.pop();
    },
  });

  const policy = readPolicy(document, rules);
  for (const violation of policy.violations) add('GOVERNANCE_RULE_VIOLATION', violation.coordinate, violation.message);
  for (const field of policy.fields.values()) {
    if (field.rule.startsWith('unclassified')) {
      add('GOVERNANCE_UNCLASSIFIED', field.coordinate, `${field.coordinate} is not classified: add @classify to the field or its type.`);
    }
    const restricted = Boolean(field.requirement.roles || field.requirement.purposes);
    if (field.tags.includes('pii') && !field.mask && !restricted) {
      add('GOVERNANCE_PII_UNPROTECTED', field.coordinate, `${field.coordinate} is tagged pii but neither masked nor restricted to roles or purposes.`);
    }
  }

  const objects = new Map<string, ObjectNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.OBJECT_TYPE_DEFINITION || definition.kind === Kind.OBJECT_TYPE_EXTENSION) {
      const known = objects.get(definition.name.value);
      objects.set(definition.name.value, known ? { ...known, fields: [...(known.fields ?? []), ...(definition.fields ?? [])] } : definition);
    }
  }
  for (const name of dataProductTypes(objects)) {
    const object = objects.get(name)!;
    if (!object.directives?.some((d) => d.name.value === 'dataProduct')) {
      add('GOVERNANCE_DATA_PRODUCT_UNOWNED', name, `${name} is served from Query as an entity but has no @dataProduct(name:, owner:).`);
    }
    if (!('description' in object) || !object.description?.value.trim()) {
      add('GOVERNANCE_DATA_PRODUCT_UNDOCUMENTED', name, `${name} is a data product without a description.`);
    }
  }
  return findings;
}
