/**
 * The federated data product catalog, as a platform subgraph served inside the gateway:
 * `Query.dataProducts(filter, first, after)` (a connection with facet counts) and
 * `Query.dataProduct(id)`.
 *
 * Composition adds it to every supergraph the platform composes (see `composeSupergraph`), so the
 * query planner treats it as any subgraph (a catalog field and a domain field in one operation,
 * introspection, the pre-plan policy); the gateway answers its fetches in process. It owns no
 * metadata: each domain serves its own products' documents (domain-entries.ts), and the catalog adds
 * what only the gateway knows: the served schema (type, root fields, field types), the policy of
 * each field and what it means for the caller, the example operation, and the registry's usage.
 */
import { readFileSync } from 'node:fs';
import type { GraphQLDataSource, GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import { buildSubgraphSchema, type GraphQLResolverMap } from '@apollo/subgraph';
import { execute, getNamedType, GraphQLError, isObjectType, parse, print, visit, type DocumentNode, type GraphQLSchema } from 'graphql';
import { decide } from '../../policy/decide.js';
import { policySchemaExtension } from '../../policy/directives.js';
import { codedError } from '../../policy/errors.js';
import type { PolicyIndex } from '../../policy/policy-index.js';
import { ANONYMOUS, type Principal } from '../../policy/principal.js';
import { DETECTOR_DESCRIPTIONS, type ColumnProfile, type ProductProfile } from '../../policy/discovery.js';
import type { SubgraphEndpoint } from '../subgraph-calls/subgraph-endpoint.js';
import { policyNote, readableBy, type ExampleOperation } from '../ide/schema-docs.js';
import type { UsageRecord } from '../registry/registry.js';
import type { DomainDocuments, DomainEntries, FreshnessEntry, InputFreshness, PipelineEntry, PipelineRunEntry, QualityEntry, QualityRunEntry } from './domain-entries.js';

/** The catalog subgraph's name in the supergraph: reserved, no domain may be published under it. */
export const CATALOG_SUBGRAPH_NAME = 'catalog';
/** Its URL in the supergraph: never fetched, the gateway answers it in process. */
export const CATALOG_SUBGRAPH_URL = 'http://gateway.internal/catalog';

/**
 * The platform's catalog in a supergraph: by name and URL both, so that a supergraph file composed
 * elsewhere, with a subgraph of its own called `catalog`, is routed to that subgraph as usual.
 */
export const isCatalogSubgraph = (endpoint: { readonly name: string; readonly url: string }): boolean =>
  endpoint.name === CATALOG_SUBGRAPH_NAME && endpoint.url === CATALOG_SUBGRAPH_URL;

const catalogTypeDefs = readFileSync(new URL('./catalog.graphql', import.meta.url), 'utf8');
/** The catalog subgraph's SDL, as composition takes it. */
export const CATALOG_SUBGRAPH_SDL = `${policySchemaExtension(['@shareable', '@listSize'])}\n${catalogTypeDefs}`;

export const CATALOG_PAGE_DEFAULT = 20;
export const CATALOG_PAGE_MAX = 100;
/** The longest text a catalog search or filter value accepts. */
export const CATALOG_FILTER_MAX_LENGTH = 200;
const USAGE_DAYS_DEFAULT = 30;
const USAGE_DAYS_MAX = 90;

/** What the catalog reads of the gateway: the served schema, the domains' entries, usage. */
export interface CatalogSources {
  /** The served API schema, its policy, its examples and the domain subgraphs it routes to. */
  served():
    | { readonly schema: GraphQLSchema; readonly policy: PolicyIndex; readonly version: string; readonly subgraphs: readonly SubgraphEndpoint[]; readonly fieldOwners: ReadonlyMap<string, readonly string[]>; readonly examples: readonly ExampleOperation[] }
    | undefined;
  readonly entries: DomainEntries;
  /** Usage since a time, from the registry (null without one). */
  usage(since: Date): Promise<readonly UsageRecord[]> | null;
  /** The clients that registered documents with the registry. */
  registeredClients(): ReadonlySet<string>;
}

interface CatalogContext {
  readonly principal: Principal;
  readonly sources: CatalogSources;
  /** This request's view of the catalog, read once. */
  view?: Promise<CatalogView>;
}

interface FieldEntry {
  readonly name: string;
  readonly type: string;
  readonly description: string | null;
  readonly column: string | null;
  readonly classification: string;
  readonly tags: readonly string[];
  readonly mask: string | null;
  readonly readableBy: string;
  readonly rule: string;
  readonly policy: string;
  readonly forYou: { readonly access: 'READABLE' | 'MASKED' | 'DENIED'; readonly reason: string | null };
  /** Its column's profile from the serving version's load, for a caller who may read the field as it is. */
  readonly profile: FieldProfile | null;
}

/** A column's profile as the catalog shows it (no value of the column: see policy/discovery.ts). */
interface FieldProfile extends Omit<ColumnProfile, 'column' | 'field' | 'type' | 'withheld' | 'detections'> {
  readonly profiledAt: string;
  readonly rows: number;
  readonly detections: readonly { readonly detector: string; readonly description: string; readonly share: number }[];
}

interface ProductEntry {
  readonly id: string;
  readonly name: string;
  readonly title: string;
  readonly version: string;
  readonly status: string;
  readonly domain: string;
  readonly description: { readonly purpose: string; readonly limitations: string | null; readonly usage: string | null };
  readonly tags: readonly string[];
  readonly owners: readonly { readonly username: string; readonly name: string | null; readonly role: string }[];
  readonly graphqlType: string;
  readonly rootFields: readonly string[];
  readonly contractId: string;
  readonly outputPorts: DomainDocuments['products'][number]['odps']['outputPorts'];
  readonly inputPorts: NonNullable<DomainDocuments['products'][number]['odps']['inputPorts']>;
  readonly sla: readonly { property: string; value: string; unit: string | null; element: string | null; description: string | null }[];
  readonly rowPolicy: string | null;
  readonly fields: readonly FieldEntry[];
  readonly exampleOperation: string | null;
  readonly quality: { readonly status: string; readonly lastRun: QualityRunEntry | null; readonly history: readonly QualityRunEntry[] };
  /** Its freshness, and its inputs' products' own (filled once every entry is made). */
  readonly freshness: Omit<FreshnessEntry, 'inputs'> & { readonly inputs: InputEntry[] };
  readonly pipeline: (PipelineEntry & { readonly loadedAt: string | null; readonly slaSeconds: number | null }) | null;
  readonly lineage: { readonly upstream: LineageEdge[]; readonly downstream: LineageEdge[]; readonly columns: readonly { field: string; column: string | null; source: string | null; masking: boolean }[] };
  /** Lower-case text the `text` filter searches. */
  readonly searchable: string;
}

interface CatalogView {
  readonly products: readonly ProductEntry[];
  readonly unavailable: readonly string[];
}

/** The Query fields that serve a type: directly, as a list, or as a connection of it. */
function rootFieldsOf(schema: GraphQLSchema, typeName: string): string[] {
  const query = schema.getQueryType();
  if (!query) return [];
  return Object.values(query.getFields())
    .filter((field) => {
      const named = getNamedType(field.type);
      return named.name === typeName || (isObjectType(named) && named.name === `${typeName}Connection`);
    })
    .map((field) => `Query.${field.name}`);
}

function fieldAccess(principal: Principal, policy: ReturnType<PolicyIndex['field']>): FieldEntry['forYou'] {
  const decision = decide(principal, policy);
  if (!decision.allowed) {
    const missing = Object.entries(decision.missing)
      .map(([part, value]) => (value === true ? part : `${part} ${(value as readonly unknown[]).map(String).join(' or ')}`))
      .join('; ');
    return { access: 'DENIED', reason: `${decision.code}: requires ${missing}` };
  }
  if (decision.mask) return { access: 'MASKED', reason: `${decision.mask.strategy} mask (${policy.rule})` };
  return { access: 'READABLE', reason: null };
}

/**
 * A field's profile for the caller: only when they may read the field as it is; and without min and
 * max when the type's row policy hides some rows from them (the profile is of every row).
 */
function profileFor(profile: ProductProfile | undefined, column: string | null, access: FieldEntry['forYou'], seesEveryRow: boolean): FieldProfile | null {
  const found = column ? profile?.columns.find((candidate) => candidate.column === column) : undefined;
  if (!profile || !found || access.access !== 'READABLE') return null;
  return {
    profiledAt: profile.profiledAt,
    rows: profile.rows,
    nullShare: found.nullShare,
    distinctCount: found.distinctCount,
    min: seesEveryRow ? found.min : null,
    max: seesEveryRow ? found.max : null,
    minLength: found.minLength,
    maxLength: found.maxLength,
    mean: seesEveryRow ? (found.mean ?? null) : null,
    sampled: found.sampled,
    detections: found.detections.map((detection) => ({ ...detection, description: DETECTOR_DESCRIPTIONS[detection.detector] ?? detection.detector })),
  };
}

/** A product's entry: its domain's documents, and what the served schema and policy say of its type. */
function entryOf(product: DomainDocuments['products'][number], quality: QualityEntry | undefined, freshness: FreshnessEntry | undefined, pipeline: PipelineEntry | null | undefined, served: NonNullable<ReturnType<CatalogSources['served']>>, principal: Principal, feeders: Feeders): ProductEntry | null {
  const { odps, odcs } = product;
  const contractSchema = odcs.schema[0];
  if (!contractSchema) return null;
  const typeName = contractSchema.name;
  const type = served.schema.getType(typeName);
  // A product whose type the served schema does not have (published apart from its documents) is left out.
  if (!isObjectType(type)) return null;
  const columns = new Map(contractSchema.properties.map((property) => [property.name, property.physicalName]));
  const inputs = inputsOfContract(contractSchema);
  const rowPolicy = served.policy.rowPolicy(typeName);
  const seesEveryRow = !rowPolicy || principal.roles.some((role) => rowPolicy.bypassRoles.includes(role));
  const fields = Object.values(type.getFields()).map((field): FieldEntry => {
    const policy = served.policy.field(typeName, field.name);
    // The served description ends with the policy note the IDE shows; the catalog gives it apart.
    const note = policyNote(policy);
    const description = field.description?.endsWith(note) ? field.description.slice(0, -note.length).trim() || null : (field.description ?? null);
    const column = columns.get(field.name) ?? null;
    const forYou = fieldAccess(principal, policy);
    return {
      name: field.name,
      type: String(field.type),
      description,
      column,
      classification: policy.level,
      tags: policy.tags,
      mask: policy.mask?.strategy ?? null,
      readableBy: readableBy(policy.requirement),
      rule: policy.rule,
      policy: note,
      forYou,
      profile: profileFor(product.profile, column, forYou, seesEveryRow),
    };
  });
  const name = odps.id.slice(odps.domain.length + 1);
  const example = served.examples.find((candidate) => candidate.type === typeName) ?? null;
  const denied = new Set(fields.filter((field) => field.forYou.access === 'DENIED').map((field) => field.name));
  const sentence = contractSchema.customProperties?.find((property) => property.property === 'rowPolicy')?.value;
  const rowPolicySentence = typeof sentence === 'string' ? sentence : null;
  const owners = odps.team.members.map((member) => ({ username: member.username, name: member.name ?? null, role: member.role }));
  return {
    id: odps.id,
    name,
    title: odps.name,
    version: odps.version,
    status: odps.status.toUpperCase(),
    domain: odps.domain,
    description: { purpose: odps.description.purpose, limitations: odps.description.limitations ?? null, usage: odps.description.usage ?? null },
    tags: odps.tags,
    owners,
    graphqlType: typeName,
    rootFields: rootFieldsOf(served.schema, typeName),
    contractId: odcs.id,
    outputPorts: odps.outputPorts,
    inputPorts: odps.inputPorts ?? [],
    sla: odcs.slaProperties.map((sla) => ({ property: sla.property, value: String(sla.value), unit: sla.unit ?? null, element: sla.element ?? null, description: sla.description ?? null })),
    rowPolicy: rowPolicySentence,
    fields,
    exampleOperation: example ? exampleFor(example.query, denied) : null,
    quality: { status: (quality?.status ?? 'unknown').toUpperCase(), lastRun: quality?.lastRun ?? null, history: quality?.history ?? [] },
    freshness: { loadedAt: freshness?.loadedAt ?? null, newestRecordAt: freshness?.newestRecordAt ?? null, slaSeconds: freshness?.slaSeconds ?? null, inputs: (Array.isArray(freshness?.inputs) ? freshness.inputs : []).map((input) => ({ ...input, upstream: null })) },
    pipeline: pipeline ? { ...pipeline, loadedAt: freshness?.loadedAt ?? null, slaSeconds: freshness?.slaSeconds ?? null } : null,
    lineage: {
      // Upstream: the raw sources it is built from, and the other domains that resolve fields of its type.
      upstream: [
        ...(odps.inputPorts ?? []).filter((port) => !inputs.some((input) => input.product === port.name)).map((port): LineageEdge => ({ kind: 'SOURCE', name: port.name, fields: [] })),
        // Other domains' products it is fed by, through their change feeds.
        ...inputs.map((input): LineageEdge => ({ kind: 'PRODUCT', name: input.product, fields: input.fields, description: input.description })),
        ...byFeedingProduct(edgesByDomain(fields.map((field) => `${typeName}.${field.name}`), served.fieldOwners, odps.domain), feeders),
      ],
      downstream: [],
      columns: fields.map((field) => ({
        field: field.name,
        column: field.column,
        // Loaded columns come from the raw file's column of the same name (derived ones are computed at load).
        source: sourceOf(contractSchema.properties.find((property) => property.name === field.name), odps.domain),
        masking: field.mask !== null,
      })),
    },
    searchable: [odps.id, odps.name, odps.description.purpose, odps.description.limitations ?? '', odps.description.usage ?? '', ...odps.tags, typeName, ...fields.map((field) => field.name)]
      .join('\n')
      .toLowerCase(),
  };
}

/** The example without the product's fields the caller may not read, so that it runs as it is for them. */
function exampleFor(query: string, denied: ReadonlySet<string>): string {
  if (denied.size === 0) return query;
  const heading = query.split('\n').filter((line) => line.startsWith('#'));
  const left: string[] = [];
  const trimmed = visit(parse(query), {
    Field(node) {
      if (!node.selectionSet && denied.has(node.name.value)) {
        left.push(node.name.value);
        return null;
      }
      return undefined;
    },
  });
  return `${[...heading, `# Left out, as you may not read them: ${left.join(', ')}.`].join('\n')}\n${print(trimmed)}\n`;
}

/** The raw column a loaded column comes from: `<domain>/<file>#<column>` (null for a derived column, or a field no column holds). */
function sourceOf(property: { readonly physicalName: string; readonly transformSourceObjects?: readonly string[] } | undefined, domain: string): string | null {
  const file = property?.transformSourceObjects?.[0];
  return property && file ? `${domain}/${file}#${property.physicalName}` : null;
}

interface LineageEdge {
  /** `SOURCE` (a raw input), `DOMAIN` (another domain resolving fields of this type), `PRODUCT` (another domain's product this domain feeds). */
  readonly kind: 'SOURCE' | 'DOMAIN' | 'PRODUCT';
  readonly name: string;
  /** The fields that edge carries, e.g. `Product.revenue`. */
  readonly fields: readonly string[];
  /** How they are made from it, when the feeding product says. */
  readonly description?: string | null;
}

/** An input of a product, as its domain reports it, with its product's own load and SLA (null: not in the catalog). */
type InputEntry = InputFreshness & { upstream: { readonly loadedAt: string | null; readonly slaSeconds: number | null } | null };

/** A load's freshness against its SLA, by the gateway's clock. */
function ownStatus(freshness: { readonly loadedAt: string | null; readonly slaSeconds: number | null }): 'FRESH' | 'STALE' | 'UNKNOWN' {
  if (!freshness.loadedAt || freshness.slaSeconds === null) return 'UNKNOWN';
  return (Date.now() - Date.parse(freshness.loadedAt)) / 1000 > freshness.slaSeconds ? 'STALE' : 'FRESH';
}

/** The other domains' products a contract says its product is fed by (its `inputs`: their change feeds), with the fields they make. */
function inputsOfContract(schema: { readonly customProperties?: readonly { readonly property: string; readonly value: unknown }[] }): { product: string; fields: string[]; description: string | null }[] {
  const value = schema.customProperties?.find((property) => property.property === 'inputs')?.value;
  if (!Array.isArray(value)) return [];
  return value.flatMap((input: { product?: unknown; fields?: unknown; description?: unknown }) =>
    typeof input?.product === 'string' ? [{ product: input.product, fields: Array.isArray(input.fields) ? input.fields.filter((field): field is string => typeof field === 'string') : [], description: typeof input.description === 'string' ? input.description : null }] : [],
  );
}

/** Which product of which domain resolves each field of another domain's type, and how (the contracts' `feeds`). */
type Feeders = ReadonlyMap<string, { readonly product: string; readonly domain: string; readonly how: string }>;

function feedersOf(documents: readonly DomainDocuments[]): Feeders {
  const feeders = new Map<string, { product: string; domain: string; how: string }>();
  for (const domain of documents) {
    for (const product of domain.products) {
      const feeds = product.odcs.schema[0]?.customProperties?.find((property) => property.property === 'feeds')?.value;
      if (!Array.isArray(feeds)) continue;
      for (const feed of feeds as { fields?: unknown; how?: unknown }[]) {
        if (!Array.isArray(feed?.fields) || typeof feed.how !== 'string') continue;
        for (const field of feed.fields) if (typeof field === 'string') feeders.set(field, { product: product.id, domain: domain.domain, how: feed.how });
      }
    }
  }
  return feeders;
}

/** The domain edges, with the fields a product of that domain says it feeds taken out as edges from that product. */
function byFeedingProduct(edges: readonly LineageEdge[], feeders: Feeders): LineageEdge[] {
  return edges.flatMap((edge) => {
    const products = new Map<string, { fields: string[]; how: string }>();
    const rest: string[] = [];
    for (const field of edge.fields) {
      const feeder = feeders.get(field);
      if (feeder && feeder.domain === edge.name) {
        const entry = products.get(feeder.product) ?? { fields: [], how: feeder.how };
        entry.fields.push(field);
        products.set(feeder.product, entry);
      } else rest.push(field);
    }
    return [
      ...[...products].map(([name, { fields, how }]): LineageEdge => ({ kind: 'PRODUCT', name, fields, description: how })),
      ...(rest.length > 0 ? [{ ...edge, fields: rest }] : []),
    ];
  });
}

/** The other domains that resolve some of these fields, each with its fields. */
function edgesByDomain(coordinates: readonly string[], owners: ReadonlyMap<string, readonly string[]>, domain: string): LineageEdge[] {
  const byDomain = new Map<string, string[]>();
  for (const coordinate of coordinates) {
    for (const owner of owners.get(coordinate) ?? []) {
      if (owner === domain || owner === CATALOG_SUBGRAPH_NAME) continue;
      // A key field every subgraph of the type can resolve is not a flow between domains.
      if ((owners.get(coordinate) ?? []).includes(domain)) continue;
      byDomain.set(owner, [...(byDomain.get(owner) ?? []), coordinate]);
    }
  }
  return [...byDomain].sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, fields]) => ({ kind: 'DOMAIN', name, fields }));
}

