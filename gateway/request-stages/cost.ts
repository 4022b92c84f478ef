/**
 * Demand control: the estimated cost of an operation, from the `@cost` and `@listSize` directives
 * the subgraphs declare (Federation's cost spec, after the IBM GraphQL cost directive
 * specification), computed before planning and refused over the caller's budget.
 *
 * The estimate, as Apollo Router's static estimation counts it:
 * - a field returning an object, interface or union costs 1, a scalar or enum field 0, unless
 *   `@cost(weight:)` on the field (or on its type) says otherwise; a mutation's root fields cost 10;
 * - introspection (`__schema`, `__type`) costs one per object its answer holds, counted against the
 *   served schema (introspection-cost.ts);
 * - variables count as the operation will run with them: a variable not sent takes its default
 *   value (`query($n: Int = 500)` is sized 500);
 * - a list multiplies its element type's cost and its selection's cost by its size: the value of its
 *   slicing argument (`first`, `limit`: literal or variable), else its `assumedSize`, else the
 *   default list size (10); `sizedFields` carry the slicing argument to a connection's `nodes` and
 *   `edges`;
 * - fragments count where they are spread; on an abstract type every fragment counts (an upper
 *   bound); `@skip`/`@include` with a known condition are honoured.
 */
import type { ApolloServerPlugin } from '@apollo/server';
import type { Request, RequestHandler, Response } from 'express';
import { LRUCache } from 'lru-cache';
import {
  coerceInputValue,
  getNamedType,
  getOperationAST,
  getNullableType,
  isCompositeType,
  isListType,
  isInputType,
  isObjectType,
  Kind,
  typeFromAST,
  valueFromAST,
  valueFromASTUntyped,
  type ArgumentNode,
  type DirectiveNode,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLCompositeType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import type { Metrics } from '../../policy/metrics.js';
import type { AllowanceOf } from './allowances.js';
import { introspectionCost } from './introspection-cost.js';
import type { Refusal, Refuse } from './refusals.js';
import './request-state.js';

export interface ListSize {
  readonly assumedSize: number | null;
  readonly slicingArguments: readonly string[];
  readonly sizedFields: readonly string[];
}

/** The cost directives of one supergraph, by type and by field coordinate (`Type.field`). */
export interface CostIndex {
  readonly typeWeights: ReadonlyMap<string, number>;
  readonly fieldWeights: ReadonlyMap<string, number>;
  readonly listSizes: ReadonlyMap<string, ListSize>;
}

/** Apollo Router's default size of a list nothing sizes. */
export const DEFAULT_LIST_SIZE = 10;
const MUTATION_ROOT_WEIGHT = 10;

const isCost = (name: string) => name === 'cost' || name === 'cost__cost' || name === 'federation__cost';
const isListSize = (name: string) => name === 'listSize' || name === 'cost__listSize' || name === 'federation__listSize';

function argumentsOf(directive: DirectiveNode): Record<string, unknown> {
  return Object.fromEntries((directive.arguments ?? []).map((argument) => [argument.name.value, valueFromASTUntyped(argument.value)]));
}

/** Reads `@cost` and `@listSize` from a supergraph document (read once per supergraph served). */
export function readCostIndex(supergraph: DocumentNode): CostIndex {
  const typeWeights = new Map<string, number>();
  const fieldWeights = new Map<string, number>();
  const listSizes = new Map<string, ListSize>();
  for (const definition of supergraph.definitions) {
    if (!('name' in definition) || !definition.name || !('directives' in definition)) continue;
    const typeName = definition.name.value;
    for (const directive of definition.directives ?? []) {
      if (isCost(directive.name.value)) typeWeights.set(typeName, Number(argumentsOf(directive).weight));
    }
    if (!('fields' in definition) || !definition.fields) continue;
    for (const field of definition.fields) {
      const coordinate = `${typeName}.${field.name.value}`;
      for (const directive of field.directives ?? []) {
        const args = argumentsOf(directive);
        if (isCost(directive.name.value)) fieldWeights.set(coordinate, Number(args.weight));
        if (isListSize(directive.name.value)) {
          listSizes.set(coordinate, {
            assumedSize: typeof args.assumedSize === 'number' ? args.assumedSize : null,
            slicingArguments: Array.isArray(args.slicingArguments) ? (args.slicingArguments as string[]) : [],
            sizedFields: Array.isArray(args.sizedFields) ? (args.sizedFields as string[]) : [],
          });
        }
      }
    }
  }
  return { typeWeights, fieldWeights, listSizes };
}

export interface CostEstimateOptions {
  readonly schema: GraphQLSchema;
  readonly index: CostIndex;
  readonly document: DocumentNode;
  readonly operation: OperationDefinitionNode;
  readonly variables: Readonly<Record<string, unknown>>;
  readonly defaultListSize?: number;
}

/**
 * The variables an operation runs with: each one sent, coerced to its declared type where it fits
 * (`"500"` is no Int, and stays as sent: execution refuses it), and each one not sent given its
 * default value. Never throws: a value that does not fit is the executor's to refuse, later.
 */
export function effectiveVariables(schema: GraphQLSchema, operation: OperationDefinitionNode, sent: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const definition of operation.variableDefinitions ?? []) {
    const name = definition.variable.name.value;
    const type = typeFromAST(schema, definition.type);
    if (Object.hasOwn(sent, name)) {
      const value = sent[name];
      if (!type || !isInputType(type)) values[name] = value;
      else {
        let fits = true;
        const coerced: unknown = coerceInputValue(value, type, () => (fits = false));
        values[name] = fits ? coerced : value;
      }
    } else if (definition.defaultValue) {
      values[name] = type && isInputType(type) ? valueFromAST(definition.defaultValue, type) ?? valueFromASTUntyped(definition.defaultValue) : valueFromASTUntyped(definition.defaultValue);
    }
  }
  return values;
}

