/**
 * The catalog entries the domains serve: each domain subgraph answers, at `/catalog` next to its
 * GraphQL endpoint and to signed callers only, the ODPS document and ODCS contract of each of its
 * data products. The gateway reads them per supergraph served, keeps them for a short while, and
 * keeps a domain's last good answer when it stops answering (reporting it as unavailable only when
 * it never answered for this supergraph).
 */
import type { Logger } from 'pino';
import { SIGNATURE_HEADER, signSubgraphRequest } from '../../policy/subgraph-signature.js';
import type { SubgraphEndpoint } from '../subgraph-calls/subgraph-endpoint.js';
import { DETECTORS, type ProductProfile } from '../../policy/discovery.js';
import { productVersionsOf, type DataProductVersion } from '../subgraph-calls/subgraph-data-source.js';

/** One data product's standard documents: its ODPS document and its ODCS contract (plain JSON). */
export interface ProductDocument {
  /** `<domain>.<name>`. */
  readonly id: string;
  readonly odps: OdpsDocument;
  readonly odcs: OdcsDocument;
  /** Its columns' profile from the serving version's load (sensitive-data discovery), when it was profiled. */
  readonly profile?: ProductProfile;
}

/** One run of a product's data quality checks, as a domain's `/catalog` reports it (no values). */
export interface QualityRunEntry {
  readonly runId: string;
  readonly at: string;
  readonly trigger: string;
  readonly outcome: string;
  readonly checks: readonly { readonly check: string; readonly dimension: string; readonly severity: string; readonly outcome: string; readonly value: number | null; readonly threshold: string; readonly unit: string; readonly failedRows: number | null }[];
}

/** A product's data quality, as its domain reports it. */
export interface QualityEntry {
  readonly status: string;
  readonly lastRun: QualityRunEntry | null;
  readonly history: readonly QualityRunEntry[];
}

/** One run of a product's pipeline, as its domain reports it. */
export interface PipelineRunEntry {
  readonly runId: string;
  readonly trigger: string;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly attempts: number;
  readonly outcome: string;
  readonly load: string | null;
  readonly rows: number | null;
  readonly read?: number;
  readonly quality?: { readonly runId: string; readonly outcome: string };
  readonly error: string | null;
  readonly anomalies?: readonly { readonly measure: string; readonly kind: string; readonly severity?: string; readonly value: number; readonly band: { readonly low: number; readonly high: number } | null; readonly message: string }[];
  readonly increment?: { readonly inserted: number; readonly updated: number; readonly deleted: number; readonly watermark: string | null };
  readonly range?: { readonly from: string; readonly to: string };
  readonly parent?: { readonly pipeline: string; readonly runId: string };
  readonly anomaliesAccepted?: boolean;
}

/** A product's pipeline, as its domain reports it. */
export interface PipelineEntry {
  readonly everySeconds: number | null;
  readonly nextRunAt: string | null;
  readonly paused: boolean;
  readonly runs: readonly PipelineRunEntry[];
}

/** What a domain's `/catalog` answers: its products' standard documents, and their live quality and pipelines. */
export interface DomainDocuments {
  readonly domain: string;
  readonly products: readonly ProductDocument[];
  readonly quality?: Readonly<Record<string, QualityEntry>>;
  readonly freshness?: Readonly<Record<string, FreshnessEntry>>;
  readonly pipelines?: Readonly<Record<string, PipelineEntry | null>>;
}

/** When a product's serving version was loaded, its newest record, and its SLA threshold, as its domain reports them. */
export interface FreshnessEntry {
  readonly loadedAt: string | null;
  readonly newestRecordAt: string | null;
  readonly slaSeconds: number | null;
  /** Other domains' products it is fed by: how far each is read. */
  readonly inputs?: readonly InputFreshness[];
}

