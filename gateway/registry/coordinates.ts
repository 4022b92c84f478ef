/**
 * Schema coordinates: which parts of the schema an operation uses (`Type.field`,
 * `Type.field.argument`, `Input.field`, `Enum.VALUE`), and whether a change touches them.
 *
 * A value passed in a variable is not in the document, so an argument whose input type is given
 * by a variable counts as using that whole type (`CustomerFilter`): the judgement errs towards
 * "in use", never towards "safe".
 */
import {
  getNamedType,
  isEnumType,
  isInputObjectType,
  TypeInfo,
  visit,
  visitWithTypeInfo,
  Kind,
  type DocumentNode,
  type GraphQLSchema,
} from 'graphql';

export function coordinatesOf(schema: GraphQLSchema, document: DocumentNode): Set<string> {
  const used = new Set<string>();
  const typeInfo = new TypeInfo(schema);
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      Field(node) {
        const parent = typeInfo.getParentType();
        if (parent && !node.name.value.startsWith('__') && typeInfo.getFieldDef()) used.add(`${parent.name}.${node.name.value}`);
      },
      Argument(node) {
        const field = typeInfo.getFieldDef();
        const parent = typeInfo.getParentType();
        const argument = typeInfo.getArgument();
        if (!field || !parent || !argument) return;
        used.add(`${parent.name}.${field.name}.${node.name.value}`);
        if (node.value.kind === Kind.VARIABLE) {
          const named = getNamedType(argument.type);
          if (isInputObjectType(named) || isEnumType(named)) used.add(named.name);
        }
      },
      ObjectField(node) {
        const parent = typeInfo.getParentInputType();
        const named = parent && getNamedType(parent);
        if (named && isInputObjectType(named)) {
          used.add(`${named.name}.${node.name.value}`);
          const field = named.getFields()[node.name.value];
          const inner = field && getNamedType(field.type);
          if (node.value.kind === Kind.VARIABLE && inner && (isInputObjectType(inner) || isEnumType(inner))) used.add(inner.name);
        }
      },
      EnumValue(node) {
        const type = typeInfo.getInputType();
        const named = type && getNamedType(type);
        if (named && isEnumType(named)) used.add(`${named.name}.${node.value}`);
      },
    }),
  );
  return used;
}

/**
 * Whether a change at `changed` (a coordinate) touches a used coordinate: the same one, a part of
 * it (an argument of a removed field, a field of a removed type), or a whole type used through a
 * variable. For an addition (a new required argument or input field), what is used is its parent.
 */
export function touches(changed: string, used: string, addition = false): boolean {
  const target = addition ? changed.split('.').slice(0, -1).join('.') : changed;
  if (!target) return false;
  if (used === target || used.startsWith(`${target}.`)) return true;
  // A whole type used through a variable: any change inside it touches it.
  return !used.includes('.') && target.startsWith(`${used}.`);
}
