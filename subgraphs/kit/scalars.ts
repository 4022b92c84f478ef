/**
 * The types every domain subgraph shares (`common.graphql`): the bootstrap adds them to each
 * domain's SDL. Scalar values come from the warehouse already in their wire form (see
 * WarehouseValue), so the scalars only validate inputs.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'graphql';
import { DateTimeResolver, LocalDateResolver } from 'graphql-scalars';

export const commonTypeDefs = parse(readFileSync(new URL('./common.graphql', import.meta.url), 'utf8'));

export const scalarResolvers = {
  LocalDate: LocalDateResolver,
  DateTime: DateTimeResolver,
};

/** A DateTime argument (parsed to a Date by the scalar) as the UTC ISO text the warehouse compares. */
export function toTimestampParameter(value: Date): string {
  return value.toISOString();
}
