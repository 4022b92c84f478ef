/**
 * Which subscription fields a supergraph serves (the kit's convention, read from the supergraph),
 * and a subscription made ready or refused before any event: on a small composed supergraph with a
 * field only a role may read, the mesh's own domains' fields, and fields that break the convention.
 */
import { buildSchema, parse, print } from 'graphql';
import { describe, expect, it } from 'vitest';
import { policySchemaExtension } from '../policy/directives.js';
import { governanceRules } from '../policy/governance.rules.js';
import { readPolicy } from '../policy/policy-index.js';
import type { Principal } from '../policy/principal.js';
import { domains } from '../subgraphs/domains.js';
import { commonTypeDefs } from '../subgraphs/kit/scalars.js';
import { printDomainSdl } from '../subgraphs/kit/domain-schema.js';
import { DEFAULT_LIMITS } from '../gateway/request-stages/allowances.js';
import { readCostIndex } from '../gateway/request-stages/cost.js';
import { composeSupergraph } from '../gateway/supergraph/supergraph.js';
import { prepareSubscription, SubscriptionRefused } from '../gateway/subscriptions/prepare.js';
import { subscriptionRoutesOf } from '../gateway/subscriptions/routes.js';

const header = policySchemaExtension(['@key', '@shareable']);
const common = print(commonTypeDefs);
const shop = `${header}
${common}
type Query {
  "One parcel."
  parcel(id: ID!): Parcel @classify(level: "INTERNAL")
  "Two ways to read a box: no lookup is the one."
  box(id: ID!): Box @classify(level: "INTERNAL")
  boxToo(id: ID!): Box @classify(level: "INTERNAL")
}
"Changes."
type Subscription {
  "Parcels changed."
  parcelChanged(carrier: String, secret: String, id: ID, after: String): ParcelChange! @classify(level: "INTERNAL")
  "No after argument."
  parcelMoved(id: ID): ParcelChange! @classify(level: "INTERNAL")
  "Not a change type."
  parcelCount: Int @classify(level: "INTERNAL")
  "A filter named after no field."
  parcelByColour(colour: String, after: String): ParcelChange! @classify(level: "INTERNAL")
  "Two lookups for a box."
  boxChanged(after: String): BoxChange! @classify(level: "INTERNAL")
  "For stewards."
  parcelAudit(after: String): ParcelChange! @classify(level: "INTERNAL") @requireRoles(anyOf: ["steward"])
}
"A parcel. Data product parcels."
type Parcel @key(fields: "id") @dataProduct(name: "parcels", owner: "shop") @classify(level: "INTERNAL") {
  id: ID!
  carrier: String
  "Only stewards."
  secret: String @requireRoles(anyOf: ["steward"])
}
"A box. Data product boxes."
type Box @key(fields: "id") @dataProduct(name: "boxes", owner: "shop") @classify(level: "INTERNAL") {
  id: ID!
}
type ParcelChange @classify(level: "INTERNAL") {
  operation: ChangeOperation!
  key: ID!
  changedFields: [String!]!
  position: String!
  version: String!
  parcel: Parcel
}
type BoxChange @classify(level: "INTERNAL") {
  operation: ChangeOperation!
  key: ID!
  changedFields: [String!]!
  position: String!
  version: String!
  box: Box
}
`;

const composed = composeSupergraph([{ name: 'shop', url: 'http://shop', sdl: shop }]);
const served = {
  schema: buildSchema(composed.apiSchemaSdl),
  policy: readPolicy(parse(composed.supergraphSdl), governanceRules),
  index: readCostIndex(parse(composed.supergraphSdl)),
};
const routes = subscriptionRoutesOf(served.schema, composed.supergraphSdl);
const analyst: Principal = { anonymous: false, subject: 'ana', issuer: 'test', roles: ['analyst'], scopes: [], purpose: null, client: null, attributes: {} };
const steward: Principal = { ...analyst, subject: 'stu', roles: ['steward'] };
const prepare = (query: string, principal: Principal = analyst, variables: Record<string, unknown> = {}) =>
  prepareSubscription({ request: { query, variables }, principal, allowance: { ...DEFAULT_LIMITS.anonymous, ...DEFAULT_LIMITS.authenticated }, served: { ...served, subscriptions: routes }, policyMode: 'filter' });
