/**
 * Lineage of each load, as OpenLineage 2-0-2 run events: for every data product of a domain, a
 * START when its load begins and a COMPLETE (swapped in) or FAIL (rejected by its quality checks,
 * or the load failed) when it ends. The job is the product's ingestion (`<domain>.<product>.ingestion`);
 * its inputs are the raw files, with their schema; its output is the product's warehouse table,
 * with its schema, its owners, the quality checks' assertions and the column lineage from each raw
 * column to the table column it fills. A load a pipeline run made names that run as its parent
 * (ParentRunFacet); the pipeline runs are jobs too (`<domain>.<product>.pipeline`), and a run that
 * followed another (a dependency) names it as its parent: the flow.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { v5 as uuidV5 } from 'uuid';
import type { Domain } from './domain.js';
import type { QualityRun } from './quality-store.js';
import type { TableSpec } from './warehouse/tables.js';
import { parseWarehouseUrl } from './warehouse/warehouse.js';

export const OPENLINEAGE_PRODUCER = 'https://github.com/datamesh/datamesh/tree/main/subgraphs/kit/lineage.ts';
const SCHEMA_URL = 'https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent';
const FACET = (name: string, version: string) => ({ _producer: OPENLINEAGE_PRODUCER, _schemaURL: `https://openlineage.io/spec/facets/${version}/${name}.json#/$defs/${name}` });
/** The namespace of the mesh's jobs. */
export const LINEAGE_NAMESPACE = 'datamesh';

export type LineageEvent = Record<string, unknown> & { readonly eventType: 'START' | 'COMPLETE' | 'FAIL'; readonly run: { readonly runId: string; readonly facets?: Record<string, unknown> } };

/** The run a load (or a pipeline run) belongs to: a pipeline run, by its address and the runner's run id. */
export interface LineageParent {
  readonly pipeline: string;
  readonly runId: string;
}

/** Namespace of the pipeline runs' OpenLineage run ids (UUID v5 of `<pipeline>/<runner's run id>`: BullMQ's ids are no UUIDs). */
const PIPELINE_RUNS = 'b7d3c0a2-5f0e-4c57-9b8e-2f4a1f6d9e01';

/** A pipeline run's OpenLineage run id: the same UUID for the same run, wherever it is computed. */
export const pipelineRunLineageId = (pipeline: string, runId: string): string => uuidV5(`${pipeline}/${runId}`, PIPELINE_RUNS);

const parentFacet = (parent: LineageParent) => ({
  ...FACET('ParentRunFacet', '1-0-1'),
  run: { runId: pipelineRunLineageId(parent.pipeline, parent.runId) },
  job: { namespace: LINEAGE_NAMESPACE, name: `${parent.pipeline}.pipeline` },
});

/**
 * A pipeline run's event: START when its first attempt starts, COMPLETE when it succeeds, FAIL when
 * it fails (the error with it); none for the other steps (a retry is the same run) or a run skipped
 * while paused (it never ran). A dependent run names the run it followed as its parent.
 */
export function pipelineRunLineage(run: { readonly pipeline: string; readonly runId: string; readonly trigger: string; readonly event: string; readonly attempt: number; readonly at: string; readonly error?: string; readonly parent?: LineageParent }): LineageEvent | null {
  const eventType = run.event === 'started' && run.attempt === 1 ? 'START' : run.event === 'succeeded' ? 'COMPLETE' : run.event === 'failed' ? 'FAIL' : null;
  if (!eventType) return null;
  const facets: Record<string, unknown> = {
    ...(run.parent ? { parent: parentFacet(run.parent) } : {}),
    ...(run.error && eventType === 'FAIL' ? { errorMessage: { ...FACET('ErrorMessageRunFacet', '1-0-1'), message: run.error, programmingLanguage: 'TypeScript' } } : {}),
  };
  return {
    eventType,
    eventTime: run.at,
    producer: OPENLINEAGE_PRODUCER,
    schemaURL: SCHEMA_URL,
    run: { runId: pipelineRunLineageId(run.pipeline, run.runId), ...(Object.keys(facets).length > 0 ? { facets } : {}) },
    job: {
      namespace: LINEAGE_NAMESPACE,
      name: `${run.pipeline}.pipeline`,
      facets: { jobType: { ...FACET('JobTypeJobFacet', '2-0-4'), processingType: 'BATCH', integration: 'DATAMESH', jobType: 'DAG' } },
    },
    inputs: [],
    outputs: [],
  };
}

