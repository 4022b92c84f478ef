/**
 * What an introspection selection costs: one per object its answer holds (a `__Type`, `__Field`,
 * `__InputValue`, `__EnumValue` or `__Directive`), counted against the served schema itself, so
 * that the estimate is the answer's real size, not a guess. The standard introspection query of the
 * mesh's API schema holds about 1,300 objects (within the anonymous budget); fifteen aliased copies
 * of it hold fifteen times as many.
 *
 * The count is worked out once per selection set and schema element (a fragment spread on many
 * types is counted once per type), so that its work stays bounded by the document times the
 * schema, however large the count it arrives at. `includeDeprecated` is read as true (an upper bound).
 */
import {
  getNamedType,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isListType,
  isNonNullType,
  isObjectType,
  isUnionType,
  Kind,
  type FieldNode,
  type GraphQLArgument,
  type GraphQLDirective,
  type GraphQLEnumValue,
  type GraphQLField,
  type GraphQLInputField,
  type GraphQLSchema,
  type GraphQLType,
  type SelectionSetNode,
} from 'graphql';

/** The introspection types whose objects count, and what each of their object fields holds. */
type Introspected =
  | { readonly kind: '__Schema' }
  | { readonly kind: '__Type'; readonly type: GraphQLType }
  | { readonly kind: '__Field'; readonly field: GraphQLField<unknown, unknown> }
  | { readonly kind: '__InputValue'; readonly value: GraphQLArgument | GraphQLInputField }
  | { readonly kind: '__EnumValue'; readonly value: GraphQLEnumValue }
  | { readonly kind: '__Directive'; readonly directive: GraphQLDirective };

export interface IntrospectionCostOptions {
  readonly schema: GraphQLSchema;
  /** Whether a selection is included (`@skip`/`@include` with a known condition). */
  readonly included: (selection: { readonly directives?: FieldNode['directives'] }) => boolean;
  /** An argument's value (literal or variable). */
  readonly argument: (field: FieldNode, name: string) => unknown;
  /** The document's fragments by name. */
  readonly fragment: (name: string) => { readonly selectionSet: SelectionSetNode; readonly typeCondition: { readonly name: { readonly value: string } } } | undefined;
}

/** The objects a root introspection field (`__schema` or `__type`) answers with, itself included. */
export function introspectionCost(field: FieldNode, options: IntrospectionCostOptions): number {
  const { schema } = options;
  // Per selection set, per schema element (or `schema` itself for __Schema): the objects below it.
  const memo = new WeakMap<SelectionSetNode, Map<unknown, number>>();
  // A fragment that spreads itself is invalid GraphQL (validation refuses it later): it adds nothing here.
  const inProgress = new Set<string>();

  const identity = (of: Introspected): unknown =>
    of.kind === '__Schema' ? schema : of.kind === '__Type' ? of.type : of.kind === '__Field' ? of.field : of.kind === '__Directive' ? of.directive : of.value;

  /** The objects an object field of `of` answers with. */
  const children = (of: Introspected, name: string): Introspected[] => {
    switch (of.kind) {
      case '__Schema': {
        const type = (t: GraphQLType | null | undefined): Introspected[] => (t ? [{ kind: '__Type', type: t }] : []);
        if (name === 'types') return Object.values(schema.getTypeMap()).map((t) => ({ kind: '__Type', type: t }));
        if (name === 'queryType') return type(schema.getQueryType());
        if (name === 'mutationType') return type(schema.getMutationType());
        if (name === 'subscriptionType') return type(schema.getSubscriptionType());
        if (name === 'directives') return schema.getDirectives().map((directive) => ({ kind: '__Directive', directive }));
        return [];
      }
      case '__Type': {
        const { type } = of;
        if (name === 'ofType') return isListType(type) || isNonNullType(type) ? [{ kind: '__Type', type: type.ofType }] : [];
        if (name === 'fields') return isObjectType(type) || isInterfaceType(type) ? Object.values(type.getFields()).map((field) => ({ kind: '__Field', field })) : [];
        if (name === 'interfaces') return isObjectType(type) || isInterfaceType(type) ? type.getInterfaces().map((t) => ({ kind: '__Type', type: t })) : [];
        if (name === 'possibleTypes') return isUnionType(type) || isInterfaceType(type) ? schema.getPossibleTypes(type).map((t) => ({ kind: '__Type', type: t })) : [];
        if (name === 'enumValues') return isEnumType(type) ? type.getValues().map((value) => ({ kind: '__EnumValue', value })) : [];
        if (name === 'inputFields') return isInputObjectType(type) ? Object.values(type.getFields()).map((value) => ({ kind: '__InputValue', value })) : [];
        return [];
      }
      case '__Field':
        if (name === 'args') return of.field.args.map((value) => ({ kind: '__InputValue', value }));
        if (name === 'type') return [{ kind: '__Type', type: of.field.type }];
        return [];
      case '__InputValue':
        return name === 'type' ? [{ kind: '__Type', type: of.value.type }] : [];
      case '__Directive':
        return name === 'args' ? of.directive.args.map((value) => ({ kind: '__InputValue', value })) : [];
      case '__EnumValue':
        return [];
    }
  };

  const below = (selectionSet: SelectionSetNode, of: Introspected): number => {
    let byElement = memo.get(selectionSet);
    if (!byElement) memo.set(selectionSet, (byElement = new Map()));
    const key = identity(of);
    const known = byElement.get(key);
    if (known !== undefined) return known;
    let cost = 0;
    for (const selection of selectionSet.selections) {
      if (!options.included(selection)) continue;
      if (selection.kind === Kind.INLINE_FRAGMENT) {
        if (!selection.typeCondition || selection.typeCondition.name.value === of.kind) cost += below(selection.selectionSet, of);
        continue;
      }
      if (selection.kind === Kind.FRAGMENT_SPREAD) {
        const name = selection.name.value;
        const fragment = options.fragment(name);
        if (!fragment || fragment.typeCondition.name.value !== of.kind || inProgress.has(name)) continue;
        inProgress.add(name);
        cost += below(fragment.selectionSet, of);
        inProgress.delete(name);
        continue;
      }
      if (!selection.selectionSet) continue; // a scalar (or __typename): 0
      for (const child of children(of, selection.name.value)) cost += 1 + below(selection.selectionSet, child);
    }
    byElement.set(key, cost);
    return cost;
  };

  if (!field.selectionSet) return 0;
  if (field.name.value === '__schema') return 1 + below(field.selectionSet, { kind: '__Schema' });
  if (field.name.value === '__type') {
    const name = options.argument(field, 'name');
    const type = typeof name === 'string' ? schema.getType(name) : undefined;
    return type ? 1 + below(field.selectionSet, { kind: '__Type', type: getNamedType(type) }) : 0;
  }
  return 0;
}
