/**
 * The shape every domain subgraph has: `subgraphs/<domain>/index.ts` exports one `Domain`.
 */
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import type { DocumentNode } from 'graphql';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { RequestLoaders } from './loaders.js';
import type { Warehouse } from './warehouse/warehouse.js';

export interface DomainContext<Repo> {
  readonly requestId: string;
  readonly log: Logger;
  /** The domain's data-product repository for this request (its loaders batch per request). */
  readonly repo: Repo;
}

export interface IngestOptions<DB> {
  readonly warehouse: Warehouse<DB>;
  /** The folder holding this domain's raw files. */
  readonly rawDir: string;
}

export interface Domain<DB = unknown, Repo = unknown> {
  /** The subgraph's name in the supergraph; also its folder name. */
  readonly name: string;
  /** The subgraph SDL (Federation 2), from the domain's `schema.graphql`. */
  readonly typeDefs: DocumentNode;
  readonly resolvers: GraphQLResolverMap<DomainContext<Repo>>;
  /** Bump when the domain's tables or ingestion change: existing warehouses are then rebuilt. */
  readonly warehouseVersion: number;
  /** The repository for one request over the domain's warehouse. */
  createRepository(db: Kysely<DB>, loaders: RequestLoaders): Repo;
  /** Creates the domain's tables and bulk-loads its raw files; resolves to rows loaded per table. */
  ingest(options: IngestOptions<DB>): Promise<Record<string, number>>;
}

/** Identity function that keeps a domain's types checked where it is declared. */
export function defineDomain<DB, Repo>(domain: Domain<DB, Repo>): Domain<DB, Repo> {
  return domain;
}
