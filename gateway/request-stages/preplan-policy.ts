/**
 * The gateway's line of policy enforcement, before the query plan is built.
 *
 * The policy directives are read from the supergraph SDL. For each request, every field of the
 * operation (fragments included) is decided for the principal; denied fields are removed from the
 * operation (`filter`, the default), so that subgraphs are never asked for them, or the whole
 * operation is refused (`reject`). In filter mode the answer then has each removed field as null,
 * with one FORBIDDEN/UNAUTHENTICATED error per field path (list positions are left out of that
 * path), and nulls propagate through non-null fields as the GraphQL spec says.
 *
 * The subgraphs enforce the same policy again on every field resolution (zero trust).
 */
import { createHash } from 'node:crypto';
import type { GatewayExecutor, GatewayGraphQLRequestContext, GatewayInterface } from '@apollo/server-gateway-interface';
import {
  getNamedType,
  getNullableType,
  isAbstractType,
  isListType,
  isNonNullType,
  isObjectType,
  Kind,
  print,
  TypeInfo,
  visit,
  visitWithTypeInfo,
  type DirectiveNode,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLError,
  type GraphQLObjectType,
  type GraphQLOutputType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import { deniedError, RequestPolicy, type Decision } from '../../policy/decide.js';
import type { PolicyIndex } from '../../policy/policy-index.js';
import { policyClassOf, type Principal } from '../../policy/principal.js';
import { LRUCache } from 'lru-cache';
import { MAX_REMEMBERED_VARIABLES } from './cost.js';

export type PreplanMode = 'filter' | 'reject';

/** The alias of the `__typename` that stands in for a selection whose every field was removed. */
const PLACEHOLDER = 'policyRemovedEverything';

type Denied = Extract<Decision, { allowed: false }>;

/** Introspection is for signed-in principals only. */
function introspectionDecision(principal: Principal): Decision | null {
  if (!principal.anonymous) return null;
  return {
    allowed: false,
    code: 'UNAUTHENTICATED',
    missing: { authenticated: true },
    policy: {
      coordinate: 'Query.__schema',
      level: 'INTERNAL',
      tags: [],
      requirement: { authenticated: true },
      rule: 'introspection needs a signed-in principal',
      type: { name: '__Schema', nonNull: true },
      mask: null,
      shadow: { requirement: null, mask: null },
    },
  };
}

function decideField(schema: GraphQLSchema, policy: RequestPolicy, parent: GraphQLOutputType, field: FieldNode): Decision | null {
  const name = field.name.value;
  if (name === '__typename') return null;
  if (name === '__schema' || name === '__type') return introspectionDecision(policy.principal);
  const named = getNamedType(parent);
  // Inside introspection (__Schema, __Type, …): the schema's description, decided at its entry.
  if (named.name.startsWith('__')) return null;
  // A field of an interface is denied when any type that implements it denies it.
  const objects: readonly GraphQLObjectType[] = isObjectType(named)
    ? [named]
    : isAbstractType(named)
      ? schema.getPossibleTypes(named)
      : [];
  for (const object of objects) {
    const decision = policy.field(object.name, name);
    if (!decision.allowed) return decision;
  }
  return null;
}

export interface MaskedField {
  /** Response keys from the root (or from a named fragment, `...Name`) to the field; no list positions. */
  readonly path: readonly string[];
  readonly coordinate: string;
  readonly strategy: string;
  readonly rule: string;
}

/** The fields of the operation the principal will see masked, with the rule that masks each. */
export function maskedFields(options: { schema: GraphQLSchema; document: DocumentNode; policy: RequestPolicy }): MaskedField[] {
  const { schema, document, policy } = options;
  const typeInfo = new TypeInfo(schema);
  const path: string[] = [];
  const found = new Map<string, MaskedField>();
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      // A field inside a named fragment is explained relative to it: `...Fragment.field`.
      FragmentDefinition: {
        enter(node) {
          path.push(`...${node.name.value}`);
        },
        leave() {
          path.pop();
        },
      },
      Field: {
        enter(node) {
          path.push(node.alias?.value ?? node.name.value);
          const parent = typeInfo.getParentType();
          const named = parent && getNamedType(parent);
          if (named && isObjectType(named) && !node.name.value.startsWith('__')) {
            const decision = policy.field(named.name, node.name.value);
            if (decision.allowed && decision.mask) {
              const key = `${path.join('.')}:${decision.policy.coordinate}`;
              found.set(key, { path: [...path], coordinate: decision.policy.coordinate, strategy: decision.mask.strategy, rule: decision.mask.rule });
            }
          }
        },
        leave() {
          path.pop();
        },
      },
    }),
  );
  return [...found.values()];
}

