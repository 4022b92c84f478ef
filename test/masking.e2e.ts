/**
 * Masking end to end: for a masked principal the raw value of a masked field never appears, in the
 * answer, in an error or in a log line, whatever the shape of the query.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_HASH_KEY } from '../policy/masking.js';
import { logLines, startTestMesh, tokenFor, type TestMesh, postSubgraph } from './harness/mesh.js';
import { expectedPseudonym } from './harness/pseudonym.js';

let mesh: TestMesh;
const analyst = `Bearer ${tokenFor({ subject: 'ana', roles: ['analyst'], regions: ['EMEA'], purpose: 'analytics' })}`;
const support = `Bearer ${tokenFor({ subject: 'sam', roles: ['support'], regions: ['EMEA'] })}`;
/** The pseudonyms HASH gives under the development key, computed apart with openssl (test/harness/pseudonym.ts), once each. */
const hashes = new Map<string, string>();
const hash = (value: string, coordinate: string) => {
  const id = `${coordinate}\u0000${value}`;
  if (!hashes.has(id)) hashes.set(id, expectedPseudonym(DEV_HASH_KEY, coordinate, value));
  return hashes.get(id)!;
};

interface Person {
  id: string;
  name: string;
  email: string;
  phone: string;
}
let people: Person[];

beforeAll(async () => {
  mesh = await startTestMesh();
  people = await mesh.sql<Person>('customers', "select id, name, email, phone from customers where region = 'EMEA' order by id limit 3");
});

afterAll(async () => {
  await mesh?.stop();
});

/** Fails when any raw personal value of the sample shows up in the text. */
function expectNoRawValues(text: string): void {
  for (const person of people) {
    for (const raw of [person.name, person.email, person.phone]) expect(text, `raw value ${raw} leaked`).not.toContain(raw);
  }
}

describe('masked for an analyst: pii as a keyed hash', () => {
  const shapes: [string, string, (data: any) => any[]][] = [
    ['a list', '{ customers(first: 3) { nodes { id name email phone } } }', (d) => d.customers.nodes],
    ['aliases', '{ customers(first: 3) { nodes { id who: name mail: email name email phone } } }', (d) => d.customers.nodes],
    ['a fragment', '{ customers(first: 3) { nodes { ...P } } } fragment P on Customer { id name email phone }', (d) => d.customers.nodes],
    ['an inline fragment', '{ customers(first: 3) { nodes { ... on Customer { id name email phone } } } }', (d) => d.customers.nodes],
  ];

  it.each(shapes)('through %s', async (_shape, query, pick) => {
    const { body } = await mesh.query<any>(query, undefined, { authorization: analyst });
    expect(body.errors).toBeUndefined();
    const rows = pick(body.data);
    expect(rows.map((row: any) => row.id)).toEqual(people.map((p) => p.id));
    rows.forEach((row: any, i: number) => {
      expect(row.name).toBe(hash(people[i]!.name, 'Customer.name'));
      expect(row.email).toBe(hash(people[i]!.email, 'Customer.email'));
      expect(row.phone).toBe(hash(people[i]!.phone, 'Customer.phone'));
      if ('who' in row) expect([row.who, row.mail]).toEqual([row.name, row.email]);
    });
    expectNoRawValues(JSON.stringify(body));
  });

  it('through a cross-domain path and an entity lookup', async () => {
    const { body } = await mesh.query<any>(
      'query ($id: ID!) { customer(id: $id) { name addresses { city } } orders(first: 20, filter: {customerId: [$id]}) { nodes { customer { name email } } } }',
      { id: people[0]!.id },
      { authorization: analyst },
    );
    expect(body.errors).toBeUndefined();
    expect(body.data.customer.name).toBe(hash(people[0]!.name, 'Customer.name'));
    const [address] = await mesh.sql<{ city: string }>('customers', "select city from addresses where customer_id = ? and kind = 'BILLING'", [people[0]!.id]);
    expect(body.data.customer.addresses[0].city).toBe(hash(address!.city, 'Address.city'));
    for (const order of body.data.orders.nodes) expect(order.customer).toEqual({ name: hash(people[0]!.name, 'Customer.name'), email: hash(people[0]!.email, 'Customer.email') });
    expectNoRawValues(JSON.stringify(body));
  });

  it('through _entities sent straight to the subgraph', async () => {
    const { body } = await postSubgraph<any>(
      mesh.subgraphs.customers!.url,
      'query ($r: [_Any!]!) { _entities(representations: $r) { ... on Customer { name email } } }',
      { r: people.map(({ id }) => ({ __typename: 'Customer', id })) },
      { authorization: analyst },
    );
    expect(body.data._entities).toEqual(people.map((p) => ({ name: hash(p.name, 'Customer.name'), email: hash(p.email, 'Customer.email') })));
    expectNoRawValues(JSON.stringify(body));
  });

  it('hashes stay stable: masked values can be counted and grouped', async () => {
    const first = await mesh.query<any>('{ customers(first: 3) { nodes { email } } }', undefined, { authorization: analyst });
    const second = await mesh.query<any>('{ customers(first: 3) { nodes { email } } }', undefined, { authorization: analyst });
    expect(second.body.data).toEqual(first.body.data);
  });

  it('arguments may not search or order by what is masked', async () => {
    const search = await mesh.query<any>('query ($t: String) { customers(filter: {nameContains: $t}) { totalCount } }', { t: people[0]!.name.slice(0, 3) }, {
      authorization: analyst,
    });
    expect(search.body.data).toEqual({ customers: null });
    expect(search.body.errors?.[0]?.extensions).toMatchObject({ code: 'ARGUMENT_NOT_ALLOWED', argument: 'filter.nameContains', coordinate: 'Customer.name' });
    const order = await mesh.query<any>('{ customers(first: 3, orderBy: {field: NAME}) { nodes { id } } }', undefined, { authorization: analyst });
    expect(order.body.errors?.[0]?.extensions).toMatchObject({ code: 'ARGUMENT_NOT_ALLOWED', argument: 'orderBy' });
    // Whoever sees names as they are may search them.
    const allowed = await mesh.query<any>('query ($t: String) { customers(filter: {nameContains: $t}) { totalCount } }', { t: people[0]!.name }, { authorization: support });
    expect(allowed.body.data.customers.totalCount).toBeGreaterThan(0);
  });

  it('no raw value reached a log line', () => {
    // The capture works (the gateway logged its composition), so an empty search proves something.
    expect(logLines.some((line) => line.includes('supergraph loaded'))).toBe(true);
    expectNoRawValues(logLines.join('\n'));
  });
});

