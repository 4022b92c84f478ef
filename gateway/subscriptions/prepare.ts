/**
 * A subscription request made ready to run, or refused with a code, before any event is read:
 * the operation limits and validation as for a query, one served subscription field, its filter and
 * `after` arguments, the principal's policy on the subscription field, and the query that resolves
 * each event (the lookup). The lookup reads the entity by key with the subscriber's own selection
 * (and variables and fragments), through Apollo Gateway like any query, so that the pre-plan
 * policy, the subgraphs' field policy, masks and row policies, and the audit apply to each event.
 */
import {
  getOperationAST,
  GraphQLError,
  Kind,
  parse,
  parseType,
  print,
  validate,
  visit,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionNode,
  type VariableDefinitionNode,
} from 'graphql';
import { getArgumentValues, getVariableValues } from 'graphql/execution/values.js';
import type { ErrorCode } from '../../policy/errors.js';
import { deniedError, RequestPolicy } from '../../policy/decide.js';
import type { PolicyIndex } from '../../policy/policy-index.js';
import type { Principal } from '../../policy/principal.js';
import type { Allowance } from '../request-stages/allowances.js';
import { estimateCost, type CostIndex } from '../request-stages/cost.js';
import { limitMessage, measureDocument, nestsDeeperThan } from '../request-stages/operation-limits.js';
import { filterOperation, isExcluded } from '../request-stages/preplan-policy.js';
import { AFTER_ARGUMENT, EVENT_FIELDS, type EventField, type SubscriptionRoute, type SubscriptionRoutes } from './routes.js';

/** The lookup's own names: a subscription that uses them is refused (they would collide). */
export const KEY_VARIABLE = 'meshEventKey';
export const ROW_ALIAS = 'meshEventRow';
const FILTER_ALIAS = 'meshFilter_';