type Variables = Readonly<Record<string, unknown>>;

/**
 * Whether `@skip`/`@include` leave a selection out of execution: a condition that is a literal, or a
 * variable of the request (a missing variable keeps the selection, as its default may).
 */
export function isExcluded(node: { readonly directives?: readonly DirectiveNode[] | undefined }, variables: Variables): boolean {
  for (const directive of node.directives ?? []) {
    const name = directive.name.value;
    if (name !== 'skip' && name !== 'include') continue;
    const value = directive.arguments?.find((argument) => argument.name.value === 'if')?.value;
    const condition = value?.kind === Kind.BOOLEAN ? value.value : value?.kind === Kind.VARIABLE ? variables[value.name.value] : undefined;
    if (typeof condition !== 'boolean') continue;
    if (name === 'skip' ? condition : !condition) return true;
  }
  return false;
}

/** The fragments an operation spreads, through spreads that are not left out by `@skip`/`@include`. */
function fragmentsInUse(document: DocumentNode, variables: Variables): Set<string> {
  const fragments = new Map(document.definitions.flatMap((d) => (d.kind === Kind.FRAGMENT_DEFINITION ? [[d.name.value, d] as const] : [])));
  const used = new Set<string>();
  const walk = (selectionSet: SelectionSetNode): void => {
    for (const selection of selectionSet.selections) {
      if (isExcluded(selection, variables)) continue;
      if (selection.kind === Kind.FRAGMENT_SPREAD) {
        const name = selection.name.value;
        if (used.has(name)) continue;
        used.add(name);
        const fragment = fragments.get(name);
        if (fragment) walk(fragment.selectionSet);
      } else if (selection.selectionSet) walk(selection.selectionSet);
    }
  };
  for (const definition of document.definitions) if (definition.kind === Kind.OPERATION_DEFINITION) walk(definition.selectionSet);
  return used;
}

/**
 * The operation without the fields the principal may not see; `denied` by field node. A field or
 * fragment that `@skip`/`@include` leave out is not decided: it will not run, so it is not denied.
 */
export function filterOperation(options: {
  schema: GraphQLSchema;
  document: DocumentNode;
  policy: RequestPolicy;
  variables?: Variables;
}): { document: DocumentNode; denied: Map<FieldNode, Denied> } {
  const { schema, document, policy } = options;
  const variables = options.variables ?? {};
  const inUse = fragmentsInUse(document, variables);
  const denied = new Map<FieldNode, Denied>();
  const typeInfo = new TypeInfo(schema);
  const filtered = visit(
    document,
    visitWithTypeInfo(typeInfo, {
      // Left out of execution: kept as they are, and not decided.
      FragmentDefinition: (node) => (inUse.has(node.name.value) ? undefined : false),
      InlineFragment: (node) => (isExcluded(node, variables) ? false : undefined),
      FragmentSpread: (node) => (isExcluded(node, variables) ? false : undefined),
      Field: {
        enter(node) {
          if (isExcluded(node, variables)) return false;
          const parent = typeInfo.getParentType();
          if (!parent) return undefined;
          const decision = decideField(schema, policy, parent, node);
          if (decision && !decision.allowed) {
            denied.set(node, decision);
            return null; // removes the field, and skips its subtree
          }
          return undefined;
        },
      },
      SelectionSet: {
        leave(node): SelectionSetNode | undefined {
          if (node.selections.length > 0) return undefined;
          // Every field of this selection was removed: keep the selection valid with a placeholder
          // that the answer drops again.
          return {
            ...node,
            selections: [
              { kind: Kind.FIELD, alias: { kind: Kind.NAME, value: PLACEHOLDER }, name: { kind: Kind.NAME, value: '__typename' } },
            ],
          };
        },
      },
    }),
  );
  return { document: filtered, denied };
}

/**
 * Puts the removed fields back into the answer as nulls, with their errors, propagating nulls
 * through non-null positions. Walks the original operation over the data.
 */