/** How far a product has read one of its inputs (another domain's product, by its change feed). */
export interface InputFreshness {
  readonly product: string;
  /** The feed position its values are read up to (null: not read yet). */
  readonly position: number | null;
  /** Events the feed held past it when last seen (null: not known). */
  readonly behind: number | null;
  /** When the last event read was made (or the input was read whole). */
  readonly readAt: string | null;
  /** The last failure's codes, until a read succeeds. */
  readonly error: string | null;
}

/** The parts of an ODPS 1.0 document the catalog reads. */
export interface OdpsDocument {
  readonly id: string;
  readonly name: string;
  readonly version: string;
  readonly status: string;
  readonly domain: string;
  readonly description: { readonly purpose: string; readonly limitations?: string; readonly usage?: string };
  readonly tags: readonly string[];
  readonly inputPorts?: readonly { readonly name: string; readonly version: string; readonly contractId: string }[];
  readonly outputPorts: readonly { readonly name: string; readonly type: string; readonly version: string; readonly contractId: string; readonly description?: string }[];
  readonly team: { readonly members: readonly { readonly username: string; readonly name?: string; readonly role: string }[] };
}

/** The parts of an ODCS 3.1 contract the catalog reads. */
export interface OdcsDocument {
  readonly id: string;
  readonly schema: readonly {
    readonly name: string;
    readonly physicalName: string;
    readonly properties: readonly {
      readonly name: string;
      readonly physicalName: string;
      readonly logicalType?: string;
      readonly required?: boolean;
      readonly classification?: string;
      /** The raw files a loaded column comes from (absent for a column derived at load). */
      readonly transformSourceObjects?: readonly string[];
    }[];
    readonly customProperties?: readonly { readonly property: string; readonly value: unknown }[];
  }[];
  readonly slaProperties: readonly { readonly property: string; readonly value: string | number; readonly unit?: string; readonly element?: string; readonly description?: string }[];
}

/**
 * What the catalog and the registry read of a product's documents, checked for shape: documents
 * come from a folder or a running subgraph, and a malformed one is refused with what is wrong, never
 * a crash. Returns
 * the problems (empty: usable).
 */
export function documentProblems(product: unknown): string[] {
  const problems: string[] = [];
  const p = product as { id?: unknown; odps?: any; odcs?: any; profile?: unknown } | null;
  const text = (value: unknown, what: string) => {
    if (typeof value !== 'string' || value === '') problems.push(`${what} must be a non-empty string`);
  };
  const list = (value: unknown, what: string) => {
    if (!Array.isArray(value)) problems.push(`${what} must be a list`);
  };
  if (!p || typeof p !== 'object') return ['a product must be an object with id, odps and odcs'];
  text(p.id, 'id');
  if (!p.odps || typeof p.odps !== 'object') problems.push('odps must be an ODPS document');
  else {
    for (const key of ['id', 'name', 'version', 'status', 'domain'] as const) text(p.odps[key], `odps.${key}`);
    if (!p.odps.description || typeof p.odps.description !== 'object') problems.push('odps.description must be an object');
    list(p.odps.tags, 'odps.tags');
    list(p.odps.outputPorts, 'odps.outputPorts');
    list(p.odps.team?.members, 'odps.team.members');
  }
  if (!p.odcs || typeof p.odcs !== 'object') problems.push('odcs must be an ODCS contract');
  else {
    text(p.odcs.id, 'odcs.id');
    list(p.odcs.schema, 'odcs.schema');
    if (Array.isArray(p.odcs.schema)) {
      p.odcs.schema.forEach((object: any, index: number) => {
        text(object?.name, `odcs.schema[${index}].name`);
        list(object?.properties, `odcs.schema[${index}].properties`);
        if (Array.isArray(object?.properties)) object.properties.forEach((property: any, at: number) => text(property?.name, `odcs.schema[${index}].properties[${at}].name`));
      });
    }
    list(p.odcs.slaProperties, 'odcs.slaProperties');
    if (Array.isArray(p.odcs.slaProperties)) p.odcs.slaProperties.forEach((sla: any, index: number) => text(sla?.property, `odcs.slaProperties[${index}].property`));
  }
  if (p.profile !== undefined) problems.push(...profileProblems(p.profile, p.id));
  return problems;
}

