/**
 * The standard documents of a domain's data products, made from their declarations (see
 * data-product.ts), the domain's tables and its policy directives: for each product an ODPS 1.0
 * data product document and an ODCS 3.1 data contract. A product's address is `<domain>.<name>`;
 * its contract's id is `<domain>.<name>.contract`.
 */
import { getNamedType, isObjectType, type GraphQLSchema } from 'graphql';
import { governanceRules } from '../../policy/governance.rules.js';
import { readPolicy, type PolicyIndex } from '../../policy/policy-index.js';
import type { GovernanceRules } from '../../policy/rules.js';
import type { DataProduct } from './data-product.js';
import type { ProductProfile } from '../../policy/discovery.js';
import { keyRules, odcsQualityOf } from './quality.js';
import type { Domain } from './domain.js';
import { buildDomainSchema, subgraphTypeDefs } from './domain-schema.js';
import type { ColumnType } from './warehouse/tables.js';
import { parseWarehouseUrl } from './warehouse/warehouse.js';

/** Where a domain's warehouse is, for a contract's `servers`. */
export type WarehouseServer =
  | { readonly type: 'duckdb'; readonly database: string }
  | { readonly type: 'postgresql'; readonly host: string; readonly port: number; readonly database: string; readonly schema: string };

/** A warehouse URL (`duckdb:<file>` or `postgres://…?schema=`) as a contract's server, without credentials. */
export function warehouseServerOf(url: string): WarehouseServer {
  const location = parseWarehouseUrl(url);
  if (location.dialect === 'duckdb') return { type: 'duckdb', database: location.file };
  const parsed = new URL(location.connectionString);
  return { type: 'postgresql', host: parsed.hostname, port: Number(parsed.port || 5432), database: parsed.pathname.slice(1), schema: location.schema };
}

export interface ProductDocuments {
  /** `<domain>.<name>`. */
  readonly id: string;
  readonly odps: Record<string, unknown>;
  readonly odcs: Record<string, unknown>;
  /** The columns' profile of the serving version's load, when served (not made here: see profiles.ts). */
  readonly profile?: ProductProfile;
}

const LOGICAL_TYPES: Record<string, string> = { varchar: 'string', integer: 'integer', boolean: 'boolean', date: 'date', timestamp: 'timestamp' };
const logicalTypeOf = (type: ColumnType) => LOGICAL_TYPES[type] ?? (type.startsWith('decimal') ? 'number' : 'string');

/** The root fields that serve a product's type: directly, as a list, or as a connection of it. */
function rootFieldsOf(schema: GraphQLSchema, typeName: string): { name: string; connection: boolean }[] {
  const query = schema.getQueryType();
  if (!query) return [];
  return Object.values(query.getFields())
    .filter((field) => !field.name.startsWith('_'))
    .flatMap((field): { name: string; connection: boolean }[] => {
      const named = getNamedType(field.type);
      if (named.name === typeName) return [{ name: field.name, connection: false }];
      if (isObjectType(named) && named.name === `${typeName}Connection`) return [{ name: field.name, connection: true }];
      return [];
    });
}

