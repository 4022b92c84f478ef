import { buildSchema, parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { coordinatesOf, touches } from './coordinates.js';

const schema = buildSchema(`
  type Query { customers(first: Int, filter: CustomerFilter): [Customer!]! customer(id: ID!): Customer }
  type Customer { id: ID! name: String region: Region orders(status: Status): [Order!] }
  type Order { id: ID! }
  enum Region { EMEA APAC }
  enum Status { OPEN PAID }
  input CustomerFilter { region: [Region!] nameContains: String nested: Nested }
  input Nested { deep: Int }
`);

describe('schema coordinates an operation uses', () => {
  it('lists fields, arguments, input fields and enum values, through fragments', () => {
    const document = parse(`
      query Q { customers(first: 5, filter: { region: [EMEA], nested: { deep: 1 } }) { ...C } }
      fragment C on Customer { id name orders(status: PAID) { id } __typename }
    `);
    expect([...coordinatesOf(schema, document)].sort()).toEqual([
      'Customer.id',
      'Customer.name',
      'Customer.orders',
      'Customer.orders.status',
      'CustomerFilter.nested',
      'CustomerFilter.region',
      'Nested.deep',
      'Order.id',
      'Query.customers',
      'Query.customers.filter',
      'Query.customers.first',
      'Region.EMEA',
      'Status.PAID',
    ]);
  });

  it('counts a whole input or enum type as used when its value comes in a variable', () => {
    const document = parse(`query Q($f: CustomerFilter, $s: Status) { customers(filter: $f) { orders(status: $s) { id } } }`);
    const used = coordinatesOf(schema, document);
    expect(used).toContain('CustomerFilter');
    expect(used).toContain('Status');
  });

  it('ignores what the schema does not have (an invalid document uses nothing it names)', () => {
    expect([...coordinatesOf(schema, parse('{ nope { id } customer(id: "1") { ghost } }'))]).toEqual(['Query.customer', 'Query.customer.id']);
  });
});

describe('whether a change touches a used coordinate', () => {
  it('matches the coordinate itself, its parts, and types used whole', () => {
    expect(touches('Customer.name', 'Customer.name')).toBe(true);
    expect(touches('Customer', 'Customer.name')).toBe(true); // a removed type
    expect(touches('Customer.orders', 'Customer.orders.status')).toBe(true); // a removed field whose argument is used
    expect(touches('CustomerFilter.region', 'CustomerFilter')).toBe(true); // the filter comes in a variable
    expect(touches('Customer.name', 'Customer.id')).toBe(false);
    expect(touches('Customer.orders.status', 'Customer.orders')).toBe(false); // the argument itself is not used
    expect(touches('Customer.na', 'Customer.name')).toBe(false);
  });

  it('judges an addition (a new required argument or input field) by its parent', () => {
    expect(touches('Query.customers.tenant', 'Query.customers', true)).toBe(true);
    expect(touches('CustomerFilter.tenant', 'CustomerFilter.region', true)).toBe(true);
    expect(touches('Query.customer.tenant', 'Query.customers', true)).toBe(false);
  });
});