async function viewOf(context: CatalogContext): Promise<CatalogView> {
  if (context.principal.anonymous) {
    throw codedError('UNAUTHENTICATED', 'The data product catalog is readable by signed-in principals only: send a bearer token.');
  }
  context.view ??= (async () => {
    const served = context.sources.served();
    if (!served) return { products: [], unavailable: [] };
    const { documents, unavailable } = await context.sources.entries.read(served.subgraphs, served.version);
    const feeders = feedersOf(documents);
    const products = documents
      .flatMap((domain) => domain.products.map((product) => entryOf(product, domain.quality?.[product.id], domain.freshness?.[product.id], domain.pipelines?.[product.id], served, context.principal, feeders)))
      .filter((entry): entry is ProductEntry => entry !== null)
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    // Downstream: the products of other domains whose fields this product feeds (as it says), or its domain resolves (as the supergraph says).
    for (const product of products) {
      for (const other of products) {
        if (other.domain === product.domain) continue;
        for (const edge of other.lineage.upstream) {
          const fed = (edge.kind === 'PRODUCT' && edge.name === product.id) || (edge.kind === 'DOMAIN' && edge.name === product.domain);
          if (fed) product.lineage.downstream.push({ kind: 'PRODUCT', name: other.id, fields: edge.fields, description: edge.description ?? null });
        }
      }
    }
    // A product fed by another's is as fresh as its inputs: each input carries its product's own freshness.
    for (const product of products) {
      for (const input of product.freshness.inputs) {
        const upstream = products.find((candidate) => candidate.id === input.product)?.freshness;
        input.upstream = upstream ? { loadedAt: upstream.loadedAt, slaSeconds: upstream.slaSeconds } : null;
      }
    }
    return { products, unavailable };
  })();
  return context.view;
}

