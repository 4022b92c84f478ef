/**
 * Arguments never reveal what a mask hides (issue 12, finding 9): filtering, ordering and the
 * cursors of an ordering carry no field the principal sees masked. `Customer.signupDate` rolls out
 * a `DATE_YEAR` mask in shadow; here a second mesh serves the same domain with the mask enforced,
 * as it will be, and an analyst tries every argument that reads the sign-up date.
 */
import { parse, print } from 'graphql';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { domains } from '../subgraphs/domains.js';
import { readAuditRecords, startTestMesh, tokenFor, type TestMesh } from './harness/mesh.js';

const analyst = `Bearer ${tokenFor({ subject: 'args-analyst', roles: ['analyst'], regions: ['EMEA', 'AMERICAS', 'APAC'], purpose: 'analytics' })}`;
const steward = `Bearer ${tokenFor({ subject: 'args-steward', roles: ['steward'], purpose: 'customer-support' })}`;

/** The three domains, with the customers domain's shadow DATE_YEAR mask on signupDate enforced. */
function enforcedDomains() {
  return domains.map((domain) => {
    if (domain.name !== 'customers') return domain;
    const sdl = print(domain.typeDefs);
    const enforced = sdl.replace(/(signupDate: LocalDate! @mask\(strategy: "DATE_YEAR", exemptRoles: \["steward", "admin"\]), shadow: true\)/, '$1)');
    if (enforced === sdl) throw new Error('the customers schema no longer rolls out DATE_YEAR on signupDate in shadow: update this test');
    return { ...domain, typeDefs: parse(enforced) };
  });
}

const decodeCursor = (cursor: string) => JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];

async function factsOf(mesh: TestMesh, requestId: string) {
  return vi.waitFor(async () => {
    const record = (await readAuditRecords(mesh.auditPath('customers'))).find((r) => r.requestId === requestId);
    if (record?.kind !== 'subgraph-operation') throw new Error(`no customers record for ${requestId} yet`);
    return record.facts;
  });
}