const DETECTOR_NAMES: ReadonlySet<string> = new Set(DETECTORS);

/** What is wrong with a product's profile (a profile is judged by the registry: a malformed one is refused, not skipped). */
function profileProblems(profile: any, id: unknown): string[] {
  const problems: string[] = [];
  if (!profile || typeof profile !== 'object') return ['profile must be an object'];
  if (profile.product !== id) problems.push('profile.product must be the product\'s id');
  if (typeof profile.table !== 'string' || typeof profile.profiledAt !== 'string') problems.push('profile.table and profile.profiledAt must be strings');
  const count = (value: unknown) => Number.isSafeInteger(value) && (value as number) >= 0;
  const share = (value: unknown) => typeof value === 'number' && value >= 0 && value <= 1;
  if (!count(profile.rows)) problems.push('profile.rows must be a count');
  if (!Array.isArray(profile.columns)) return [...problems, 'profile.columns must be a list'];
  profile.columns.forEach((column: any, index: number) => {
    const at = `profile.columns[${index}]`;
    if (!column || typeof column !== 'object' || typeof column.column !== 'string' || (column.field !== null && typeof column.field !== 'string')) return problems.push(`${at} must name its column and field`);
    if (!share(column.nullShare) || !count(column.distinctCount) || !count(column.sampled)) problems.push(`${at}: nullShare must be a share, distinctCount and sampled counts`);
    if (!Array.isArray(column.detections) || !column.detections.every((d: any) => DETECTOR_NAMES.has(d?.detector) && share(d?.share))) {
      problems.push(`${at}.detections must be a list of { detector (${DETECTORS.join(', ')}), share (0 to 1) }`);
    }
    return undefined;
  });
  return problems;
}

/** What a domain's `/versions` answers: each of its products' serving versions. */
export async function fetchSubgraphVersions(endpoint: SubgraphEndpoint, options: { readonly signingKey: string; readonly timeoutMs: number }): Promise<{ domain: string; products: DataProductVersion[] }> {
  const answer = (await readPlatformRoute(endpoint, 'versions', options)) as { domain?: unknown; products?: unknown };
  if (answer.domain !== endpoint.name || !Array.isArray(answer.products)) throw new CatalogReadError(`${endpoint.name}'s /versions answer is not its own products' versions`);
  // Read as a GraphQL answer's extensions.dataProducts are: well-formed entries of its own products only.
  return { domain: endpoint.name, products: productVersionsOf(endpoint.name, { dataProducts: answer.products }) };
}

export class CatalogReadError extends Error {
  override name = 'CatalogReadError';
}

/**
 * POSTs to one of a subgraph's platform routes beside its GraphQL endpoint (`catalog`, `versions`),
 * signed, with no caller token (nothing they answer depends on the caller); its JSON answer.
 */
async function readPlatformRoute(endpoint: SubgraphEndpoint, route: 'catalog' | 'versions', options: { readonly signingKey: string; readonly timeoutMs: number }): Promise<unknown> {
  const body = '{}';
  const response = await fetch(new URL(route, endpoint.url), {
    method: 'POST',
    headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signSubgraphRequest({ key: options.signingKey, body }) },
    body,
    signal: AbortSignal.timeout(options.timeoutMs),
  });
  if (!response.ok) {
    await response.arrayBuffer();
    if (response.status === 404) throw new NoCatalogError(`${endpoint.name} serves no /${route}`);
    throw new CatalogReadError(`${endpoint.name} answered HTTP ${response.status} at /${route}`);
  }
  return response.json();
}

/** A domain's `/catalog`, beside its GraphQL endpoint (`…/graphql` → `…/catalog`). */
export const catalogUrlOf = (graphqlUrl: string): URL => new URL('catalog', graphqlUrl);

/** The subgraph has no `/catalog` (not built with the kit): it serves no data product documents. */
export class NoCatalogError extends CatalogReadError {
  override name = 'NoCatalogError';
}