interface Filter {
  readonly domain?: string | null;
  readonly owner?: string | null;
  readonly tag?: string | null;
  readonly status?: string | null;
  readonly text?: string | null;
  readonly classification?: string | null;
}

function matches(entry: ProductEntry, filter: Filter): boolean {
  const lower = (value: string) => value.toLowerCase();
  if (filter.domain && entry.domain !== filter.domain) return false;
  if (filter.owner && !entry.owners.some((owner) => lower(owner.username) === lower(filter.owner!) || (owner.name && lower(owner.name) === lower(filter.owner!)))) return false;
  if (filter.tag && !entry.tags.includes(filter.tag)) return false;
  if (filter.status && entry.status !== filter.status) return false;
  if (filter.classification && !entry.fields.some((field) => field.classification === filter.classification!.toUpperCase())) return false;
  if (filter.text) {
    const words = lower(filter.text).split(/\s+/).filter(Boolean);
    if (!words.every((word) => entry.searchable.includes(word))) return false;
  }
  return true;
}

function facet(entries: readonly ProductEntry[], valuesOf: (entry: ProductEntry) => readonly string[]): { value: string; count: number }[] {
  const counts = new Map<string, number>();
  for (const entry of entries) for (const value of new Set(valuesOf(entry))) counts.set(value, (counts.get(value) ?? 0) + 1);
  return [...counts].map(([value, count]) => ({ value, count })).sort((a, b) => b.count - a.count || (a.value < b.value ? -1 : 1));
}