/** The estimated cost of an operation; fragments are costed once each (no exponential walk). */
export function estimateCost(options: CostEstimateOptions): number {
  const { schema, index, document, operation } = options;
  const variables = effectiveVariables(schema, operation, options.variables);
  const defaultListSize = options.defaultListSize ?? DEFAULT_LIST_SIZE;
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  const fragmentCosts = new Map<string, number>();
  const inProgress = new Set<string>();

  const valueOf = (node: ArgumentNode) =>
    node.value.kind === Kind.VARIABLE ? variables[node.value.name.value] : valueFromASTUntyped(node.value, variables as Record<string, unknown>);

  const included = (directives: readonly DirectiveNode[] | undefined): boolean => {
    for (const directive of directives ?? []) {
      const name = directive.name.value;
      if (name !== 'skip' && name !== 'include') continue;
      const condition = directive.arguments?.find((a) => a.name.value === 'if');
      const value = condition ? valueOf(condition) : undefined;
      if (typeof value !== 'boolean') continue;
      if ((name === 'skip' && value) || (name === 'include' && !value)) return false;
    }
    return true;
  };

  const introspection = {
    schema,
    included: (selection: { readonly directives?: readonly DirectiveNode[] | undefined }) => included(selection.directives),
    argument: (field: FieldNode, name: string) => {
      const argument = field.arguments?.find((a) => a.name.value === name);
      return argument ? valueOf(argument) : undefined;
    },
    fragment: (name: string) => fragments.get(name),
  };

  const sizeOf = (field: FieldNode, listSize: ListSize | undefined, inherited: number | undefined): number => {
    if (inherited !== undefined) return inherited;
    if (listSize) {
      for (const name of listSize.slicingArguments) {
        const argument = field.arguments?.find((a) => a.name.value === name);
        const value = argument ? valueOf(argument) : undefined;
        if (typeof value === 'number' && Number.isFinite(value)) return Math.max(0, value);
      }
      if (listSize.assumedSize !== null) return listSize.assumedSize;
    }
    return defaultListSize;
  };

  /** The cost of a selection set on `parent`; `sized` maps a field name to a size its parent gave it. */
  const selectionCost = (selectionSet: SelectionSetNode, parent: GraphQLCompositeType, sized: ReadonlyMap<string, number>, root: boolean): number => {
    let cost = 0;
    for (const selection of selectionSet.selections) {
      if (!included(selection.directives)) continue;
      if (selection.kind === Kind.INLINE_FRAGMENT) {
        const on = selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : parent;
        if (on && isCompositeType(on)) cost += selectionCost(selection.selectionSet, on, sized, root);
        continue;
      }
      if (selection.kind === Kind.FRAGMENT_SPREAD) {
        const name = selection.name.value;
        const fragment = fragments.get(name);
        const on = fragment && schema.getType(fragment.typeCondition.name.value);
        // A cycle is invalid GraphQL (validation refuses it later); it adds nothing here.
        if (!fragment || !on || !isCompositeType(on) || inProgress.has(name)) continue;
        // A fragment's cost depends only on the sizes its parent hands down: costed once per sizes.
        const key = `${name}|${[...sized].join(',')}|${root}`;
        const known = fragmentCosts.get(key);
        if (known !== undefined) {
          cost += known;
          continue;
        }
        inProgress.add(name);
        const fragmentCost = selectionCost(fragment.selectionSet, on, sized, root);
        inProgress.delete(name);
        fragmentCosts.set(key, fragmentCost);
        cost += fragmentCost;
        continue;
      }
      const fieldName = selection.name.value;
      if (fieldName === '__schema' || fieldName === '__type') {
        if (root) cost += introspectionCost(selection, introspection);
        continue;
      }
      if (fieldName.startsWith('__')) continue;
      const fieldDef = 'getFields' in parent ? parent.getFields()[fieldName] : undefined;
      if (!fieldDef) continue;
      const coordinate = `${parent.name}.${fieldName}`;
      const named = getNamedType(fieldDef.type);
      const composite = isCompositeType(named);
      const weight = index.fieldWeights.get(coordinate) ?? index.typeWeights.get(named.name) ?? (root && operation.operation === 'mutation' ? MUTATION_ROOT_WEIGHT : composite ? 1 : 0);
      const listSize = index.listSizes.get(coordinate);
      // Sizes this field hands to its sized children (a connection's `nodes` and `edges`).
      const childSizes = new Map<string, number>();
      if (listSize && listSize.sizedFields.length > 0) {
        const size = sizeOf(selection, listSize, undefined);
        for (const child of listSize.sizedFields) childSizes.set(child, size);
      }
      const children = selection.selectionSet && composite ? selectionCost(selection.selectionSet, named as GraphQLCompositeType, childSizes, false) : 0;
      if (isListType(getNullableType(fieldDef.type))) {
        const size = sizeOf(selection, listSize?.sizedFields.length ? undefined : listSize, sized.get(fieldName));
        cost += size * (weight + children);
      } else cost += weight + children;
    }
    return cost;
  };

  const root = operation.operation === 'mutation' ? schema.getMutationType() : operation.operation === 'subscription' ? schema.getSubscriptionType() : schema.getQueryType();
  if (!root || !isObjectType(root)) return 0;
  return selectionCost(operation.selectionSet, root, new Map(), true);
}