export interface LoadLineage {
  /** A START per product of the domain, as its load begins. */
  start(): LineageEvent[];
  /** A COMPLETE (or FAIL, with why) per product, as its load ends. */
  end(outcome: { readonly swapped: boolean; readonly quality?: QualityRun; readonly error?: string }): LineageEvent[];
}

/**
 * A warehouse table as an OpenLineage dataset: namespace `duckdb://<file>` (name: the table), or
 * `postgres://host:port` (name: `<database>.<schema>.<table>`), never with credentials.
 */
function tableDatasets(warehouseUrl: string): { readonly namespace: string; name(table: string): string } {
  const location = parseWarehouseUrl(warehouseUrl);
  if (location.dialect === 'duckdb') return { namespace: `duckdb://${location.file}`, name: (table) => table };
  const url = new URL(location.connectionString);
  return { namespace: `postgres://${url.host}`, name: (table) => `${url.pathname.slice(1)}.${location.schema}.${table}` };
}

const schemaFacet = (table: TableSpec, derived: boolean) => ({
  ...FACET('SchemaDatasetFacet', '1-2-0'),
  fields: table.columns.filter((column) => derived || !column.derived).map((column, index) => ({ name: column.name, type: column.type.toUpperCase(), ordinal_position: index + 1 })),
});

/**
 * The lineage of one load of a domain: `warehouse` is where it goes (a warehouse URL; its
 * credentials never reach an event), `rawDir` where its files come from.
 */
export function loadLineage(domain: Domain<any, any>, options: { readonly rawDir: string; readonly warehouse: string; readonly now?: () => Date; readonly parent?: LineageParent }): LoadLineage {
  const now = options.now ?? (() => new Date());
  const runs = new Map(domain.dataProducts.map(({ spec }) => [spec.name, randomUUID()]));
  const output = tableDatasets(options.warehouse);
  const inputNamespace = `file://${options.rawDir}`;

  const event = (eventType: LineageEvent['eventType'], product: Domain<any, any>['dataProducts'][number], extra: Record<string, unknown> = {}): LineageEvent => {
    const { spec } = product;
    const table = domain.tables.find((candidate) => candidate.name === spec.table)!;
    return {
      eventType,
      eventTime: now().toISOString(),
      producer: OPENLINEAGE_PRODUCER,
      schemaURL: SCHEMA_URL,
      run: { runId: runs.get(spec.name)!, ...(options.parent ? { facets: { parent: parentFacet(options.parent) } } : {}) },
      job: {
        namespace: LINEAGE_NAMESPACE,
        name: `${domain.name}.${spec.name}.ingestion`,
        facets: { jobType: { ...FACET('JobTypeJobFacet', '2-0-4'), processingType: 'BATCH', integration: 'DATAMESH', jobType: 'JOB' } },
      },
      inputs: [{ namespace: inputNamespace, name: join(domain.name, table.file ?? `${table.name}.csv`), facets: { schema: schemaFacet(table, false) } }],
      outputs: [{ namespace: output.namespace, name: output.name(table.name), facets: outputFacets(table, spec, extra.quality as QualityRun | undefined) }],
      ...(extra.error
        ? { run: { runId: runs.get(spec.name)!, facets: { ...(options.parent ? { parent: parentFacet(options.parent) } : {}), errorMessage: { ...FACET('ErrorMessageRunFacet', '1-0-1'), message: String(extra.error), programmingLanguage: 'TypeScript' } } } }
        : {}),
    };
  };

  const outputFacets = (table: TableSpec, spec: Domain<any, any>['dataProducts'][number]['spec'], quality: QualityRun | undefined) => ({
    schema: schemaFacet(table, true),
    ownership: { ...FACET('OwnershipDatasetFacet', '1-0-1'), owners: spec.metadata.owners.map((owner) => ({ name: `user:${owner.username}`, type: owner.role.toUpperCase() })) },
    // Each loaded column comes from the raw column of the same name, as it is.
    columnLineage: {
      ...FACET('ColumnLineageDatasetFacet', '1-2-0'),
      fields: Object.fromEntries(
        table.columns
          .filter((column) => !column.derived)
          .map((column) => [column.name, { inputFields: [{ namespace: inputNamespace, name: join(domain.name, table.file ?? `${table.name}.csv`), field: column.name, transformations: [{ type: 'DIRECT', subtype: 'IDENTITY', masking: false }] }] }]),
      ),
    },
    ...(quality
      ? {
          dataQualityAssertions: {
            ...FACET('DataQualityAssertionsDatasetFacet', '1-1-0'),
            assertions: quality.results
              .filter((result) => result.product === `${domain.name}.${spec.name}`)
              .map((result) => ({ assertion: result.check, success: result.outcome === 'pass', severity: result.severity, name: result.check, expected: result.threshold, ...(result.value !== null ? { actual: String(result.value) } : {}) })),
          },
        }
      : {}),
  });

  return {
    start: () => domain.dataProducts.map((product) => event('START', product)),
    end: ({ swapped, quality, error }) =>
      domain.dataProducts.map((product) => event(swapped ? 'COMPLETE' : 'FAIL', product, { quality, ...(swapped ? {} : { error: error ?? 'the load was rejected by its quality checks; the serving version stays' }) })),
  };
}