describe('unmasked for the exempt roles', () => {
  it('support sees pii as it is', async () => {
    const { body } = await mesh.query<any>('{ customers(first: 3) { nodes { id name email phone } } }', undefined, { authorization: support });
    expect(body).toEqual({ data: { customers: { nodes: people } } });
  });
});

describe('explanation and shadow rules', () => {
  it('the response names each masked field, its strategy and its rule', async () => {
    const { body } = await mesh.query<any>(
      '{ customers(first: 2) { nodes { id name ...Contact } } } fragment Contact on Customer { email }',
      undefined,
      { authorization: analyst },
    );
    expect(body.extensions).toEqual({
      policy: {
        masked: [
          { path: ['customers', 'nodes', 'name'], coordinate: 'Customer.name', strategy: 'HASH', rule: 'pii default mask' },
          { path: ['...Contact', 'email'], coordinate: 'Customer.email', strategy: 'HASH', rule: 'pii default mask' },
        ],
      },
    });
    const exempt = await mesh.query<any>('{ customers(first: 2) { nodes { id name } } }', undefined, { authorization: support });
    expect(exempt.body.extensions).toBeUndefined();
  });

  it('a shadow mask is not applied, but is audited as "would mask"', async () => {
    const id = 'shadow-mask-0001';
    const { body } = await mesh.query<any>('{ customers(first: 2, orderBy: {field: ID}) { nodes { id signupDate } } }', undefined, {
      authorization: analyst,
      'x-request-id': id,
    });
    const expected = await mesh.sql<{ id: string; signup_date: string }>(
      'customers',
      "select id, signup_date from customers where region = 'EMEA' order by id limit 2",
    );
    expect(body.data.customers.nodes).toEqual(expected.map((row) => ({ id: row.id, signupDate: row.signup_date })));
    const log = await readFile(mesh.auditPath('customers'), 'utf8');
    const record = log
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line))
      .find((r) => r.requestId === id);
    expect(record.facts).toEqual(
      expect.arrayContaining([
        { coordinate: 'Customer.signupDate', decision: 'allow', rule: 'INTERNAL default', count: 2 },
        { coordinate: 'Customer.signupDate', decision: 'would-mask', rule: '@mask on Customer.signupDate', strategy: 'DATE_YEAR', count: 2 },
      ]),
    );
  });
});