/** A refusal before the subscription starts (HTTP status from the catalogue, or a WebSocket error message). */
export class SubscriptionRefused extends Error {
  override name = 'SubscriptionRefused';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly extensions: Record<string, unknown> = {},
    /** Several errors (validation, policy), each with its own message. */
    readonly errors: readonly GraphQLError[] = [],
    /** Response headers over HTTP (`Retry-After`). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  graphqlErrors(): GraphQLError[] {
    return this.errors.length > 0 ? [...this.errors] : [new GraphQLError(this.message, { extensions: { ...this.extensions, code: this.code } })];
  }
}

/** A stream position as the gateway shows it: the feed's event, and the key within it (`12:0`). */
export interface EventPosition {
  readonly position: number;
  /** The last key delivered within that event; null: the whole event. */
  readonly index: number | null;
}

const POSITION = /^(\d{1,15})(?::(\d{1,3}))?$/;

/** Reads `after` (or Last-Event-ID): `<position>` or `<position>:<index>`, as events carry it. */
export function parseEventPosition(text: string): EventPosition {
  const match = POSITION.exec(text);
  if (!match) throw new SubscriptionRefused('EVENT_POSITION_INVALID', `A position is an event's \`position\` (for example "12:0"), not ${JSON.stringify(text.slice(0, 40))}.`);
  return { position: Number(match[1]), index: match[2] === undefined ? null : Number(match[2]) };
}

export const formatEventPosition = (position: number, index: number) => `${position}:${index}`;

/** One field of the change type's selection, flattened (fragments resolved, `@skip`/`@include` applied). */
export type PayloadField = { readonly responseKey: string } & ({ readonly kind: 'event'; readonly name: EventField } | { readonly kind: 'entity' } | { readonly kind: 'typename' });

export interface PreparedSubscription {
  readonly route: SubscriptionRoute;
  readonly operationName: string | null;
  /** The subscription field's response key (its alias, or its name). */
  readonly responseKey: string;
  readonly after: EventPosition | null;
  /** Only this key (an argument named as the key). */
  readonly key: string | null;
  /** Entity fields that must equal these values (as the lookup reads them, under the subscriber's policy). */
  readonly filters: readonly { readonly alias: string; readonly value: unknown }[];
  readonly payload: readonly PayloadField[];
  /** The query that resolves one key of an event (variables: the subscription's, and `meshEventKey`). */
  readonly lookup: { readonly query: string; readonly document: DocumentNode; readonly operationName: string; readonly variables: Record<string, unknown> };
  /** The lookup's estimated cost: spent for each key delivered. */
  readonly cost: number;
}

export interface PrepareOptions {
  readonly request: { readonly query?: unknown; readonly variables?: unknown; readonly operationName?: unknown };
  readonly principal: Principal;
  readonly allowance: Allowance;
  readonly served: { readonly schema: GraphQLSchema; readonly policy: PolicyIndex; readonly index: CostIndex; readonly subscriptions: SubscriptionRoutes };
  readonly policyMode: 'filter' | 'reject';
  /** The transport's resume position (SSE `Last-Event-ID`), used when the operation has no `after`. */
  readonly lastEventId?: string;
}

function rootField(operation: OperationDefinitionNode, fragments: ReadonlyMap<string, FragmentDefinitionNode>): FieldNode[] {
  const fields: FieldNode[] = [];
  const walk = (selections: readonly SelectionNode[]) => {
    for (const selection of selections) {
      if (selection.kind === Kind.FIELD) {
        if (selection.name.value !== '__typename') fields.push(selection);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) walk(selection.selectionSet.selections);
      else {
        const fragment = fragments.get(selection.name.value);
        if (fragment) walk(fragment.selectionSet.selections);
      }
    }
  };
  walk(operation.selectionSet.selections);
  return fields;
}

/** The change type's fields as the subscriber selected them, in order, with the entity's selections. */
function flattenPayload(route: SubscriptionRoute, field: FieldNode, fragments: ReadonlyMap<string, FragmentDefinitionNode>, variables: Record<string, unknown>) {
  const payload: PayloadField[] = [];
  const seen = new Set<string>();
  const entitySelections = new Map<string, SelectionNode[]>();
  const walk = (selections: readonly SelectionNode[]) => {
    for (const selection of selections) {
      if (isExcluded(selection, variables)) continue;
      if (selection.kind === Kind.INLINE_FRAGMENT) walk(selection.selectionSet.selections);
      else if (selection.kind === Kind.FRAGMENT_SPREAD) {
        const fragment = fragments.get(selection.name.value);
        if (fragment) walk(fragment.selectionSet.selections);
      } else {
        const responseKey = selection.alias?.value ?? selection.name.value;
        const name = selection.name.value;
        if (name === route.entityField) {
          if (responseKey === ROW_ALIAS) throw new SubscriptionRefused('SUBSCRIPTION_INVALID', `The alias ${ROW_ALIAS} is the gateway's own; choose another.`);
          const list = entitySelections.get(responseKey) ?? [];
          list.push(...(selection.selectionSet?.selections ?? []));
          entitySelections.set(responseKey, list);
        }
        if (seen.has(responseKey)) continue;
        seen.add(responseKey);
        if (name === '__typename') payload.push({ responseKey, kind: 'typename' });
        else if (name === route.entityField) payload.push({ responseKey, kind: 'entity' });
        else if (name in EVENT_FIELDS) payload.push({ responseKey, kind: 'event', name: name as EventField });
      }
    }
  };
  walk(field.selectionSet?.selections ?? []);
  return { payload, entitySelections };
}

/** The fragments (transitively) and variables the entity's selections use. */
function usedBy(selections: readonly SelectionNode[], fragments: ReadonlyMap<string, FragmentDefinitionNode>) {
  const usedFragments = new Map<string, FragmentDefinitionNode>();
  const usedVariables = new Set<string>();
  const pending: (SelectionNode | FragmentDefinitionNode)[] = [...selections];
  while (pending.length > 0) {
    visit(pending.pop()!, {
      Variable: (node) => void usedVariables.add(node.name.value),
      FragmentSpread: (node) => {
        const fragment = fragments.get(node.name.value);
        if (fragment && !usedFragments.has(fragment.name.value)) {
          usedFragments.set(fragment.name.value, fragment);
          pending.push(fragment);
        }
      },
    });
  }
  return { usedFragments, usedVariables };
}

const name = (value: string) => ({ kind: Kind.NAME, value }) as const;

export function prepareSubscription(options: PrepareOptions): PreparedSubscription {
  const { request, principal, allowance, served } = options;
  if (principal.anonymous) throw new SubscriptionRefused('UNAUTHENTICATED', 'Subscriptions need a signed-in principal: send a bearer token.');
  if (typeof request.query !== 'string' || request.query === '') throw new SubscriptionRefused('BAD_REQUEST', 'A subscription request needs `query`, a GraphQL document.');
  if (request.operationName !== undefined && request.operationName !== null && typeof request.operationName !== 'string') throw new SubscriptionRefused('BAD_REQUEST', '`operationName` must be a string.');
  const rawVariables = request.variables ?? {};
  if (rawVariables === null || typeof rawVariables !== 'object' || Array.isArray(rawVariables)) throw new SubscriptionRefused('BAD_REQUEST', '`variables` must be a JSON object.');
  if (nestsDeeperThan(rawVariables, allowance.maxDepth + 1)) {
    throw new SubscriptionRefused('MAX_DEPTH_EXCEEDED', `The operation's variables nest deeper than the limit of ${allowance.maxDepth}.`, { limit: allowance.maxDepth, value: `>${allowance.maxDepth}` });
  }
  // The operation limits, as for a query: measured before anything else walks the document.
  const measured = measureDocument({ query: request.query, limits: allowance, schema: served.schema });
  if ('exceeded' in measured) {
    const { exceeded } = measured;
    throw new SubscriptionRefused(exceeded.code, limitMessage(exceeded), { limit: exceeded.limit, value: exceeded.atLeast ? `>${exceeded.limit}` : exceeded.value });
  }
  if ('unparsable' in measured) {
    try {
      parse(request.query);
    } catch (error) {
      throw new SubscriptionRefused('GRAPHQL_PARSE_FAILED', (error as Error).message);
    }
    throw new SubscriptionRefused('GRAPHQL_PARSE_FAILED', 'The document is not valid GraphQL.');
  }
  const { document } = measured;
  const invalid = validate(served.schema, document);
  if (invalid.length > 0) {
    throw new SubscriptionRefused('GRAPHQL_VALIDATION_FAILED', invalid[0]!.message, {}, invalid.map((error) => new GraphQLError(error.message, { nodes: error.nodes, extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } })));
  }
  const operation = getOperationAST(document, (request.operationName as string | null | undefined) ?? undefined);
  if (!operation) throw new SubscriptionRefused('OPERATION_RESOLUTION_FAILURE', 'Name the operation to run with `operationName`: the document holds several, or none of that name.');
  if (operation.operation !== 'subscription') {
    throw new SubscriptionRefused('SUBSCRIPTION_INVALID', `This endpoint serves subscriptions; send a ${operation.operation} to POST /graphql.`);
  }
  const declared = new Set((operation.variableDefinitions ?? []).map((definition) => definition.variable.name.value));
  if (declared.has(KEY_VARIABLE)) throw new SubscriptionRefused('SUBSCRIPTION_INVALID', `The variable $${KEY_VARIABLE} is the gateway's own; choose another name.`);
  const coerced = getVariableValues(served.schema, operation.variableDefinitions ?? [], rawVariables as Record<string, unknown>, { maxErrors: 5 });
  if (coerced.errors) {
    throw new SubscriptionRefused('BAD_USER_INPUT', coerced.errors[0]!.message, {}, coerced.errors.map((error) => new GraphQLError(error.message, { extensions: { code: 'BAD_USER_INPUT' } })));
  }
  const variables = coerced.coerced;
  const fragments = new Map(document.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((d) => [d.name.value, d]));
  const [field] = rootField(operation, fragments);
  const fieldName = field!.name.value;
  const route = served.subscriptions.routes.get(fieldName);
  if (!route) throw new SubscriptionRefused('SUBSCRIPTION_INVALID', `Subscription.${fieldName} is not served: ${served.subscriptions.unserved.get(fieldName) ?? 'unknown field'}.`);

