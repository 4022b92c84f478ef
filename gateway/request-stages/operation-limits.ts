/**
 * Operation limits: a document is measured before Apollo Server parses, validates or plans it, and
 * refused with HTTP 400 and a code naming the limit when it is too big for its caller.
 *
 * Tokens are counted while parsing and parsing stops at the limit (GraphQL Armor's token-counting
 * parser), so a huge document costs no more than the limit. Depth, aliases and directives are GraphQL
 * Armor's validation rules, run alone (without graphql-js's standard rules, some of which are
 * quadratic on hostile documents). Armor has no rule for root fields or fragment definitions; those
 * two are counted here. The parsed document is handed on (`res.locals.parsedOperation`) to the cost
 * analysis, so that nothing is parsed twice before Apollo Server.
 *
 * Introspection keeps working: armor's depth rule does not count inside `__schema`, and the
 * introspection queries of GraphiQL and codegen fit the other defaults.
 */
import { LRUCache } from 'lru-cache';
import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import { MaxTokensParserWLexer } from '@escape.tech/graphql-armor-max-tokens';
import type { RequestHandler } from 'express';
import {
  getOperationAST,
  GraphQLError,
  Kind,
  validate,
  type DocumentNode,
  type GraphQLSchema,
  type SelectionSetNode,
  type ValidationRule,
} from 'graphql';
import type { ErrorCode } from '../../policy/errors.js';
import type { AllowanceOf, OperationLimits } from './allowances.js';
import type { Refuse } from './refusals.js';
import { requestedOperation } from './requested-operation.js';
import './request-state.js';

export interface OperationLimitsOptions {
  /** The limits of the request's principal. */
  readonly allowanceOf: AllowanceOf;
  /** The API schema being served (validation rules need one), or undefined before the first. */
  readonly schema: () => GraphQLSchema | undefined;
  /** Answers and records a refusal (audit, metrics). */
  readonly refuse: Refuse;
}

export type LimitCode =
  | 'MAX_TOKENS_EXCEEDED'
  | 'MAX_DEPTH_EXCEEDED'
  | 'MAX_ALIASES_EXCEEDED'
  | 'MAX_ROOT_FIELDS_EXCEEDED'
  | 'MAX_DIRECTIVES_EXCEEDED'
  | 'MAX_FRAGMENTS_EXCEEDED';

export interface LimitExceeded {
  readonly code: LimitCode & ErrorCode;
  /** What was measured, as the message names it: `depth`, `aliases`, … */
  readonly measure: string;
  readonly value: number;
  readonly limit: number;
  /** The value is a lower bound: measuring stopped at the limit (tokens). */
  readonly atLeast: boolean;
}

function countRootFields(selectionSet: SelectionSetNode, document: DocumentNode, seen = new Set<string>()): number {
  let count = 0;
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) count += selection.name.value === '__typename' ? 0 : 1;
    else if (selection.kind === Kind.INLINE_FRAGMENT) count += countRootFields(selection.selectionSet, document, seen);
    else if (!seen.has(selection.name.value)) {
      seen.add(selection.name.value);
      const fragment = document.definitions.find((d) => d.kind === Kind.FRAGMENT_DEFINITION && d.name.value === selection.name.value);
      if (fragment?.kind === Kind.FRAGMENT_DEFINITION) count += countRootFields(fragment.selectionSet, document, seen);
    }
  }
  return count;
}

/**
 * Whether a JSON value (the variables) nests deeper than `limit` objects and arrays; walked without
 * recursion, and stopped at the limit, so that 10,000 levels cost no stack and little time. Every
 * later step that serialises the variables (the cost key, the audit's hash, the response cache key)
 * would otherwise overflow the stack on such a value.
 */
