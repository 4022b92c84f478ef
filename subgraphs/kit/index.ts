/**
 * The platform kit's public API: everything a domain needs to declare its warehouse tables, its
 * data products, its resolvers and its domain, and nothing of the kit's insides. A domain imports
 * this module only (the built-in domains too: a dependency rule holds them to it), so that the kit
 * can change behind it.
 *
 * The kit's version follows the policy spec it enforces: `KIT_VERSION` 1.3.x enforces
 * `https://specs.datamesh.dev/policy/v1.3` (the `@classify`, `@mask`, `@rowPolicy` … directives a
 * domain's schema links). Kysely is re-exported so that a domain builds its queries with the same
 * Kysely the kit runs them with.
 */
import kitPackage from './package.json' with { type: 'json' };

export { POLICY_SPEC_URL } from '../../policy/directives.js';
export { codedError } from '../../policy/errors.js';
export type { GraphQLResolverMap } from '@apollo/subgraph';
export { sql, type Expression, type Kysely, type RawBuilder, type SqlBool } from 'kysely';

export { defineDomain, type DeriveIncrementOptions, type Domain, type DomainContext, type IngestOptions } from './domain.js';
export { defineDataProduct, type DataProduct, type DataProductSpec, type FilterSpec, type ProductMetadata, type ProductStatus, type SlaProperty } from './data-product.js';
export type { Connection, ListArgs, PageArgs, Selection, SortColumn } from './connection.js';
export type { PipelineDeclaration, PostgresSource } from './pipelines/runner.js';
export type { ProductInput } from './events/input-declaration.js';
export { anyOf, anyOfCategories, atLeast, atMost, containsText, guardArgument, guardArguments, timeWindow, whereAll, type ArgumentField, type Bound, type Coordinate, type RequestAccess } from './filters.js';
export { manyByKey, oneByKey, RequestLoaders } from './loaders.js';
export { toTimestampParameter } from './scalars.js';
export { defineTable, loadTables, type ColumnDeclaration, type ColumnType, type RowOf, type Table, type WarehouseOf } from './warehouse/tables.js';
export type { DialectSql, TimeUnit } from './warehouse/dialects.js';
export type { Warehouse, WarehouseDialect } from './warehouse/warehouse.js';

/** This kit's version (its package.json's): major and minor are those of the policy spec it enforces (`POLICY_SPEC_URL`). */
export const KIT_VERSION: string = kitPackage.version;
