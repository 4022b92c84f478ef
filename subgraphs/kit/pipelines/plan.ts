/**
 * A domain's pipelines, from its data products' declarations: one per product, `<domain>.<product>`,
 * on its SLA's update `frequency` unless it says otherwise, after the products of the domain it
 * depends on. A declaration that names a product the domain does not have, forms a cycle, or leaves
 * the bounds is refused when the subgraph starts (PIPELINE_INVALID).
 */
import type { Domain } from '../domain.js';
import { durationSecondsOf } from '../freshness.js';
import { PipelineError, type PipelineSpec } from './runner.js';

export type { PipelineDeclaration } from './runner.js';

export const PIPELINE_DEFAULTS = { attempts: 3, backoffSeconds: 30, timeoutSeconds: 1_800 } as const;
/** Schedules faster than this are refused (a load every second would never leave the warehouse alone). */
const SHORTEST_EVERY_SECONDS = 10;

function within(value: number, min: number, max: number, what: string, product: string): number {
  if (!Number.isFinite(value) || value < min || value > max) throw new PipelineError('PIPELINE_INVALID', `${product}: ${what} must be from ${min} to ${max}, got ${value}.`);
  return value;
}

/**
 * The domain's pipelines; `everySeconds` (env `PIPELINES_EVERY`, set by `npm start` with the live
 * sources) replaces every scheduled product's schedule.
 */
export function pipelinesOf(domain: Domain<any, any>, options: { readonly everySeconds?: number | null } = {}): PipelineSpec[] {
  const names = new Set(domain.dataProducts.map(({ spec }) => spec.name));
  const pipelines = domain.dataProducts.map(({ spec }): PipelineSpec => {
    const id = `${domain.name}.${spec.name}`;
    const declared = spec.pipeline ?? {};
    for (const upstream of declared.dependsOn ?? []) {
      if (!names.has(upstream) || upstream === spec.name) throw new PipelineError('PIPELINE_INVALID', `${id} depends on "${upstream}", which is not another product of the ${domain.name} domain (${[...names].join(', ')}).`);
    }
    const everySeconds =
      declared.every === 'never' ? null : options.everySeconds ? options.everySeconds : declared.every ? durationSecondsOf({ property: 'frequency', value: declared.every.value, unit: declared.every.unit }) : durationSecondsOf(spec.metadata.sla.find((sla) => sla.property === 'frequency'));
    if (everySeconds !== null) within(everySeconds, SHORTEST_EVERY_SECONDS, 366 * 86_400, 'its schedule (seconds)', id);
    const columns = new Set(domain.tables.find(({ name }) => name === spec.table)?.columns.map(({ name }) => name) ?? []);
    for (const measure of declared.anomalies?.errors ?? []) {
      const [, column, summary] = /^(?:(\*|[A-Za-z_][A-Za-z0-9_]*)\.(nullShare|distinctCount|mean)|rows|increment|arrivalDelaySeconds)$/.exec(measure) ?? [];
      const known = /^(rows|increment|arrivalDelaySeconds)$/.test(measure) || (summary !== undefined && (column === '*' || columns.has(column!)));
      if (!known) throw new PipelineError('PIPELINE_INVALID', `${id}: anomalies.errors names "${String(measure).slice(0, 60)}", which is no measure of it: rows, increment, arrivalDelaySeconds, or <column>.nullShare|distinctCount|mean of ${spec.table}'s columns (${[...columns].join(', ')}), or *.<that>.`);
    }
    return {
      id,
      dependsOn: (declared.dependsOn ?? []).map((upstream) => `${domain.name}.${upstream}`),
      everyMs: everySeconds === null ? null : everySeconds * 1000,
      attempts: within(declared.attempts ?? PIPELINE_DEFAULTS.attempts, 1, 10, 'attempts', id),
      backoffMs: within(declared.backoffSeconds ?? PIPELINE_DEFAULTS.backoffSeconds, 1, 3_600, 'backoffSeconds', id) * 1000,
      timeoutMs: within(declared.timeoutSeconds ?? PIPELINE_DEFAULTS.timeoutSeconds, 1, 86_400, 'timeoutSeconds', id) * 1000,
      anomalyErrors: [...(declared.anomalies?.errors ?? [])],
    };
  });
  // No cycle: each pipeline's dependencies, followed, never come back to it.
  const byId = new Map(pipelines.map((pipeline) => [pipeline.id, pipeline]));
  const visiting = new Set<string>();
  const done = new Set<string>();
  const visit = (id: string, path: readonly string[]) => {
    if (done.has(id)) return;
    if (visiting.has(id)) throw new PipelineError('PIPELINE_INVALID', `The ${domain.name} domain's pipelines depend on each other in a cycle: ${[...path, id].join(' → ')}.`);
    visiting.add(id);
    for (const upstream of byId.get(id)!.dependsOn) visit(upstream, [...path, id]);
    visiting.delete(id);
    done.add(id);
  };
  for (const pipeline of pipelines) visit(pipeline.id, []);
  return pipelines;
}
