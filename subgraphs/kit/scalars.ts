/**
 * Scalars every domain declares the same way in its SDL. Values come from the warehouse already in
 * their wire form (see WarehouseValue), so these only validate inputs.
 */
import { DateTimeResolver, LocalDateResolver } from 'graphql-scalars';

export const scalarResolvers = {
  LocalDate: LocalDateResolver,
  DateTime: DateTimeResolver,
};

/** A DateTime argument (parsed to a Date by the scalar) as the UTC ISO text the warehouse compares. */
export function toTimestampParameter(value: Date): string {
  return value.toISOString();
}
