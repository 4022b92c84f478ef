/**
 * A domain's subgraph schema, built one way for every use: the server, the SDL it publishes, and its
 * products' standard documents.
 */
import { buildSubgraphSchema, printSubgraphSchema, type GraphQLResolverMap } from '@apollo/subgraph';
import { concatAST, parse, type DocumentNode, type GraphQLSchema } from 'graphql';
import { policySchemaExtension } from '../../policy/directives.js';
import type { Domain } from './domain.js';
import { commonTypeDefs, scalarResolvers } from './scalars.js';

/** The domain's full subgraph SDL: policy and federation links, the kit's shared types, its own. */
export function subgraphTypeDefs(domain: Domain<any, any>): DocumentNode {
  return concatAST([parse(policySchemaExtension(['@key', '@shareable', '@override', '@cost', '@listSize'])), commonTypeDefs, domain.typeDefs]);
}

/** The domain's subgraph schema, with the kit's scalars and the domain's resolvers. */
export function buildDomainSchema(domain: Domain<any, any>, typeDefs: DocumentNode = subgraphTypeDefs(domain)): GraphQLSchema {
  // The domain's resolver map is typed by the domain's own context; the schema builder takes any.
  return buildSubgraphSchema([{ typeDefs, resolvers: { ...scalarResolvers, ...domain.resolvers } as GraphQLResolverMap<unknown> }]);
}

/** The SDL the domain's subgraph serves at `_service { sdl }`, without starting it. */
export function printDomainSdl(domain: Domain<any, any>): string {
  return `${printSubgraphSchema(buildDomainSchema(domain)).trimEnd()}\n`;
}