function documentsOf(domain: Domain<any, any>, product: DataProduct<any, any, any>, schema: GraphQLSchema, policy: PolicyIndex, server: WarehouseServer): ProductDocuments {
  const { spec } = product;
  const { metadata } = spec;
  const id = `${domain.name}.${spec.name}`;
  const contractId = `${id}.contract`;
  const table = domain.tables.find((candidate) => candidate.name === spec.table);
  if (!table) throw new Error(`${id}: the domain has no table "${spec.table}"`);
  const roots = rootFieldsOf(schema, spec.type);
  const team = { name: `${domain.name} domain`, members: metadata.owners.map((owner) => ({ username: owner.username, ...(owner.name ? { name: owner.name } : {}), role: owner.role })) };
  const description = metadata.description;

  // What both standards say alike of the product.
  const common = { name: metadata.title, version: metadata.version, status: metadata.status, domain: domain.name, description, tags: [...metadata.tags] };
  const odps = {
    apiVersion: 'v1.0.0',
    kind: 'DataProduct',
    id,
    ...common,
    inputPorts: [
      ...metadata.inputPorts.map((port) => ({ name: port.name, version: port.version, contractId: port.contractId })),
      // Another domain's product it is fed by: read under that product's contract, by its change feed.
      ...(spec.inputs ?? []).map((input) => ({ name: input.product, version: '1.0.0', contractId: `${input.product}.contract` })),
    ],
    outputPorts: [
      {
        name: 'graphql',
        type: 'GraphQL',
        version: metadata.version,
        contractId,
        description: `The ${spec.type} type of the supergraph: ${roots.map((root) => `Query.${root.name}`).join(', ')}.`,
      },
      ...(roots.some((root) => root.connection)
        ? [{ name: 'csv-export', type: 'CSV', version: metadata.version, contractId, description: `GET /export/csv on ${roots.filter((root) => root.connection).map((root) => `Query.${root.name}`).join(', ')}: every page, as the caller.` }]
        : []),
      ...(metadata.extraOutputPorts ?? []).map((port) => ({ name: port.name, type: port.type, version: metadata.version, contractId, description: port.description })),
    ],
    team,
  };

  const fieldOfColumn = new Map(Object.entries(spec.columns).map(([field, column]) => [column, field]));
  const properties = table.columns
    .filter((column) => fieldOfColumn.has(column.name))
    .map((column) => {
      const field = fieldOfColumn.get(column.name)!;
      const fieldPolicy = policy.field(spec.type, field);
      const keyPosition = table.primaryKey.indexOf(column.name);
      return {
        name: field,
        physicalName: column.name,
        physicalType: column.type,
        // Where its values come from: the raw file's column of the same name, or a derivation at load.
        ...(column.fromRow !== undefined
          ? { transformSourceObjects: [`${table.file ?? `${table.name}.csv`}`], transformLogic: column.fromRow, transformDescription: 'Computed from the row\'s own columns as it is loaded.' }
          : column.derived
          ? { transformDescription: 'Computed at load from other columns of the domain.' }
          : { transformSourceObjects: [`${table.file ?? `${table.name}.csv`}`], transformLogic: `the column ${column.name}, as loaded` }),
        logicalType: logicalTypeOf(column.type),
        required: column.nullable !== true,
        ...(keyPosition >= 0 ? { primaryKey: true, primaryKeyPosition: keyPosition + 1, unique: table.primaryKey.length === 1 } : {}),
        classification: fieldPolicy.level.toLowerCase(),
        ...(fieldPolicy.tags.length > 0 ? { tags: [...fieldPolicy.tags] } : {}),
        customProperties: [
          { property: 'accessRule', value: fieldPolicy.rule },
          ...(fieldPolicy.mask ? [{ property: 'mask', value: fieldPolicy.mask.strategy }, { property: 'maskExemptRoles', value: fieldPolicy.mask.exemptRoles.join(', ') }] : []),
        ],
      };
    });
  const rowPolicy = policy.rowPolicy(spec.type);
  const odcs = {
    apiVersion: 'v3.1.0',
    kind: 'DataContract',
    id: contractId,
    ...common,
    servers: [{ server: `${domain.name}-warehouse`, environment: 'prod', ...server }],
    schema: [
      {
        name: spec.type,
        physicalName: spec.table,
        physicalType: 'table',
        logicalType: 'object',
        description: description.purpose,
        properties,
        // The rules every load is gated by: the key's, then the product's own.
        quality: [...keyRules(spec.key), ...(spec.quality ?? [])].map((rule) => odcsQualityOf(rule, spec.table)),
        ...(rowPolicy || metadata.feeds || spec.inputs
          ? {
              customProperties: [
                ...(rowPolicy ? [{ property: 'rowPolicy', value: `rows whose ${rowPolicy.column} is in the principal's ${rowPolicy.claim} claim, except for ${rowPolicy.bypassRoles.join(', ')}` }] : []),
                // Other domains' fields its data resolves: lineage across domains.
                ...(metadata.feeds ? [{ property: 'feeds', value: metadata.feeds.map((feed) => ({ fields: [...feed.fields], how: feed.how })) }] : []),
                // Other domains' products it is fed by (their change feeds), and the fields of its own they make.
                ...(spec.inputs ? [{ property: 'inputs', value: spec.inputs.map((input) => ({ product: input.product, fields: input.fields.map((field) => `${spec.type}.${field}`), description: input.description })) }] : []),
              ],
            }
          : {}),
      },
    ],
    slaProperties: metadata.sla.map((sla) => ({
      property: sla.property,
      value: sla.value,
      ...(sla.unit ? { unit: sla.unit } : {}),
      ...(sla.element ? { element: `${spec.table}.${sla.element}` } : {}),
      ...(sla.description ? { description: sla.description } : {}),
    })),
    team,
  };
  return { id, odps, odcs };
}

/** Every data product of a domain, as its ODPS document and ODCS contract. */
export function domainProductDocuments(domain: Domain<any, any>, server: WarehouseServer, rules: GovernanceRules = governanceRules): ProductDocuments[] {
  const typeDefs = subgraphTypeDefs(domain);
  const schema = buildDomainSchema(domain, typeDefs);
  const policy = readPolicy(typeDefs, rules);
  return domain.dataProducts.map((product) => documentsOf(domain, product, schema, policy, server));
}