/** Reads one domain's documents, as the platform (signed, no caller token: nothing in them depends on the caller). */
export async function fetchDomainDocuments(endpoint: SubgraphEndpoint, options: { readonly signingKey: string; readonly timeoutMs: number }): Promise<DomainDocuments> {
  const answer = (await readPlatformRoute(endpoint, 'catalog', options)) as Partial<DomainDocuments>;
  if (answer.domain !== endpoint.name || !Array.isArray(answer.products)) throw new CatalogReadError(`${endpoint.name}'s /catalog answer is not a catalog of its own products`);
  // A domain serves its own products only: an entry under another domain's address is dropped.
  const products = answer.products.filter((product) => typeof product?.id === 'string' && product.id.startsWith(`${endpoint.name}.`) && product.odps?.domain === endpoint.name);
  const quality = answer.quality && typeof answer.quality === 'object' ? answer.quality : undefined;
  const freshness = answer.freshness && typeof answer.freshness === 'object' ? answer.freshness : undefined;
  const pipelines = answer.pipelines && typeof answer.pipelines === 'object' ? answer.pipelines : undefined;
  return { domain: endpoint.name, products, ...(quality ? { quality } : {}), ...(freshness ? { freshness } : {}), ...(pipelines ? { pipelines } : {}) };
}

export interface DomainEntries {
  /** The documents of every domain that answered (or answered before), and the domains that never did. */
  read(subgraphs: readonly SubgraphEndpoint[], supergraphVersion: string): Promise<{ documents: DomainDocuments[]; unavailable: string[] }>;
}

/** How long a domain's answer is used before it is read again. */
export const CATALOG_TTL_MS = 30_000;

export function createDomainEntries(options: { readonly signingKey: string; readonly timeoutMs: number; readonly log: Logger; readonly ttlMs?: number }): DomainEntries {
  const ttl = options.ttlMs ?? CATALOG_TTL_MS;
  // Per subgraph name: the supergraph version and time of the last good answer, and the answer.
  const cache = new Map<string, { version: string; url: string; at: number; documents: DomainDocuments }>();
  // One read per domain at a time, whatever the number of callers.
  const inFlight = new Map<string, Promise<DomainDocuments | null>>();

  const readOne = (endpoint: SubgraphEndpoint, version: string): Promise<DomainDocuments | null> => {
    const cached = cache.get(endpoint.name);
    const fresh = cached && cached.version === version && cached.url === endpoint.url && Date.now() - cached.at < ttl;
    if (fresh) return Promise.resolve(cached.documents);
    const key = `${endpoint.name}\n${endpoint.url}\n${version}`;
    let pending = inFlight.get(key);
    if (!pending) {
      pending = fetchDomainDocuments(endpoint, options)
        .then((answer) => {
          // A malformed entry is left out (and logged), never a failing catalog.
          const products = answer.products.filter((product) => {
            const problems = documentProblems(product);
            if (problems.length > 0) options.log.warn({ subgraph: endpoint.name, product: String(product?.id), problems }, 'a malformed data product document was left out of the catalog');
            return problems.length === 0;
          });
          const documents = { ...answer, products };
          cache.set(endpoint.name, { version, url: endpoint.url, at: Date.now(), documents });
          return documents;
        })
        .catch((error: unknown) => {
          options.log.warn({ err: error, subgraph: endpoint.name }, 'a domain\'s catalog entries could not be read');
          // The last good answer of the same subgraph stays in use (for this supergraph or an earlier one).
          return cached && cached.url === endpoint.url ? cached.documents : null;
        })
        .finally(() => inFlight.delete(key));
      inFlight.set(key, pending);
    }
    return pending;
  };

  return {
    async read(subgraphs, version) {
      const answers = await Promise.all(subgraphs.map(async (endpoint) => ({ endpoint, documents: await readOne(endpoint, version) })));
      return {
        documents: answers.flatMap(({ documents }) => (documents ? [documents] : [])),
        unavailable: answers.filter(({ documents }) => !documents).map(({ endpoint }) => endpoint.name),
      };
    },
  };
}
