/**
 * Field-level enforcement in a subgraph: every field resolver of the built schema (default
 * resolvers included) and every entity's `__resolveReference` is wrapped with the access decision
 * of the request's principal, and a visible field's value is masked when the principal gets a mask. Decisions come from the request's RequestPolicy, computed once per
 * field per request.
 */
import { defaultFieldResolver, isObjectType, Kind, responsePathAsArray, type DocumentNode, type GraphQLSchema } from 'graphql';
import type { AuditCollector } from '../../policy/audit.js';
import { levelRank, type Level } from '../../policy/rules.js';
import { deniedError, type Decision, type RequestPolicy } from '../../policy/decide.js';
import type { Masker } from '../../policy/masking.js';

export interface PolicyContext {
  readonly policy: RequestPolicy;
  /** The operation's audit facts, counted in memory. */
  readonly audit: AuditCollector;
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function';
}

/** Masks a value, or every item of a (nested) list. */
function maskAll(masker: Masker, value: unknown): unknown {
  return Array.isArray(value) ? value.map((item) => maskAll(masker, item)) : masker(value);
}

type ReferenceResolver = (reference: object, context: PolicyContext, info: unknown) => unknown;

/** The top-level key fields of each entity type (`@key(fields: "id")` → `id`). */
export function keyFieldsOf(document: DocumentNode): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OBJECT_TYPE_DEFINITION && definition.kind !== Kind.OBJECT_TYPE_EXTENSION) continue;
    const key = definition.directives?.find((directive) => directive.name.value === 'key');
    const fields = key?.arguments?.find((arg) => arg.name.value === 'fields')?.value;
    if (fields?.kind === Kind.STRING) keys.set(definition.name.value, fields.value.split(/[\s{}]+/).filter(Boolean));
  }
  return keys;
}

/** What one field does in one request, prepared at its first value and reused for every row. */
interface FieldPlan {
  readonly denied: Extract<Decision, { allowed: false }> | null;
  readonly masker: Masker | null;
  /** The audit facts each value counts into. */
  readonly facts: readonly { count: number }[];
  readonly strict: boolean;
}

/**
 * Wraps the schema's resolvers in place (the schema keeps Apollo's subgraph extensions). Values at
 * or above `strictLevel` are noted for strict-mode audit.
 */
export function enforceFieldPolicy(
  schema: GraphQLSchema,
  keyFields: ReadonlyMap<string, readonly string[]>,
  strictLevel: Level,
): void {
  const strictRank = levelRank(strictLevel);
  const plans = new WeakMap<PolicyContext, Map<string, FieldPlan>>();
  const planOf = (context: PolicyContext, typeName: string, fieldName: string, coordinate: string): FieldPlan => {
    let byField = plans.get(context);
    if (!byField) {
      byField = new Map();
      plans.set(context, byField);
    }
    let plan = byField.get(coordinate);
    if (!plan) {
      const decision = context.policy.field(typeName, fieldName);
      const { rule, level } = decision.policy;
      if (!decision.allowed) {
        plan = { denied: decision, masker: null, facts: [context.audit.fact(coordinate, 'deny', rule)], strict: false };
      } else {
        const { wouldDeny, wouldMask } = decision.shadow;
        const facts = [
          decision.mask ? context.audit.fact(coordinate, 'mask', decision.mask.rule, decision.mask.strategy) : context.audit.fact(coordinate, 'allow', rule),
          ...(wouldDeny ? [context.audit.fact(coordinate, 'would-deny', `shadow: ${rule}`)] : []),
          ...(wouldMask ? [context.audit.fact(coordinate, 'would-mask', wouldMask.rule, wouldMask.strategy)] : []),
        ];
        plan = { denied: null, masker: context.policy.masker(typeName, fieldName), facts, strict: levelRank(level) >= strictRank };
      }
      byField.set(coordinate, plan);
    }
    return plan;
  };
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__')) continue;
    for (const field of Object.values(type.getFields())) {
      const resolve = field.resolve ?? defaultFieldResolver;
      const coordinate = `${type.name}.${field.name}`;
      // The plan of the request this field last resolved in: a list's rows reuse it without a
      // lookup (held weakly: a finished request's context is not kept alive by it).
      let lastContext: WeakRef<PolicyContext> | undefined;
      let lastPlan: FieldPlan | undefined;
      field.resolve = (source, args, context: PolicyContext, info) => {
        let plan = lastContext?.deref() === context ? lastPlan! : undefined;
        if (!plan) {
          plan = planOf(context, type.name, field.name, coordinate);
          lastContext = new WeakRef(context);
          lastPlan = plan;
        }
        for (const fact of plan.facts) fact.count += 1;
        if (plan.denied) throw deniedError(plan.denied);
        if (plan.strict) context.audit.strictPaths.push(responsePathAsArray(info.path));
        const value = resolve(source, args, context, info);
        // The raw value never leaves the domain for a masked principal: it is masked right here.
        const { masker } = plan;
        if (!masker) return value;
        return isPromiseLike(value) ? Promise.resolve(value).then((resolved) => maskAll(masker, resolved)) : maskAll(masker, value);
      };
    }
    // An entity may only be looked up by whoever may read its key: `_entities` must not tell a
    // principal which ids exist when the ids themselves are closed to it.
    const subgraph = (type.extensions as { apollo?: { subgraph?: { resolveReference?: ReferenceResolver } } }).apollo?.subgraph;
    const resolveReference = subgraph?.resolveReference;
    if (subgraph && resolveReference) {
      const keys = keyFields.get(type.name) ?? [];
      // Async: a denial rejects this entity only; a synchronous throw would fail every entity of
      // the `_entities` call, since @apollo/subgraph resolves them in one map.
      subgraph.resolveReference = async (reference, context, info) => {
        for (const key of keys) {
          const decision = context.policy.field(type.name, key);
          if (!decision.allowed) {
            context.audit.count(decision.policy.coordinate, 'deny', decision.policy.rule);
            throw deniedError(decision);
          }
        }
        return resolveReference(reference, context, info);
      };
    }
  }
}