/**
 * Where lineage events go: appended, one JSON line each, to `<dir>/<domain>.jsonl`, and posted to
 * an OpenLineage endpoint when one is configured (`OPENLINEAGE_URL`: Marquez's `POST
 * /api/v1/lineage`). A failed post is logged, never a failed load.
 */
export function lineageSink(options: { readonly dir: string; readonly domain: string; readonly url?: string | undefined; readonly log: { warn(object: object, message: string): void } }) {
  let pending: Promise<void> = Promise.resolve();
  const endpoint = options.url ? new URL('api/v1/lineage', options.url.endsWith('/') ? options.url : `${options.url}/`) : null;
  return {
    emit(events: readonly LineageEvent[]): void {
      pending = pending.then(async () => {
        const { appendFile, mkdir } = await import('node:fs/promises');
        await mkdir(options.dir, { recursive: true });
        await appendFile(join(options.dir, `${options.domain}.jsonl`), events.map((event) => `${JSON.stringify(event)}\n`).join(''));
        if (!endpoint) return;
        for (const event of events) {
          try {
            const response = await fetch(endpoint, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(event), signal: AbortSignal.timeout(5_000) });
            await response.arrayBuffer();
            if (!response.ok) throw new Error(`HTTP ${response.status}`);
          } catch (error) {
            options.log.warn({ err: error, endpoint: endpoint.href, eventType: event.eventType }, 'a lineage event could not be posted to the OpenLineage endpoint');
          }
        }
      });
    },
    /** Resolves once every event emitted so far is written (and posted). */
    flush: () => pending,
  };
}

/**
 * The serving step, as OpenLineage run events (one START per product, when the subgraph starts
 * serving: a service has no end): the job `<domain>.<product>.serving` reads the product's table
 * and serves its GraphQL type; the column lineage maps each field to the column behind it, with
 * `masking: true` where the policy masks the field's values for some principals.
 */
export function servingLineage(
  domain: Domain<any, any>,
  options: { readonly warehouse: string; readonly maskOf: (typeName: string, fieldName: string) => string | null; readonly now?: () => Date },
): LineageEvent[] {
  const now = options.now ?? (() => new Date());
  const { namespace: tableNamespace, name: tableName } = tableDatasets(options.warehouse);
  return domain.dataProducts.map(({ spec }) => {
    const fields = Object.entries(spec.columns as Record<string, string>);
    return {
      eventType: 'START',
      eventTime: now().toISOString(),
      producer: OPENLINEAGE_PRODUCER,
      schemaURL: SCHEMA_URL,
      run: { runId: randomUUID() },
      job: {
        namespace: LINEAGE_NAMESPACE,
        name: `${domain.name}.${spec.name}.serving`,
        facets: { jobType: { ...FACET('JobTypeJobFacet', '2-0-4'), processingType: 'SERVICE', integration: 'DATAMESH', jobType: 'GRAPHQL_SUBGRAPH' } },
      },
      inputs: [{ namespace: tableNamespace, name: tableName(spec.table) }],
      outputs: [
        {
          namespace: `graphql://${domain.name}`,
          name: spec.type,
          facets: {
            schema: { ...FACET('SchemaDatasetFacet', '1-2-0'), fields: fields.map(([field], index) => ({ name: field, ordinal_position: index + 1 })) },
            columnLineage: {
              ...FACET('ColumnLineageDatasetFacet', '1-2-0'),
              fields: Object.fromEntries(
                fields.map(([field, column]) => {
                  const mask = options.maskOf(spec.type, field);
                  return [field, { inputFields: [{ namespace: tableNamespace, name: tableName(spec.table), field: column, transformations: [{ type: 'DIRECT', subtype: mask ? 'TRANSFORMATION' : 'IDENTITY', ...(mask ? { description: `${mask} mask, except for exempt principals` } : {}), masking: mask !== null }] }] }];
                }),
              ),
            },
          },
        },
      ],
    };
  });
}