function restoreDenied(options: {
  schema: GraphQLSchema;
  operation: OperationDefinitionNode;
  fragments: ReadonlyMap<string, FragmentDefinitionNode>;
  denied: ReadonlyMap<FieldNode, Denied>;
  data: Record<string, unknown>;
  variables: Variables;
}): { data: Record<string, unknown> | null; errors: GraphQLError[] } {
  const { schema, fragments, denied, variables } = options;
  const errors = new Map<string, GraphQLError>();

  const applies = (condition: string | undefined, type: GraphQLObjectType): boolean => {
    if (!condition) return true;
    const conditionType = schema.getType(condition);
    return conditionType === type || (isAbstractType(conditionType) && schema.isSubType(conditionType, type));
  };

  // The fields of a selection set on an object type, through its fragments (as graphql-js collects).
  const collect = (selectionSet: SelectionSetNode, type: GraphQLObjectType, into: FieldNode[] = []): FieldNode[] => {
    for (const selection of selectionSet.selections) {
      if (isExcluded(selection, variables)) continue;
      if (selection.kind === Kind.FIELD) into.push(selection);
      else {
        const fragment = selection.kind === Kind.FRAGMENT_SPREAD ? fragments.get(selection.name.value) : selection;
        if (fragment && applies(fragment.typeCondition?.name.value, type)) collect(fragment.selectionSet, type, into);
      }
    }
    return into;
  };

  // Returns false when this object must become null (a non-null field in it was nulled).
  const walkObject = (value: Record<string, unknown>, selectionSet: SelectionSetNode, type: GraphQLObjectType, path: string[]): boolean => {
    const fields = collect(selectionSet, type);
    // Drop the placeholder, unless the client itself asked for a field under that name.
    if (!fields.some((field) => (field.alias?.value ?? field.name.value) === PLACEHOLDER)) delete value[PLACEHOLDER];
    for (const field of fields) {
      const key = field.alias?.value ?? field.name.value;
      const definition = type.getFields()[field.name.value];
      const decision = denied.get(field);
      if (decision) {
        const fieldPath = [...path, key];
        const id = fieldPath.join('.');
        if (!errors.has(id)) {
          const error = deniedError(decision);
          errors.set(id, Object.assign(error, { path: fieldPath }) as GraphQLError);
        }
        value[key] = null;
        if (definition && isNonNullType(definition.type)) return false;
        continue;
      }
      if (!definition || !field.selectionSet || value[key] === null || value[key] === undefined) continue;
      if (!walkValue(value, key, definition.type, field.selectionSet, [...path, key]) && isNonNullType(definition.type)) return false;
    }
    return true;
  };

  // Returns false when the value at holder[key] became null.
  const walkValue = (holder: Record<string, unknown> | unknown[], key: string | number, type: GraphQLOutputType, selectionSet: SelectionSetNode, path: string[]): boolean => {
    const value = (holder as Record<string | number, unknown>)[key];
    if (value === null || value === undefined) return true;
    const nullable = getNullableType(type);
    if (isListType(nullable)) {
      const items = value as unknown[];
      for (let i = 0; i < items.length; i++) {
        if (!walkValue(items, i, nullable.ofType, selectionSet, path) && isNonNullType(nullable.ofType)) {
          (holder as Record<string | number, unknown>)[key] = null;
          return false;
        }
      }
      return true;
    }
    const named = getNamedType(type);
    const object = isObjectType(named)
      ? named
      : isAbstractType(named)
        ? (schema.getType(String((value as Record<string, unknown>).__typename)) as GraphQLObjectType | undefined)
        : undefined;
    if (!object) return true;
    if (!walkObject(value as Record<string, unknown>, selectionSet, object, path)) {
      (holder as Record<string | number, unknown>)[key] = null;
      return false;
    }
    return true;
  };

  const root = schema.getRootType(options.operation.operation);
  const data = options.data;
  const kept = root ? walkObject(data, options.operation.selectionSet, root, []) : true;
  return { data: kept ? data : null, errors: [...errors.values()] };
}

function hashOf(document: DocumentNode): string {
  return createHash('sha256').update(print(document)).digest('hex');
}

interface PolicyRequestContext {
  readonly principal: Principal;
}

/** What the pre-plan policy makes of one document for one policy class (and the variables `@skip`/`@include` read). */
interface Planned {
  readonly document: DocumentNode;
  readonly denied: Map<FieldNode, Denied>;
  readonly masked: MaskedField[];
  /** The filtered document's hash and text, when fields were denied. */
  readonly filtered: { readonly queryHash: string; readonly source: string } | null;
}

