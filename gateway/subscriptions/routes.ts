/**
 * Which subscription fields the gateway can serve, and how: read from the served supergraph.
 *
 * A domain declares a subscription field in its SDL as the kit's convention says (subgraphs/README.md,
 * "Subscriptions"): `orderChanged(status: OrderStatus, after: String): OrderChange!`, where the
 * change type holds the event's fields (`operation`, `key`, `changedFields`, `position`, `version`)
 * and one field of an entity type that is a data product (`order: Order`). The gateway then knows:
 * the product's change feed (`finance.orders`, from `@dataProduct`), the Query field that reads one
 * entity by its key (`order(id: ID!)`), and the filters (an argument named as the key filters by
 * key; one named as another field of the entity keeps the entities whose field equals it now).
 * A subscription field that does not fit is not served, and says why.
 */
import {
  getNamedType,
  getNullableType,
  isEnumType,
  isListType,
  isNonNullType,
  isObjectType,
  isScalarType,
  Kind,
  parse,
  type GraphQLObjectType,
  type GraphQLSchema,
} from 'graphql';

/** The change type's fields that the gateway fills from the event itself. */
export const EVENT_FIELDS = {
  operation: 'ChangeOperation!',
  key: 'ID!',
  changedFields: '[String!]!',
  position: 'String!',
  version: 'String!',
} as const;

export type EventField = keyof typeof EVENT_FIELDS;

/** The argument that resumes after an event's position. */
export const AFTER_ARGUMENT = 'after';

export interface SubscriptionRoute {
  /** `Subscription.<field>`. */
  readonly field: string;
  /** The change feed followed: `<domain>.<product>`. */
  readonly product: string;
  readonly changeType: GraphQLObjectType;
  /** The change type's field holding the entity (`order`). */
  readonly entityField: string;
  readonly entityType: GraphQLObjectType;
  /** The entity's key field (`id`). */
  readonly keyField: string;
  /** The Query field that reads one entity by key (`order`), and its argument (`id`). */
  readonly lookupField: string;
  readonly lookupArgument: string;
  /** The key argument's type as the lookup declares it (`ID!`). */
  readonly lookupArgumentType: string;
  /** Arguments that filter: by key, or by a field of the entity equal to the argument. */
  readonly filters: readonly { readonly argument: string; readonly field: string; readonly byKey: boolean }[];
}

export interface SubscriptionRoutes {
  readonly routes: ReadonlyMap<string, SubscriptionRoute>;
  /** Subscription fields that cannot be served, with why (logged at load, answered at subscribe). */
  readonly unserved: ReadonlyMap<string, string>;
}

interface EntityFacts {
  readonly product: string;
  readonly keys: readonly string[];
}

/** The data product and keys of each entity type, from the supergraph's `@dataProduct` and `@join__type(key:)`. */
function entityFactsOf(supergraphSdl: string): Map<string, EntityFacts> {
  const facts = new Map<string, EntityFacts>();
  for (const definition of parse(supergraphSdl).definitions) {
    if (definition.kind !== Kind.OBJECT_TYPE_DEFINITION) continue;
    let product: string | null = null;
    const keys: string[] = [];
    for (const directive of definition.directives ?? []) {
      const argument = (name: string) => {
        const value = directive.arguments?.find((arg) => arg.name.value === name)?.value;
        return value?.kind === Kind.STRING ? value.value : null;
      };
      if (directive.name.value === 'dataProduct') {
        const name = argument('name');
        const owner = argument('owner');
        if (name && owner) product = `${owner}.${name}`;
      }
      if (directive.name.value === 'join__type') {
        const key = argument('key');
        if (key) keys.push(key.trim());
      }
    }
    if (product) facts.set(definition.name.value, { product, keys });
  }
  return facts;
}

const typeText = (type: { toString(): string }) => type.toString();