const refusal = (run: () => unknown) => {
  try {
    run();
  } catch (error) {
    if (error instanceof SubscriptionRefused) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error('not refused');
};

describe('the subscription fields a supergraph serves', () => {
  it('serves the mesh\'s own, each on its product\'s feed, through its lookup', () => {
    const mesh = composeSupergraph(domains.map((domain) => ({ name: domain.name, url: `http://${domain.name}`, sdl: printDomainSdl(domain) })));
    const meshRoutes = subscriptionRoutesOf(buildSchema(mesh.apiSchemaSdl), mesh.supergraphSdl);
    expect(meshRoutes.unserved).toEqual(new Map());
    expect([...meshRoutes.routes.values()].map((r) => [r.field, r.product, `${r.lookupField}(${r.lookupArgument})`, r.filters.map((f) => `${f.argument}${f.byKey ? ' (key)' : ''}`)])).toEqual([
      ['customerChanged', 'customers.customers', 'customer(id)', ['id (key)']],
      ['orderChanged', 'finance.orders', 'order(id)', ['status']],
      ['productChanged', 'products.products', 'product(sku)', ['sku (key)']],
    ]);
  });

  it('says why a field that breaks the convention is not served', () => {
    expect(Object.fromEntries(routes.unserved)).toEqual({
      parcelMoved: 'it needs an `after: String` argument (to resume after a position)',
      parcelCount: 'its type Int is not an object type of change events',
      parcelByColour: 'its argument colour names no scalar field of Parcel of the same type (a filter argument is named as the field it compares)',
      boxChanged: 'the Query type must have exactly one field that reads one Box by its id (2 found)',
    });
    expect(refusal(() => prepare('subscription { parcelMoved { key } }'))).toEqual({ code: 'SUBSCRIPTION_INVALID', message: 'Subscription.parcelMoved is not served: it needs an `after: String` argument (to resume after a position).' });
  });
});

describe('a subscription made ready', () => {
  it('resolves each key by the lookup with the subscriber\'s own selection, fragments and variables', () => {
    const prepared = prepare(
      'subscription Watch($all: Boolean!, $c: String) { changes: parcelChanged(carrier: $c, after: "12:3") { key ...Parts parcel @include(if: $all) { id } } } fragment Parts on ParcelChange { operation parcel { ...Carrier } } fragment Carrier on Parcel { carrier }',
      analyst,
      { all: true, c: 'DHL' },
    );
    expect(prepared.responseKey).toBe('changes');
    expect(prepared.after).toEqual({ position: 12, index: 3 });
    expect(prepared.payload.map((field) => field.responseKey)).toEqual(['key', 'operation', 'parcel']);
    expect(prepared.filters).toEqual([{ alias: 'meshFilter_carrier', value: 'DHL' }]);
    expect(prepared.lookup.operationName).toBe('Watch');
    // The filter's field read under its own alias; `$c` (used by the filter argument only) left out.
    expect(prepared.lookup.query).toBe(
      'query Watch($meshEventKey: ID!) {\n  meshEventRow: parcel(id: $meshEventKey) {\n    __typename\n    meshFilter_carrier: carrier\n  }\n  parcel: parcel(id: $meshEventKey) {\n    ...Carrier\n    id\n  }\n}\n\nfragment Carrier on Parcel {\n  carrier\n}',
    );
    expect(prepared.cost).toBeGreaterThan(0);
  });

  it('refuses what a query would be refused, and names of its own', () => {
    expect(refusal(() => prepare('subscription { parcelChanged { key } }', { ...analyst, anonymous: true }))).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(refusal(() => prepare('subscription { parcelChanged { nope } }'))).toMatchObject({ code: 'GRAPHQL_VALIDATION_FAILED' });
    expect(refusal(() => prepare('subscription { parcelChanged { key }'))).toMatchObject({ code: 'GRAPHQL_PARSE_FAILED' });
    expect(refusal(() => prepare('{ parcel(id: "1") { id } }'))).toMatchObject({ code: 'SUBSCRIPTION_INVALID' });
    expect(refusal(() => prepare('subscription { parcelChanged { meshEventRow: parcel { id } } }'))).toMatchObject({ code: 'SUBSCRIPTION_INVALID' });
    expect(refusal(() => prepare('subscription { parcelChanged(after: "soon") { key } }'))).toMatchObject({ code: 'EVENT_POSITION_INVALID' });
    // A field the principal may not read: the subscription field itself, or a filter's field.
    expect(refusal(() => prepare('subscription { parcelAudit { key } }'))).toMatchObject({ code: 'FORBIDDEN' });
    expect(refusal(() => prepare('subscription { parcelChanged(secret: "x") { key } }'))).toMatchObject({ code: 'FORBIDDEN' });
    expect(prepare('subscription { parcelChanged(secret: "x") { key } }', steward).filters).toEqual([{ alias: 'meshFilter_secret', value: 'x' }]);
  });
});