  // The policy on the subscription itself, as a query's root field: refused when denied, and every
  // denied field refused in `reject` mode. The entity's fields are decided again at each event.
  const policy = new RequestPolicy(served.policy, principal);
  const { denied } = filterOperation({ schema: served.schema, document, policy, variables });
  const changeTypeDenied = [...denied.entries()].filter(([node, decision]) => node === field || (options.policyMode === 'reject') || decision.policy.coordinate.startsWith(`${route.changeType.name}.`) || decision.policy.coordinate.startsWith('Subscription.'));
  if (changeTypeDenied.length > 0) {
    const errors = [...new Set(changeTypeDenied.map(([, decision]) => decision))].map((decision) => deniedError(decision));
    throw new SubscriptionRefused((errors[0]!.extensions.code as ErrorCode | undefined) ?? 'FORBIDDEN', errors[0]!.message, {}, errors);
  }

  const args = getArgumentValues(served.schema.getSubscriptionType()!.getFields()[fieldName]!, field!, variables);
  const resumeAfter = typeof args[AFTER_ARGUMENT] === 'string' ? (args[AFTER_ARGUMENT] as string) : options.lastEventId;
  const after = resumeAfter === undefined ? null : parseEventPosition(resumeAfter);
  let key: string | null = null;
  const filters: { alias: string; field: string; value: unknown }[] = [];
  for (const filter of route.filters) {
    const value = args[filter.argument];
    if (value === undefined || value === null) continue;
    if (filter.byKey) key = String(value);
    else {
      // A filter on a field the subscriber may not read would keep nothing, silently: refused, as the field would be.
      const decision = policy.field(route.entityType.name, filter.field);
      if (!decision.allowed) {
        const error = deniedError(decision);
        throw new SubscriptionRefused((error.extensions.code as ErrorCode | undefined) ?? 'FORBIDDEN', error.message, {}, [error]);
      }
      filters.push({ alias: `${FILTER_ALIAS}${filter.field}`, field: filter.field, value });
    }
  }