const cursorOf = (id: string) => Buffer.from(`product:${id}`).toString('base64url');
function idOfCursor(cursor: string): string {
  const decoded = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!decoded.startsWith('product:') || cursorOf(decoded.slice(8)) !== cursor) {
    throw codedError('INVALID_CURSOR', 'This cursor was not returned by dataProducts: pass an endCursor of a previous page.');
  }
  return decoded.slice(8);
}

const resolvers = {
  Query: {
    async dataProducts(_root: unknown, args: { filter?: Filter | null; first?: number | null; after?: string | null }, context: CatalogContext) {
      const first = args.first ?? CATALOG_PAGE_DEFAULT;
      if (!Number.isInteger(first) || first < 0 || first > CATALOG_PAGE_MAX) {
        throw codedError('PAGE_SIZE_OUT_OF_RANGE', `first must be between 0 and ${CATALOG_PAGE_MAX}; got ${first}.`);
      }
      for (const [key, value] of Object.entries(args.filter ?? {})) {
        if (typeof value === 'string' && value.length > CATALOG_FILTER_MAX_LENGTH) {
          throw codedError('INVALID_ARGUMENT', `"filter.${key}" may be at most ${CATALOG_FILTER_MAX_LENGTH} characters long.`, { argument: `filter.${key}` });
        }
      }
      const afterId = args.after ? idOfCursor(args.after) : null;
      const view = await viewOf(context);
      const matching = view.products.filter((entry) => matches(entry, args.filter ?? {}));
      // After a cursor: the products whose id sorts after it (stable even when a product was removed).
      const rest = afterId === null ? matching : matching.filter((entry) => entry.id > afterId);
      const page = rest.slice(0, first);
      const edges = page.map((node) => ({ cursor: cursorOf(node.id), node }));
      return {
        edges,
        nodes: page,
        totalCount: matching.length,
        pageInfo: { hasNextPage: rest.length > page.length, hasPreviousPage: matching.length > rest.length, startCursor: edges[0]?.cursor ?? null, endCursor: edges.at(-1)?.cursor ?? null },
        facets: {
          domain: facet(matching, (entry) => [entry.domain]),
          owner: facet(matching, (entry) => entry.owners.map((owner) => owner.username)),
          tag: facet(matching, (entry) => entry.tags),
          status: facet(matching, (entry) => [entry.status]),
          classification: facet(matching, (entry) => entry.fields.map((field) => field.classification)),
        },
        unavailableDomains: view.unavailable,
      };
    },
    async dataProduct(_root: unknown, args: { id: string }, context: CatalogContext) {
      const view = await viewOf(context);
      return view.products.find((entry) => entry.id === args.id) ?? null;
    },
  },
  DataProductFreshness: {
    // The age at this moment, by the gateway's clock: the domains' entries are kept for a while.
    ageSeconds: (freshness: FreshnessEntry) => (freshness.loadedAt ? Math.max(0, Math.round((Date.now() - Date.parse(freshness.loadedAt)) / 1000)) : null),
    status(freshness: ProductEntry['freshness']) {
      // A product fed by other domains' products is as fresh as its inputs: one not read, failing, or stale itself makes it stale.
      if (freshness.inputs.some((input) => input.position === null || input.error !== null || (input.upstream && ownStatus(input.upstream) === 'STALE'))) return 'STALE';
      return ownStatus(freshness);
    },
  },
  InputFreshness: {
    status: (input: InputEntry) => (input.upstream ? ownStatus(input.upstream) : 'UNKNOWN'),
  },
  DataProductPipeline: {
    slaMet(pipeline: NonNullable<ProductEntry['pipeline']>) {
      if (!pipeline.nextRunAt || !pipeline.loadedAt || pipeline.slaSeconds === null) return null;
      return Date.parse(pipeline.nextRunAt) <= Date.parse(pipeline.loadedAt) + pipeline.slaSeconds * 1000;
    },
    runs(pipeline: NonNullable<ProductEntry['pipeline']>, args: { first?: number | null }) {
      const first = args.first ?? 5;
      if (!Number.isInteger(first) || first < 1 || first > 20) throw codedError('INVALID_ARGUMENT', `first must be between 1 and 20; got ${first}.`, { argument: 'first' });
      return pipeline.runs.slice(0, first);
    },
  },
  PipelineRun: {
    rowsRead: (run: PipelineRunEntry) => (typeof run.read === 'number' ? run.read : null),
    qualityOutcome: (run: PipelineRunEntry) => (typeof run.quality?.outcome === 'string' ? run.quality.outcome : null),
    qualityRunId: (run: PipelineRunEntry) => (typeof run.quality?.runId === 'string' ? run.quality.runId : null),
    rowsInserted: (run: PipelineRunEntry) => (typeof run.increment?.inserted === 'number' ? run.increment.inserted : null),
    rowsUpdated: (run: PipelineRunEntry) => (typeof run.increment?.updated === 'number' ? run.increment.updated : null),
    rowsDeleted: (run: PipelineRunEntry) => (typeof run.increment?.deleted === 'number' ? run.increment.deleted : null),
    watermark: (run: PipelineRunEntry) => (typeof run.increment?.watermark === 'string' ? run.increment.watermark : null),
    backfillFrom: (run: PipelineRunEntry) => (typeof run.range?.from === 'string' ? run.range.from : null),
    backfillTo: (run: PipelineRunEntry) => (typeof run.range?.to === 'string' ? run.range.to : null),
    anomaliesAccepted: (run: PipelineRunEntry) => run.anomaliesAccepted === true,
    parentRunId: (run: PipelineRunEntry) => (typeof run.parent?.runId === 'string' ? run.parent.runId : null),
    parentPipeline: (run: PipelineRunEntry) => (typeof run.parent?.pipeline === 'string' ? run.parent.pipeline : null),
    anomalies: (run: PipelineRunEntry) => (Array.isArray(run.anomalies) ? run.anomalies : []).map((anomaly) => ({ ...anomaly, severity: anomaly.severity === 'error' ? 'error' : 'warning', expectedLow: anomaly.band?.low ?? null, expectedHigh: anomaly.band?.high ?? null })),
  },
  DataProductQuality: {
    history(quality: ProductEntry['quality'], args: { first?: number | null }) {
      const first = args.first ?? 5;
      if (!Number.isInteger(first) || first < 1 || first > 20) throw codedError('INVALID_ARGUMENT', `first must be between 1 and 20; got ${first}.`, { argument: 'first' });
      return quality.history.slice(0, first);
    },
  },
  QualityCheckResult: {
    name: (check: QualityRunEntry['checks'][number]) => check.check,
  },
  DataProduct: {
    async usage(entry: ProductEntry, args: { days?: number | null }, context: CatalogContext) {
      const days = args.days ?? USAGE_DAYS_DEFAULT;
      if (!Number.isInteger(days) || days < 1 || days > USAGE_DAYS_MAX) throw codedError('INVALID_ARGUMENT', `days must be between 1 and ${USAGE_DAYS_MAX}; got ${days}.`);
      const records = await context.sources.usage(new Date(Date.now() - days * 86_400_000));
      if (!records) return [];
      const coordinates = new Set([...entry.rootFields, ...entry.fields.map((field) => `${entry.graphqlType}.${field.name}`)]);
      const registered = context.sources.registeredClients();
      const byClient = new Map<string, { client: string; registered: boolean; reads: number; lastSeen: string }>();
      for (const record of records) {
        if (!coordinates.has(record.coordinate)) continue;
        const seen = byClient.get(record.client) ?? { client: record.client, registered: registered.has(record.client), reads: 0, lastSeen: record.lastSeen };
        seen.reads += record.count;
        if (record.lastSeen > seen.lastSeen) seen.lastSeen = record.lastSeen;
        byClient.set(record.client, seen);
      }
      return [...byClient.values()].sort((a, b) => b.reads - a.reads || (a.client < b.client ? -1 : 1));
    },
  },
};