describe('with the DATE_YEAR mask on the sign-up date enforced', () => {
  let mesh: TestMesh;
  let signups: { id: string; signup_date: string }[];
  beforeAll(async () => {
    mesh = await startTestMesh({ domains: enforcedDomains() });
    signups = await mesh.sql('customers', "select id, strftime(signup_date, '%Y-%m-%d') as signup_date from customers order by id");
  });
  afterAll(async () => {
    await mesh?.stop();
  });

  it('shows the analyst the year only', async () => {
    const { body } = await mesh.query<any>('{ customers(first: 50) { nodes { id signupDate } } }', undefined, { authorization: analyst });
    expect(body.errors).toBeUndefined();
    const byId = new Map(signups.map((row) => [row.id, row.signup_date]));
    // A full page, and at least one date that is not its year's first day (else the check would pass unmasked).
    expect(body.data.customers.nodes).toHaveLength(50);
    expect(body.data.customers.nodes.some((node: any) => !byId.get(node.id)!.endsWith('-01-01'))).toBe(true);
    for (const node of body.data.customers.nodes) expect(node.signupDate).toBe(`${byId.get(node.id)!.slice(0, 4)}-01-01`);
  });

  it.each([
    ['orderBy', '{ customers(first: 5, orderBy: { field: SIGNUP_DATE }) { nodes { id } } }', 'orderBy'],
    ['orderBy on the offset list', '{ customerList(limit: 5, orderBy: { field: SIGNUP_DATE, direction: DESC }) { id } }', 'orderBy'],
    ['a day filter', '{ customers(first: 5, filter: { signedUpFrom: "2023-03-15" }) { totalCount } }', 'filter.signedUpFrom'],
    ['an inclusive end that is not a year end', '{ customers(first: 5, filter: { signedUpTo: "2023-06-30" }) { totalCount } }', 'filter.signedUpTo'],
    ['a time window inside a year', '{ customers(first: 5, from: "2023-02-01", to: "2023-03-01") { totalCount } }', 'from'],
    ['an exclusive end inside a year', '{ customerList(limit: 5, to: "2023-07-01") { id } }', 'to'],
  ])('refuses %s on it, with ARGUMENT_NOT_ALLOWED and no rows', async (_case, query, argument) => {
    const { status, body } = await mesh.query<any>(query, undefined, { authorization: analyst });
    expect(status).toBe(200);
    expect(body.errors?.[0]?.extensions).toMatchObject({ code: 'ARGUMENT_NOT_ALLOWED', argument, coordinate: 'Customer.signupDate' });
    // A bound is told which bounds would do; an ordering, which nothing would.
    if (argument === 'orderBy') expect(body.errors?.[0]?.message).not.toContain('bounds on');
    else expect(body.errors?.[0]?.message).toContain("bounds on a year's first or last day are allowed");
    expect(JSON.stringify(body.data ?? {})).not.toMatch(/"id":"C\d+"|totalCount":\d/);
  });

  it('answers bounds on a year\'s edges, which tell no more than the year it shows', async () => {
    const { body } = await mesh.query<any>(
      '{ a: customers(first: 1, filter: { signedUpFrom: "2023-01-01", signedUpTo: "2023-12-31" }) { totalCount } b: customers(first: 1, from: "2023-01-01", to: "2024-01-01") { totalCount } }',
      undefined,
      { authorization: analyst },
    );
    expect(body.errors).toBeUndefined();
    const expected = signups.filter((row) => row.signup_date.startsWith('2023')).length;
    expect(expected).toBeGreaterThan(0);
    expect([body.data.a.totalCount, body.data.b.totalCount]).toEqual([expected, expected]);
  });

  it('gives the analyst cursors that hold no sign-up date, and refuses the steward\'s cursor of the date ordering', async () => {
    const mine = await mesh.query<any>('{ customers(first: 30, orderBy: { field: ID, direction: DESC }) { edges { cursor node { id } } } }', undefined, { authorization: analyst });
    expect(mine.body.errors).toBeUndefined();
    const dates = new Set(signups.map((row) => row.signup_date));
    expect(mine.body.data.customers.edges).toHaveLength(30);
    for (const { cursor } of mine.body.data.customers.edges) {
      for (const value of decodeCursor(cursor)) expect(dates.has(String(value)), `cursor value ${value}`).toBe(false);
    }

    // A steward may order by the date; that cursor holds it, and is of no use to the analyst.
    const theirs = await mesh.query<any>('{ customers(first: 3, orderBy: { field: SIGNUP_DATE }) { pageInfo { endCursor } } }', undefined, { authorization: steward });
    const cursor = theirs.body.data.customers.pageInfo.endCursor as string;
    expect(dates.has(String(decodeCursor(cursor)[1]))).toBe(true);
    const sameOrder = await mesh.query<any>('query ($c: String) { customers(first: 3, after: $c, orderBy: { field: SIGNUP_DATE }) { nodes { id } } }', { c: cursor }, { authorization: analyst });
    expect(sameOrder.body.errors?.[0]?.extensions).toMatchObject({ code: 'ARGUMENT_NOT_ALLOWED', argument: 'orderBy' });
    const otherOrder = await mesh.query<any>('query ($c: String) { customers(first: 3, after: $c) { nodes { id } } }', { c: cursor }, { authorization: analyst });
    expect(otherOrder.body.errors?.[0]?.extensions).toMatchObject({ code: 'INVALID_CURSOR' });
    expect(otherOrder.body.data?.customers ?? null).toBeNull();
  });

  it('still lets a steward, whom the mask exempts, filter and order by the date', async () => {
    const { body } = await mesh.query<any>('{ customers(first: 3, orderBy: { field: SIGNUP_DATE }, filter: { signedUpFrom: "2023-03-15" }) { nodes { signupDate } } }', undefined, { authorization: steward });
    expect(body.errors).toBeUndefined();
    const shown = body.data.customers.nodes.map((node: any) => node.signupDate);
    expect(shown.length).toBe(3);
    expect([...shown].sort()).toEqual(shown);
    expect(shown.every((date: string) => date >= '2023-03-15')).toBe(true);
  });
});

describe('with the DATE_YEAR mask in shadow, as the domain ships it', () => {
  let mesh: TestMesh;
  beforeAll(async () => {
    mesh = await startTestMesh();
  });
  afterAll(async () => {
    await mesh?.stop();
  });

  it('answers the analyst, and audits each argument the mask would refuse once enforced', async () => {
    const id = 'masked-args-shadow-0001';
    const { body } = await mesh.query<any>(
      '{ customers(first: 3, orderBy: { field: SIGNUP_DATE }, filter: { signedUpFrom: "2023-03-15" }) { nodes { id signupDate } } }',
      undefined,
      { authorization: analyst, 'x-request-id': id },
    );
    expect(body.errors).toBeUndefined();
    expect(body.data.customers.nodes).toHaveLength(3);
    const facts = await factsOf(mesh, id);
    const wouldRefuse = facts.filter((fact) => fact.decision === 'would-deny' && fact.coordinate === 'Customer.signupDate').map((fact) => fact.rule);
    expect(wouldRefuse.sort()).toEqual([expect.stringMatching(/^shadow: "filter\.signedUpFrom" would be refused/), expect.stringMatching(/^shadow: "orderBy" would be refused/)]);
  });

  it('audits nothing of the kind for a bound on a year\'s edge, or for a steward', async () => {
    const ids = ['masked-args-shadow-0002', 'masked-args-shadow-0003'];
    await mesh.query('{ customers(first: 3, filter: { signedUpFrom: "2023-01-01" }) { nodes { id } } }', undefined, { authorization: analyst, 'x-request-id': ids[0]! });
    await mesh.query('{ customers(first: 3, orderBy: { field: SIGNUP_DATE }) { nodes { id } } }', undefined, { authorization: steward, 'x-request-id': ids[1]! });
    for (const id of ids) {
      const facts = await factsOf(mesh, id);
      // The record is this operation's (its read of the list is there), and holds no would-deny.
      expect(facts.map((fact) => fact.coordinate)).toContain('Query.customers');
      expect(facts.filter((fact) => fact.decision === 'would-deny')).toEqual([]);
    }
  });
});