export interface CostLimitOptions {
  readonly allowanceOf: AllowanceOf;
  /** The API schema and the cost index of the supergraph being served. */
  readonly served: () => { readonly schema: GraphQLSchema; readonly index: CostIndex } | undefined;
  readonly refuse: Refuse;
  readonly metrics: Metrics;
  /** The client of the request, for the metric. */
  readonly clientOf: (req: Parameters<RequestHandler>[0], res: Parameters<RequestHandler>[1]) => string;
}

function overBudget(cost: number, budget: number): Refusal {
  return {
    code: 'COST_LIMIT_EXCEEDED',
    message: `The operation's estimated cost (${cost}) exceeds the budget of ${budget}; ask for smaller pages or fewer fields.`,
    extensions: { cost, budget },
  };
}

/**
 * Admits one page of a CSV export: its cost (with that page's size) within the caller's budget, then
 * spent from the caller's rate buckets. An export is charged what its pages cost.
 */
export function createPageAdmission(options: {
  readonly allowanceOf: AllowanceOf;
  readonly served: CostLimitOptions['served'];
  readonly spend: (req: Request, res: Response, cost: number) => Promise<Refusal | null>;
  readonly metrics: Metrics;
}): (req: Request, res: Response, page: { document: DocumentNode; variables: Record<string, unknown> }) => Promise<Refusal | null> {
  const { allowanceOf, served, spend, metrics } = options;
  return async (req, res, { document, variables }) => {
    const current = served();
    const operation = getOperationAST(document);
    if (!current || !operation) return null;
    const cost = estimateCost({ schema: current.schema, index: current.index, document, operation, variables });
    const budget = allowanceOf(res.locals.principal!).maxCost;
    if (cost > budget) return overBudget(cost, budget);
    const refusal = await spend(req, res, cost);
    if (!refusal) metrics.estimatedCost.inc({ client: metrics.clientLabel(res.locals.principal!.client) }, cost);
    return refusal;
  };
}

