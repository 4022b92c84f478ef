/**
 * The shape every domain subgraph has: `subgraphs/<domain>/index.ts` exports one `Domain`.
 */
import type { GraphQLResolverMap } from '@apollo/subgraph';
import { readFileSync } from 'node:fs';
import { parse, type DocumentNode } from 'graphql';
import type { Kysely, RawBuilder } from 'kysely';
import type { Logger } from 'pino';
import type { AuditCollector } from '../../policy/audit.js';
import type { RequestPolicy } from '../../policy/decide.js';
import type { Principal } from '../../policy/principal.js';
import type { DataProduct } from './data-product.js';
import type { RequestAccess } from './filters.js';
import type { RequestLoaders } from './loaders.js';
import type { DialectSql } from './warehouse/dialects.js';
import { loadTables, type TableSpec } from './warehouse/tables.js';
import type { Warehouse } from './warehouse/warehouse.js';

export interface DomainContext<Repo> {
  readonly requestId: string;
  readonly log: Logger;
  /** Who is asking (verified by this subgraph itself). */
  readonly principal: Principal;
  /** The request's access decisions, once per field and type. */
  readonly policy: RequestPolicy;
  /** The operation's audit facts. */
  readonly audit: AuditCollector;
  /** The domain's data-product repository for this request (its loaders batch per request). */
  readonly repo: Repo;
  /** The request's loaders (and the products it read). */
  readonly loaders?: RequestLoaders;
}

export interface IngestOptions<DB> {
  readonly warehouse: Warehouse<DB>;
  /** The folder holding this domain's raw files. */
  readonly rawDir: string;
}

export interface DeriveIncrementOptions<DB> {
  /** The new version, in the merge's transaction. */
  readonly db: Kysely<DB>;
  /**
   * Each table the increments changed → the table holding the keys they inserted, updated or
   * deleted (the table's primary key columns): the rows whose derived columns to fill again, and
   * the rows derived from them.
   */
  readonly changed: Readonly<Record<string, string>>;
  /**
   * The rows of a changed table as they were before the merge replaced or removed them (a query;
   * none for a new key): e.g. the customer an order belonged to before it moved or was deleted, the
   * product a removed order line was for.
   */
  before(table: string): RawBuilder<unknown>;
  /**
   * Says, before changing them, which other rows the derivation changes (`keys`: a query of their
   * key, e.g. the invoices of the changed orders): they join the merge's changed rows, checked,
   * profiled, and published as change events with the fields that differ.
   */
  touch(table: string, keys: RawBuilder<unknown>): Promise<void>;
}

export interface Domain<DB = unknown, Repo = unknown> {
  /** The subgraph's name in the supergraph; also its folder name. */
  readonly name: string;
  /**
   * The subgraph SDL (Federation 2, with policy directives), from the domain's `schema.graphql`;
   * the bootstrap adds the @link header and the kit's shared types.
   */
  readonly typeDefs: DocumentNode;
  readonly resolvers: GraphQLResolverMap<DomainContext<Repo>>;
  /** Bump when the domain's tables or ingestion change: existing warehouses are then rebuilt. */
  readonly warehouseVersion: number;
  /** The domain's warehouse tables (their columns and keys describe its products' contracts too). */
  readonly tables: readonly TableSpec[];
  /**
   * The domain's data products, each declared once (see data-product.ts). Every type with
   * `@rowPolicy` must be one of them: the subgraph refuses to start otherwise.
   */
  readonly dataProducts: readonly DataProduct<any, any, any>[];
  /**
   * The repository for one request over the domain's warehouse: its data products' readers, and
   * what is the domain's own (aggregates, derived measures) over their visible rows. `dialect`
   * spells the SQL that differs between warehouses.
   */
  createRepository(db: Kysely<DB>, loaders: RequestLoaders, access: RequestAccess, dialect: DialectSql): Repo;
  /** Creates the domain's tables and bulk-loads its raw files; resolves to rows loaded per table. */
  ingest(options: IngestOptions<DB>): Promise<Record<string, number>>;
  /**
   * Fills the derived columns of what increments changed, once they are merged by key (see
   * warehouse/increments.ts): needed by a domain with derived columns to be loaded incrementally.
   * The answers must be those of a full load of the same data (the kit's tests compare them).
   */
  deriveIncrement?(options: DeriveIncrementOptions<DB>): Promise<void>;
}

/**
 * What marks a domain made by `defineDomain`, whichever copy of the kit made it (a domain outside
 * this repository depends on its own): a symbol of the global registry.
 */
const DOMAIN = Symbol.for('data-mesh.domain');

/** Whether a module's export is a domain `defineDomain` made. */
export function isDomain(value: unknown): value is Domain<unknown, unknown> {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[DOMAIN] === true;
}

/**
 * A domain, declared in its folder's `index.ts`: its SDL is the folder's `schema.graphql` (give the
 * module's `import.meta.url` as `folder`), and without an `ingest` of its own its tables are loaded
 * from their raw files as they are.
 */
export function defineDomain<DB, Repo>(
  domain: Omit<Domain<DB, Repo>, 'typeDefs' | 'ingest'> & { readonly folder: string; readonly ingest?: Domain<DB, Repo>['ingest'] },
): Domain<DB, Repo> {
  const { folder, ingest, ...rest } = domain;
  const declared: Domain<DB, Repo> = {
    ...rest,
    typeDefs: parse(readFileSync(new URL('./schema.graphql', folder), 'utf8')),
    ingest: ingest ?? (({ warehouse, rawDir }) => loadTables(warehouse, rawDir, domain.tables)),
  };
  return Object.defineProperty(declared, DOMAIN, { value: true });
}