/** The catalog's subgraph schema, with its resolvers. */
export function buildCatalogSchema(): GraphQLSchema {
  return buildSubgraphSchema([{ typeDefs: parse(CATALOG_SUBGRAPH_SDL), resolvers: resolvers as unknown as GraphQLResolverMap<unknown> }]);
}

/** The catalog's fetches, answered in the gateway's process, as the caller of the operation. */
export class CatalogDataSource implements GraphQLDataSource {
  readonly #schema = buildCatalogSchema();
  // The documents the query planner sends: few and repeated.
  readonly #documents = new Map<string, DocumentNode>();

  constructor(private readonly sources: CatalogSources) {}

  async process(options: GraphQLDataSourceProcessOptions): Promise<{ data?: Record<string, unknown> | null; errors?: readonly GraphQLError[] }> {
    const { request } = options;
    const query = request.query ?? '';
    let document = this.#documents.get(query);
    if (!document) {
      document = parse(query);
      if (this.#documents.size >= 500) this.#documents.clear();
      this.#documents.set(query, document);
    }
    const principal = 'context' in options ? ((options.context as { principal?: Principal }).principal ?? ANONYMOUS) : ANONYMOUS;
    // The catalog changes without a data version (quality runs, freshness, usage): an answer that read it is not kept.
    if ('context' in options) {
      const volatile = (options.context as { volatile?: { read: boolean } }).volatile;
      if (volatile) volatile.read = true;
    }
    const result = await execute({
      schema: this.#schema,
      document,
      variableValues: request.variables ?? {},
      ...(request.operationName ? { operationName: request.operationName } : {}),
      contextValue: { principal, sources: this.sources } satisfies CatalogContext,
    });
    return { data: result.data ?? null, ...(result.errors ? { errors: result.errors } : {}) };
  }
}