/**
 * Kept per policy (a supergraph's), per parsed document (Apollo Server keeps one per query text),
 * per policy class and variables: a dashboard sends the same documents as the same classes of
 * principal again and again, and the result depends on nothing else.
 */
const plannedByPolicy = new WeakMap<PolicyIndex, WeakMap<DocumentNode, LRUCache<string, Planned>>>();

function plannedFor(policyIndex: PolicyIndex, requestContext: GatewayGraphQLRequestContext, principal: Principal, variables: Variables): Planned {
  let byDocument = plannedByPolicy.get(policyIndex);
  if (!byDocument) {
    byDocument = new WeakMap();
    plannedByPolicy.set(policyIndex, byDocument);
  }
  let byClass = byDocument.get(requestContext.document);
  if (!byClass) {
    byClass = new LRUCache<string, Planned>({ max: 64 });
    byDocument.set(requestContext.document, byClass);
  }
  const variablesKey = JSON.stringify(variables);
  const key = `${policyClassOf(principal)}\n${variablesKey}`;
  // Large variables are planned each time: kept, a stream of them would hold their text in memory.
  const remembered = variablesKey.length <= MAX_REMEMBERED_VARIABLES;
  let planned = remembered ? byClass.get(key) : undefined;
  if (!planned) {
    const policy = new RequestPolicy(policyIndex, principal);
    const { document, denied } = filterOperation({ schema: requestContext.schema, document: requestContext.document, policy, variables });
    // Masked fields are explained in the response: which field, which strategy, which rule.
    const masked = maskedFields({ schema: requestContext.schema, document: requestContext.document, policy });
    planned = { document, denied, masked, filtered: denied.size > 0 ? { queryHash: hashOf(document), source: print(document) } : null };
    if (remembered) byClass.set(key, planned);
  }
  return planned;
}

/**
 * Wraps Apollo Gateway so that its executor only ever plans the fields the principal may see.
 * `policyIndex` returns the policy of the supergraph whose API schema the request runs against
 * (after a hot reload, requests in flight finish under the schema and policy they started with).
 */
export function withPreplanPolicy(options: {
  gateway: GatewayInterface;
  policyIndex: (schema: GraphQLSchema) => PolicyIndex;
  mode: PreplanMode;
}): GatewayInterface {
  const { gateway, mode } = options;
  const wrap = (executor: GatewayExecutor): GatewayExecutor => async (requestContext: GatewayGraphQLRequestContext) => {
    const context = requestContext.context as unknown as PolicyRequestContext;
    const variables = (requestContext.request.variables ?? {}) as Variables;
    const { document, denied, masked, filtered } = plannedFor(options.policyIndex(requestContext.schema), requestContext, context.principal, variables);
    const explain = <R extends Awaited<ReturnType<GatewayExecutor>>>(result: R): R =>
      masked.length === 0 ? result : { ...result, extensions: { ...result.extensions, policy: { masked } } };
    if (denied.size === 0) return explain(await executor(requestContext));
    if (mode === 'reject') return { errors: [...new Set(denied.values())].map((decision) => deniedError(decision)) };

    const operation = document.definitions.find(
      (definition): definition is OperationDefinitionNode =>
        definition.kind === Kind.OPERATION_DEFINITION &&
        (requestContext.operationName === null || definition.name?.value === requestContext.operationName),
    )!;
    // A plan is cached by query hash: the filtered operation must not share the original's.
    const result = explain(await executor({ ...requestContext, document, operation, queryHash: filtered!.queryHash, source: filtered!.source }));
    if (!result.data) return result;
    const fragments = new Map(
      requestContext.document.definitions
        .filter((definition): definition is FragmentDefinitionNode => definition.kind === Kind.FRAGMENT_DEFINITION)
        .map((fragment) => [fragment.name.value, fragment]),
    );
    const restored = restoreDenied({
      schema: requestContext.schema,
      operation: requestContext.operation,
      fragments,
      denied,
      data: result.data as Record<string, unknown>,
      variables,
    });
    const errors = [...restored.errors, ...(result.errors ?? [])];
    return { ...result, data: restored.data, ...(errors.length > 0 ? { errors } : {}) };
  };
  return {
    async load(loadOptions) {
      const loaded = await gateway.load(loadOptions);
      return { ...loaded, executor: loaded.executor && wrap(loaded.executor) };
    },
    onSchemaLoadOrUpdate: (callback) => gateway.onSchemaLoadOrUpdate(callback),
    stop: () => gateway.stop(),
  };
}
