/**
 * Custom scalars validated at the gateway. In a supergraph a custom scalar is opaque: the gateway
 * would let `customerList(to: "2024-02-30")` through and leave the subgraph to refuse it, after
 * planning and partway through the answer. A scalar that declares its specification with
 * `@specifiedBy(url:)` (as `LocalDate` and `DateTime` do, in `subgraphs/kit/common.graphql`), when
 * the gateway knows that specification, has its inputs checked here as the subgraphs check them
 * (the same graphql-scalars implementations): a bad literal is a 400 `GRAPHQL_VALIDATION_FAILED`, a
 * bad variable a 400 `BAD_USER_INPUT`, before anything is planned. Values pass on unchanged: the
 * subgraph still parses them itself.
 */
import { GraphQLScalarType, isScalarType, valueFromASTUntyped, type GraphQLSchema } from 'graphql';
import { DateTimeResolver, LocalDateResolver } from 'graphql-scalars';

/** The specifications the gateway can check, by their `@specifiedBy` URL. */
const KNOWN: ReadonlyMap<string, GraphQLScalarType<unknown, unknown>> = new Map<string, GraphQLScalarType<unknown, unknown>>([
  ['https://www.rfc-editor.org/rfc/rfc3339#section-5.6', LocalDateResolver],
  ['https://scalars.graphql.org/andimarek/date-time', DateTimeResolver],
]);

/** Installs input checks on the schema's scalars whose specification is known; returns their names. */
export function validateKnownScalars(schema: GraphQLSchema): string[] {
  const checked: string[] = [];
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isScalarType(type) || !type.specifiedByURL) continue;
    const spec = KNOWN.get(type.specifiedByURL);
    if (!spec) continue;
    // Validate only: the raw value is what the gateway forwards.
    type.parseValue = (value) => {
      spec.parseValue(value);
      return value;
    };
    type.parseLiteral = (node, variables) => {
      spec.parseLiteral(node, variables);
      return valueFromASTUntyped(node, variables);
    };
    checked.push(type.name);
  }
  return checked;
}