export function nestsDeeperThan(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop()!;
    if (current === null || typeof current !== 'object') continue;
    if (depth + 1 > limit) return true;
    for (const child of Array.isArray(current) ? current : Object.values(current)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}

/** Armor's messages end with `found N.`: the measured value. */
function foundIn(error: GraphQLError): number {
  const match = /found (\d+)/.exec(error.message);
  return match ? Number(match[1]) : Number.NaN;
}

/** Measures a document against the limits; the first limit it exceeds, or its parsed form. */
export function measureDocument(options: {
  readonly query: string;
  readonly limits: OperationLimits;
  readonly schema: GraphQLSchema;
}): { exceeded: LimitExceeded } | { document: DocumentNode } | { unparsable: true } {
  const { query, limits, schema } = options;
  let document: DocumentNode;
  try {
    document = new MaxTokensParserWLexer(query, { n: limits.maxTokens, exposeLimits: true }).parseDocument();
  } catch (error) {
    if (error instanceof GraphQLError && /Token limit of \d+ exceeded/.test(error.message)) {
      return { exceeded: { code: 'MAX_TOKENS_EXCEEDED', measure: 'tokens', value: limits.maxTokens + 1, limit: limits.maxTokens, atLeast: true } };
    }
    // A syntax error: Apollo Server reports it (GRAPHQL_PARSE_FAILED) with its line and column.
    return { unparsable: true };
  }
  const fragments = document.definitions.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION).length;
  if (fragments > limits.maxFragments) {
    return { exceeded: { code: 'MAX_FRAGMENTS_EXCEEDED', measure: 'fragments', value: fragments, limit: limits.maxFragments, atLeast: false } };
  }
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OPERATION_DEFINITION) continue;
    const rootFields = countRootFields(definition.selectionSet, document);
    if (rootFields > limits.maxRootFields) {
      return { exceeded: { code: 'MAX_ROOT_FIELDS_EXCEEDED', measure: 'root fields', value: rootFields, limit: limits.maxRootFields, atLeast: false } };
    }
  }
  let exceeded: LimitExceeded | undefined;
  const onReject = (code: LimitCode & ErrorCode, measure: string, limit: number) => [
    (_context: unknown, error: GraphQLError) => {
      exceeded ??= { code, measure, value: foundIn(error), limit, atLeast: false };
    },
  ];
  const rules: ValidationRule[] = [
    maxDepthRule({ n: limits.maxDepth, flattenFragments: true, propagateOnRejection: false, onReject: onReject('MAX_DEPTH_EXCEEDED', 'depth', limits.maxDepth) }),
    maxAliasesRule({ n: limits.maxAliases, propagateOnRejection: false, onReject: onReject('MAX_ALIASES_EXCEEDED', 'aliases', limits.maxAliases) }),
    maxDirectivesRule({ n: limits.maxDirectives, propagateOnRejection: false, onReject: onReject('MAX_DIRECTIVES_EXCEEDED', 'directives', limits.maxDirectives) }),
  ] as unknown as ValidationRule[];
  validate(schema, document, rules);
  if (exceeded) return { exceeded };
  return { document };
}

type Measured = ReturnType<typeof measureDocument>;

/** The measures of the documents seen lately, per schema: a dashboard sends the same few documents again and again. */
const measuredBySchema = new WeakMap<GraphQLSchema, LRUCache<string, Measured>>();

function measureCached(query: string, limits: OperationLimits, schema: GraphQLSchema): Measured {
  let cache = measuredBySchema.get(schema);
  if (!cache) {
    cache = new LRUCache<string, Measured>({ max: 1_000 });
    measuredBySchema.set(schema, cache);
  }
  // The result depends on the document, the schema and the limits only.
  const key = `${limits.maxTokens},${limits.maxDepth},${limits.maxAliases},${limits.maxRootFields},${limits.maxDirectives},${limits.maxFragments}\n${query}`;
  let measured = cache.get(key);
  if (!measured) {
    measured = measureDocument({ query, limits, schema });
    cache.set(key, measured);
  }
  return measured;
}

export function limitMessage(exceeded: LimitExceeded): string {
  const value = exceeded.atLeast ? `more than ${exceeded.limit}` : String(exceeded.value);
  return `The operation's ${exceeded.measure} (${value}) exceeds the limit of ${exceeded.limit}.`;
}

/** Express middleware, after authentication and trusted documents, before Apollo Server. */
export function useOperationLimits(options: OperationLimitsOptions): RequestHandler {
  const { allowanceOf, schema, refuse } = options;
  return (req, res, next) => {
    const { query, operationName, variables } = requestedOperation(req);
    const served = schema();
    // Not a single query text (batch, none, wrong type): Apollo Server refuses it with its own code.
    if (typeof query !== 'string' || served === undefined) return next();
    const principal = res.locals.principal!;
    const limits = allowanceOf(principal);
    // The variables object itself is one level; values inside it nest as deep as the fields may.
    if (nestsDeeperThan(variables, limits.maxDepth + 1)) {
      refuse(req, res, { code: 'MAX_DEPTH_EXCEEDED', message: `The operation's variables nest deeper than the limit of ${limits.maxDepth}.`, extensions: { limit: limits.maxDepth, value: `>${limits.maxDepth}` } });
      return;
    }
    const measured = measureCached(query, limits, served);
    if ('exceeded' in measured) {
      const { exceeded } = measured;
      refuse(req, res, { code: exceeded.code, message: limitMessage(exceeded), extensions: { limit: exceeded.limit, value: exceeded.atLeast ? `>${exceeded.limit}` : exceeded.value } });
      return;
    }
    if ('document' in measured) {
      const operation = getOperationAST(measured.document, typeof operationName === 'string' ? operationName : undefined);
      if (operation) {
        const vars = variables && typeof variables === 'object' && !Array.isArray(variables) ? (variables as Record<string, unknown>) : {};
        res.locals.parsedOperation = { document: measured.document, operation, variables: vars };
      }
    }
    next();
  };
}
