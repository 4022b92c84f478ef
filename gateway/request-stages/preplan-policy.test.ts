import type { GatewayExecutor, GatewayGraphQLRequestContext, GatewayInterface } from '@apollo/server-gateway-interface';
import { buildSchema, parse, print, type DocumentNode, type OperationDefinitionNode } from 'graphql';
import { describe, expect, it } from 'vitest';
import { RequestPolicy } from '../../policy/decide.js';
import { POLICY_DIRECTIVES_SDL } from '../../policy/directives.js';
import { governanceRules } from '../../policy/governance.rules.js';
import { readPolicy } from '../../policy/policy-index.js';
import { ANONYMOUS } from '../../policy/principal.js';
import { filterOperation, withPreplanPolicy } from './preplan-policy.js';

// A schema with an interface and a union, which our own domains do not have.
const types = `
  type Query @classify(level: "PUBLIC") { node(id: ID!): Node  search: [Result!]! }
  interface Node { id: ID! secret: String }
  type A implements Node @classify(level: "PUBLIC") { id: ID! secret: String @classify(level: "CONFIDENTIAL") }
  type B implements Node @classify(level: "PUBLIC") { id: ID! secret: String }
  union Result = A | B
`;
const schema = buildSchema(`${POLICY_DIRECTIVES_SDL}\n${types}`);
const index = readPolicy(parse(`${POLICY_DIRECTIVES_SDL}\n${types}`), governanceRules);
const anonymous = () => new RequestPolicy(index, ANONYMOUS);

function filtered(query: string): { printed: string; denied: string[] } {
  const { document, denied } = filterOperation({ schema, document: parse(query), policy: anonymous() });
  return { printed: print(document).replace(/\s+/g, ' '), denied: [...denied.values()].map((d) => d.policy.coordinate) };
}

describe('the pre-plan filter', () => {
  it('removes a field of an interface when any implementation denies it', () => {
    expect(filtered('{ node(id: 1) { id secret } }')).toEqual({ printed: '{ node(id: 1) { id } }', denied: ['A.secret'] });
  });

  it('decides inline fragments and fragments by their own type', () => {
    expect(filtered('{ search { ... on A { secret } ... on B { secret } } }')).toEqual({
      printed: '{ search { ... on A { policyRemovedEverything: __typename } ... on B { secret } } }',
      denied: ['A.secret'],
    });
    expect(filtered('{ search { ...F } } fragment F on Node { secret }').denied).toEqual(['A.secret']);
  });

  it('answers removed fields as null with one error each, through abstract types', async () => {
    const executor: GatewayExecutor = async (requestContext) => {
      // What Apollo Gateway would answer for the filtered operation.
      expect(print(requestContext.document)).not.toMatch(/on A \{\s*secret/);
      return { data: { search: [{ __typename: 'A' }, { __typename: 'B', secret: 'b' }] } };
    };
    const inner: GatewayInterface = {
      load: async () => ({ executor }),
      onSchemaLoadOrUpdate: () => () => undefined,
      stop: async () => undefined,
    };
    const gateway = withPreplanPolicy({ gateway: inner, policyIndex: () => index, mode: 'filter' });
    const { executor: wrapped } = await gateway.load({ apollo: {} as never });
    const document: DocumentNode = parse('{ search { __typename ... on A { secret } ... on B { secret } } }');
    const result = await wrapped!({
      schema,
      document,
      operation: document.definitions[0] as OperationDefinitionNode,
      operationName: null,
      queryHash: 'original',
      source: print(document),
      context: { principal: ANONYMOUS },
      request: {},
    } as unknown as GatewayGraphQLRequestContext);
    expect(result.data).toEqual({ search: [{ __typename: 'A', secret: null }, { __typename: 'B', secret: 'b' }] });
    expect(result.errors?.map((error) => [error.extensions.code, error.path])).toEqual([['UNAUTHENTICATED', ['search', 'secret']]]);
  });
});

describe('the pre-plan filter, kept per document and policy class', () => {
  it('plans the same parsed document anew for each class of principal, and once per class', async () => {
    const seen: string[] = [];
    const executor: GatewayExecutor = async (requestContext) => {
      seen.push(print(requestContext.document).replace(/\s+/g, ' '));
      return { data: { node: { id: '1', ...(/secret/.test(print(requestContext.document)) ? { secret: 's' } : {}) } } };
    };
    const inner: GatewayInterface = { load: async () => ({ executor }), onSchemaLoadOrUpdate: () => () => undefined, stop: async () => undefined };
    const { executor: wrapped } = await withPreplanPolicy({ gateway: inner, policyIndex: () => index, mode: 'filter' }).load({ apollo: {} as never });
    // One parsed document, as Apollo Server keeps it for one query text, asked by three principals.
    const document: DocumentNode = parse('{ node(id: 1) { id secret } }');
    const analyst = { ...ANONYMOUS, anonymous: false, subject: 'ana', roles: ['analyst'] };
    const run = (principal: typeof ANONYMOUS) =>
      wrapped!({ schema, document, operation: document.definitions[0] as OperationDefinitionNode, operationName: null, queryHash: 'q', source: print(document), context: { principal }, request: {} } as unknown as GatewayGraphQLRequestContext);
    const first = await run(ANONYMOUS);
    const second = await run(analyst);
    const third = await run(ANONYMOUS);
    // The anonymous caller never gets the secret, before or after the analyst's plan was kept.
    expect(JSON.stringify(first.data)).not.toContain('"s"');
    expect(second.data).toEqual({ node: { id: '1', secret: 's' } });
    expect(JSON.stringify(third.data)).not.toContain('"s"');
    expect(seen).toEqual(['{ node(id: 1) { id } }', '{ node(id: 1) { id secret } }', '{ node(id: 1) { id } }']);
  });

  it('keeps the plans of small variables only: a stream of large ones is planned each time, never held', async () => {
    const planned: DocumentNode[] = [];
    const executor: GatewayExecutor = async (requestContext) => {
      planned.push(requestContext.document);
      return { data: { node: { id: '1' } } };
    };
    const inner: GatewayInterface = { load: async () => ({ executor }), onSchemaLoadOrUpdate: () => () => undefined, stop: async () => undefined };
    const { executor: wrapped } = await withPreplanPolicy({ gateway: inner, policyIndex: () => index, mode: 'filter' }).load({ apollo: {} as never });
    const document: DocumentNode = parse('query ($pad: String) { node(id: 1) { id secret } }');
    const run = (variables: Record<string, unknown>) =>
      wrapped!({ schema, document, operation: document.definitions[0] as OperationDefinitionNode, operationName: null, queryHash: 'q', source: print(document), context: { principal: ANONYMOUS }, request: { variables } } as unknown as GatewayGraphQLRequestContext);
    for (const pad of ['a', 'a', 'x'.repeat(5_000), 'x'.repeat(5_000)]) await run({ pad });
    // The anonymous caller's filtered document: the same kept plan twice, then planned anew each time.
    expect(planned.map((d) => print(d).includes('secret'))).toEqual([false, false, false, false]);
    expect(planned[1]).toBe(planned[0]);
    expect(planned[2]).not.toBe(planned[0]);
    expect(planned[3]).not.toBe(planned[2]);
  });
});