// Estimates of recent operations, per cost index (a supergraph's), per parsed operation (the
// limits keep one parsed document per query text), by variables: the walk depends on these alone.
const estimates = new WeakMap<CostIndex, WeakMap<OperationDefinitionNode, LRUCache<string, number>>>();
/** The longest variables (as JSON) whose work is kept with an operation; longer ones are worked out each time. */
export const MAX_REMEMBERED_VARIABLES = 2_048;

function estimateCostCached(options: CostEstimateOptions): number {
  let byOperation = estimates.get(options.index);
  if (!byOperation) {
    byOperation = new WeakMap();
    estimates.set(options.index, byOperation);
  }
  let byVariables = byOperation.get(options.operation);
  if (!byVariables) {
    byVariables = new LRUCache<string, number>({ max: 100 });
    byOperation.set(options.operation, byVariables);
  }
  const key = JSON.stringify(options.variables);
  // Large variables are costed each time: kept, a stream of them would hold their text in memory.
  if (key.length > MAX_REMEMBERED_VARIABLES) return estimateCost(options);
  let cost = byVariables.get(key);
  if (cost === undefined) {
    cost = estimateCost(options);
    byVariables.set(key, cost);
  }
  return cost;
}

/** Express middleware after the operation limits (which parsed the document): refuses over budget. */
export function useCostLimit(options: CostLimitOptions): RequestHandler {
  const { allowanceOf, served, refuse, metrics, clientOf } = options;
  return (req, res, next) => {
    const parsed = res.locals.parsedOperation;
    const current = served();
    if (!parsed || !current) return next();
    const cost = estimateCostCached({ schema: current.schema, index: current.index, ...parsed });
    const budget = allowanceOf(res.locals.principal!).maxCost;
    if (cost > budget) {
      refuse(req, res, overBudget(cost, budget));
      return;
    }
    res.locals.estimatedCost = cost;
    metrics.estimatedCost.inc({ client: metrics.clientLabel(clientOf(req, res)) }, cost);
    next();
  };
}

/** The request header that asks for the cost in the response: `x-include-cost: true`. */
export const INCLUDE_COST_HEADER = 'x-include-cost';

export interface CostReportContext {
  /** The estimate the cost limit admitted, if it ran. */
  readonly estimatedCost: number | null;
  readonly costBudget: number;
  /** Rows the subgraphs returned to this operation so far (the actual cost). */
  readonly actualRows: { rows: number };
}

/** Adds `extensions.cost: { estimated, budget, actualRows }` to the answer when the request asks. */
export function useCostReport(): ApolloServerPlugin<CostReportContext> {
  return {
    async requestDidStart({ request }) {
      if (request.http?.headers.get(INCLUDE_COST_HEADER) !== 'true') return;
      return {
        async willSendResponse({ response, contextValue }) {
          if (response.body.kind !== 'single') return;
          const result = response.body.singleResult;
          result.extensions = {
            ...result.extensions,
            cost: { estimated: contextValue.estimatedCost, budget: contextValue.costBudget, actualRows: contextValue.actualRows.rows },
          };
        },
      };
    },
  };
}
