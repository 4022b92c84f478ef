/**
 * What the IDE's schema documentation says about policy, and the example operations it opens with.
 *
 * Every field of the served API schema gets, after its own description, its classification, who
 * may read it, and how it is masked (and from which rule), so that an analyst reads the rules where
 * they explore the data. The examples are one operation per data product (`@dataProduct` in the
 * supergraph), on its Query list field.
 */
import {
  getNamedType,
  getNullableType,
  isEnumType,
  isListType,
  isObjectType,
  isScalarType,
  Kind,
  parse,
  valueFromASTUntyped,
  type GraphQLField,
  type GraphQLObjectType,
  type GraphQLSchema,
} from 'graphql';
import type { FieldPolicy, PolicyIndex } from '../../policy/policy-index.js';
import type { Requirement } from '../../policy/rules.js';

/** Who a requirement lets read, in words: `any signed-in principal`, `roles steward, admin`, … */
export function readableBy(requirement: Requirement): string {
  const parts: string[] = [];
  if (requirement.roles) parts.push(requirement.roles.length === 0 ? 'nobody' : `roles ${requirement.roles.join(', ')}`);
  if (requirement.scopes) parts.push(`scopes ${requirement.scopes.map((group) => group.join(' + ')).join(' or ')}`);
  if (requirement.purposes) parts.push(`a declared purpose among ${requirement.purposes.join(', ')}`);
  if (parts.length > 0) return parts.join('; ');
  return requirement.authenticated ? 'any signed-in principal' : 'anyone, signed in or not';
}

/** The policy paragraph of a field's documentation. */
export function policyNote(policy: FieldPolicy): string {
  const lines = [`Policy: ${policy.level}${policy.tags.length > 0 ? ` (${policy.tags.join(', ')})` : ''}, readable by ${readableBy(policy.requirement)}.`];
  if (policy.mask) {
    const exempt = [...policy.mask.exemptRoles, ...policy.mask.exemptPurposes.map((p) => `purpose ${p}`)];
    lines.push(`Masked (${policy.mask.strategy}) ${exempt.length > 0 ? `except for ${exempt.join(', ')}` : 'for everyone'}.`);
  }
  if (policy.shadow.mask) lines.push(`Rolling out (shadow, not yet applied): ${policy.shadow.mask.strategy} mask.`);
  lines.push(`Rule: ${policy.rule}.`);
  return lines.join(' ');
}

/** Appends each field's policy to its description, in place (the schema the gateway serves). */
export function annotatePolicy(schema: GraphQLSchema, policy: PolicyIndex): void {
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__')) continue;
    for (const field of Object.values(type.getFields())) {
      const note = policyNote(policy.field(type.name, field.name));
      field.description = field.description ? `${field.description}\n\n${note}` : note;
    }
  }
}

export interface ExampleOperation {
  /** The data product's name. */
  readonly name: string;
  /** The type that serves it. */
  readonly type: string;
  readonly query: string;
}

interface DataProduct {
  readonly type: string;
  readonly name: string;
  readonly owner: string;
}

function dataProductsOf(supergraphSdl: string): DataProduct[] {
  const products: DataProduct[] = [];
  for (const definition of parse(supergraphSdl).definitions) {
    if (definition.kind !== Kind.OBJECT_TYPE_DEFINITION) continue;
    const directive = definition.directives?.find((d) => d.name.value === 'dataProduct');
    if (!directive) continue;
    const args = Object.fromEntries((directive.arguments ?? []).map((a) => [a.name.value, valueFromASTUntyped(a.value)]));
    products.push({ type: definition.name.value, name: String(args.name), owner: String(args.owner) });
  }
  return products;
}

/** The scalar and enum fields of a type that take no required argument: its columns. */
function columnsOf(type: GraphQLObjectType): string[] {
  return Object.values(type.getFields())
    .filter((field: GraphQLField<unknown, unknown>) => {
      const named = getNamedType(field.type);
      return (isScalarType(named) || isEnumType(named)) && !isListType(getNullableType(field.type)) && field.args.every((a) => a.type.toString().slice(-1) !== '!');
    })
    .map((field) => field.name)
    .slice(0, 8);
}

const pascal = (name: string) => name.replace(/(^|[_-])([a-z])/g, (_m, _s, c: string) => c.toUpperCase());

/** One example operation per data product, on the Query field that lists it. */
export function exampleOperations(schema: GraphQLSchema, supergraphSdl: string): ExampleOperation[] {
  const query = schema.getQueryType();
  if (!query) return [];
  const examples: ExampleOperation[] = [];
  for (const product of dataProductsOf(supergraphSdl)) {
    const type = schema.getType(product.type);
    if (!isObjectType(type)) continue;
    const columns = columnsOf(type).join('\n      ');
    const heading = `# Data product "${product.name}" (${product.type}), owned by ${product.owner}.`;
    const fields = Object.values(query.getFields());
    const connection = fields.find((field) => {
      const named = getNamedType(field.type);
      return isObjectType(named) && getNamedType(named.getFields().nodes?.type ?? named) === type && 'first' in Object.fromEntries(field.args.map((a) => [a.name, a]));
    });
    const list = fields.find((field) => isListType(getNullableType(field.type)) && getNamedType(field.type) === type);
    if (connection) {
      examples.push({
        name: product.name,
        type: product.type,
        query: `${heading}\nquery ${pascal(product.name)}Example {\n  ${connection.name}(first: 10) {\n    totalCount\n    nodes {\n      ${columns}\n    }\n  }\n}\n`,
      });
    } else if (list) {
      examples.push({ name: product.name, type: product.type, query: `${heading}\nquery ${pascal(product.name)}Example {\n  ${list.name} {\n    ${columns.replaceAll('\n      ', '\n    ')}\n  }\n}\n` });
    }
  }
  return examples;
}