function routeOf(schema: GraphQLSchema, facts: Map<string, EntityFacts>, fieldName: string): SubscriptionRoute | string {
  const field = schema.getSubscriptionType()!.getFields()[fieldName]!;
  const changeType = getNullableType(field.type);
  if (!isObjectType(changeType)) return `its type ${typeText(field.type)} is not an object type of change events`;
  const changeFields = changeType.getFields();
  for (const [name, type] of Object.entries(EVENT_FIELDS)) {
    const declared = changeFields[name];
    if (declared && typeText(declared.type) !== type) return `${changeType.name}.${name} must be ${type}, not ${typeText(declared.type)}`;
  }
  const others = Object.values(changeFields).filter((f) => !(f.name in EVENT_FIELDS));
  if (others.length !== 1) return `${changeType.name} must have exactly one field besides ${Object.keys(EVENT_FIELDS).join(', ')}: the entity (it has ${others.length})`;
  const entity = others[0]!;
  if (isNonNullType(entity.type)) return `${changeType.name}.${entity.name} must be nullable (it is null for a delete)`;
  const entityType = entity.type;
  if (!isObjectType(entityType)) return `${changeType.name}.${entity.name} must be an entity object type`;
  const fact = facts.get(entityType.name);
  if (!fact) return `${entityType.name} is not a data product (no @dataProduct): no change feed to follow`;
  const keyField = fact.keys.find((key) => /^[_A-Za-z][_0-9A-Za-z]*$/.test(key) && key in entityType.getFields());
  if (!keyField) return `${entityType.name} has no single-field @key`;
  const lookups = Object.values(schema.getQueryType()?.getFields() ?? {}).filter((query) => {
    if (getNullableType(query.type) !== entityType) return false;
    const required = query.args.filter((arg) => isNonNullType(arg.type) && arg.defaultValue === undefined);
    return required.length === 1 && required[0]!.name === keyField && !isListType(getNullableType(required[0]!.type));
  });
  if (lookups.length !== 1) return `the Query type must have exactly one field that reads one ${entityType.name} by its ${keyField} (${lookups.length} found)`;
  const lookup = lookups[0]!;
  const lookupArgument = lookup.args.find((arg) => arg.name === keyField)!;
  const filters: { argument: string; field: string; byKey: boolean }[] = [];
  let after = false;
  for (const arg of field.args) {
    if (arg.name === AFTER_ARGUMENT) {
      if (typeText(arg.type) !== 'String') return `its \`${AFTER_ARGUMENT}\` argument must be a nullable String`;
      after = true;
      continue;
    }
    if (isNonNullType(arg.type)) return `its filter argument ${arg.name} must be nullable (no filter when absent)`;
    const target = entityType.getFields()[arg.name];
    const named = getNamedType(arg.type);
    if (!target || isListType(getNullableType(target.type)) || isListType(arg.type) || getNamedType(target.type) !== named || !(isScalarType(named) || isEnumType(named))) {
      return `its argument ${arg.name} names no scalar field of ${entityType.name} of the same type (a filter argument is named as the field it compares)`;
    }
    filters.push({ argument: arg.name, field: arg.name, byKey: arg.name === keyField });
  }
  if (!after) return `it needs an \`${AFTER_ARGUMENT}: String\` argument (to resume after a position)`;
  return {
    field: fieldName,
    product: fact.product,
    changeType,
    entityField: entity.name,
    entityType,
    keyField,
    lookupField: lookup.name,
    lookupArgument: lookupArgument.name,
    lookupArgumentType: typeText(lookupArgument.type),
    filters,
  };
}

/** The routes of every subscription field of an API schema (none without a Subscription type). */
export function subscriptionRoutesOf(schema: GraphQLSchema, supergraphSdl: string): SubscriptionRoutes {
  const routes = new Map<string, SubscriptionRoute>();
  const unserved = new Map<string, string>();
  const subscription = schema.getSubscriptionType();
  if (!subscription) return { routes, unserved };
  const facts = entityFactsOf(supergraphSdl);
  for (const name of Object.keys(subscription.getFields())) {
    const route = routeOf(schema, facts, name);
    if (typeof route === 'string') unserved.set(name, route);
    else routes.set(name, route);
  }
  return { routes, unserved };
}