  const { payload, entitySelections } = flattenPayload(route, field!, fragments, variables);
  const { usedFragments, usedVariables } = usedBy([...entitySelections.values()].flat(), fragments);
  const keyArgument = { kind: Kind.ARGUMENT, name: name(route.lookupArgument), value: { kind: Kind.VARIABLE, name: name(KEY_VARIABLE) } } as const;
  const lookupOf = (alias: string, selections: readonly SelectionNode[]): FieldNode => ({
    kind: Kind.FIELD,
    alias: name(alias),
    name: name(route.lookupField),
    arguments: [keyArgument],
    selectionSet: { kind: Kind.SELECTION_SET, selections },
  });
  const typename: FieldNode = { kind: Kind.FIELD, name: name('__typename') };
  const rowSelections: FieldNode[] = [typename, ...filters.map((filter): FieldNode => ({ kind: Kind.FIELD, alias: name(filter.alias), name: name(filter.field) }))];
  const variableDefinitions: VariableDefinitionNode[] = [
    { kind: Kind.VARIABLE_DEFINITION, variable: { kind: Kind.VARIABLE, name: name(KEY_VARIABLE) }, type: parseType(route.lookupArgumentType) },
    ...(operation.variableDefinitions ?? []).filter((definition) => usedVariables.has(definition.variable.name.value)),
  ];
  const operationName = operation.name?.value ?? null;
  const lookupName = operationName ?? `${fieldName}Event`;
  const lookupDocument: DocumentNode = {
    kind: Kind.DOCUMENT,
    definitions: [
      {
        kind: Kind.OPERATION_DEFINITION,
        operation: 'query' as never,
        name: name(lookupName),
        variableDefinitions,
        selectionSet: { kind: Kind.SELECTION_SET, selections: [lookupOf(ROW_ALIAS, rowSelections), ...[...entitySelections].map(([alias, selections]) => lookupOf(alias, selections))] },
      },
      ...usedFragments.values(),
    ],
  };
  const lookupVariables = Object.fromEntries(Object.entries(rawVariables as Record<string, unknown>).filter(([variable]) => usedVariables.has(variable)));
  const lookupQuery = print(lookupDocument);
  const lookupParsed = parse(lookupQuery);
  const lookupOperation = getOperationAST(lookupParsed)!;
  const cost = estimateCost({ schema: served.schema, index: served.index, document: lookupParsed, operation: lookupOperation, variables: { ...lookupVariables, [KEY_VARIABLE]: 'k' } });
  if (cost > allowance.maxCost) {
    throw new SubscriptionRefused('COST_LIMIT_EXCEEDED', `Each event's estimated cost (${cost}) exceeds the budget of ${allowance.maxCost}; select fewer fields.`, { cost, budget: allowance.maxCost });
  }
  return {
    route,
    operationName,
    responseKey: field!.alias?.value ?? fieldName,
    after,
    key,
    filters: filters.map(({ alias, value }) => ({ alias, value })),
    payload,
    lookup: { query: lookupQuery, document: lookupParsed, operationName: lookupName, variables: lookupVariables },
    cost,
  };
}
