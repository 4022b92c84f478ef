/**
 * A domain's pipelines from its products' declarations: schedules from the SLA's frequency unless
 * declared, dependencies within the domain, defaults and bounds; what cannot run is refused.
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { withGeneratedSections } from '../../../policy/errors-doc.js';
import { SUBGRAPHS_README } from '../../scaffold/codes.js';
import { PIPELINE_ERROR_SECTION } from './errors-doc.js';
import { customers } from '../../customers/index.js';
import { finance } from '../../finance/index.js';
import type { Domain } from '../domain.js';
import type { PipelineDeclaration } from './runner.js';
import { pipelinesOf } from './plan.js';

/** The finance domain with its products' pipelines declared as given (by product name). */
function financeWith(declared: Record<string, PipelineDeclaration>): Domain<any, any> {
  return { ...finance, dataProducts: finance.dataProducts.map((product) => ({ ...product, spec: { ...product.spec, pipeline: declared[product.spec.name] } })) } as Domain<any, any>;
}

describe("a domain's pipelines", () => {
  it('runs each product on its SLA\'s frequency by default, three attempts, 30 s backoff, 30 min per attempt', () => {
    const [customersPipeline] = pipelinesOf(customers);
    const frequency = customers.dataProducts[0]!.spec.metadata.sla.find((sla) => sla.property === 'frequency')!;
    expect(frequency).toMatchObject({ value: 1, unit: 'd' });
    expect(customersPipeline).toEqual({ id: 'customers.customers', dependsOn: [], everyMs: 86_400_000, attempts: 3, backoffMs: 30_000, timeoutMs: 1_800_000, anomalyErrors: [] });
  });

  it('takes a declared schedule, dependencies, retries and timeout', () => {
    const names = finance.dataProducts.map(({ spec }) => spec.name);
    const [first, second] = names as [string, string];
    const pipelines = pipelinesOf(financeWith({ [first]: { every: { value: 15, unit: 'm' } }, [second]: { dependsOn: [first], every: 'never', attempts: 5, backoffSeconds: 2, timeoutSeconds: 60 } }));
    expect(pipelines.find((p) => p.id === `finance.${first}`)!.everyMs).toBe(900_000);
    expect(pipelines.find((p) => p.id === `finance.${second}`)).toEqual({ id: `finance.${second}`, dependsOn: [`finance.${first}`], everyMs: null, attempts: 5, backoffMs: 2_000, timeoutMs: 60_000, anomalyErrors: [] });
  });

  it('replaces every schedule with PIPELINES_EVERY, and leaves a product that runs only when asked so', () => {
    const [first, second] = finance.dataProducts.map(({ spec }) => spec.name) as [string, string];
    const pipelines = pipelinesOf(financeWith({ [first]: { every: { value: 15, unit: 'm' } }, [second]: { every: 'never' } }), { everySeconds: 30 });
    expect(pipelines.map(({ everyMs }) => everyMs)).toEqual([30_000, null]);
  });

  it('refuses a dependency outside the domain, a cycle, and values out of bounds', () => {
    const [first, second] = finance.dataProducts.map(({ spec }) => spec.name) as [string, string];
    expect(() => pipelinesOf(financeWith({ [first]: { dependsOn: ['customers'] } }))).toThrow(/PIPELINE_INVALID: finance\.\w+ depends on "customers", which is not another product of the finance domain/);
    expect(() => pipelinesOf(financeWith({ [first]: { dependsOn: [first] } }))).toThrow(/which is not another product/);
    expect(() => pipelinesOf(financeWith({ [first]: { dependsOn: [second] }, [second]: { dependsOn: [first] } }))).toThrow(`PIPELINE_INVALID: The finance domain's pipelines depend on each other in a cycle: finance.${first} → finance.${second} → finance.${first}.`);
    expect(() => pipelinesOf(financeWith({ [first]: { every: { value: 1, unit: 's' } } }))).toThrow(/its schedule \(seconds\) must be from 10 to/);
    expect(() => pipelinesOf(financeWith({ [first]: { attempts: 0 } }))).toThrow(/attempts must be from 1 to 10, got 0/);
    expect(() => pipelinesOf(financeWith({ [first]: { timeoutSeconds: Number.NaN } }))).toThrow(/timeoutSeconds must be from 1 to 86400/);
  });

  it("are documented with every error code in subgraphs/README.md, as npm run docs:errors writes it", async () => {
    const readme = await readFile(SUBGRAPHS_README, 'utf8');
    expect(withGeneratedSections(readme, [PIPELINE_ERROR_SECTION])).toBe(readme);
  });

  it('takes the measures whose anomalies are errors, and refuses one that is no measure of the product', () => {
    const [first] = finance.dataProducts.map(({ spec }) => spec.name) as [string];
    const errors = ['rows', 'increment', 'arrivalDelaySeconds', 'status.nullShare', '*.distinctCount', 'total_amount.mean'];
    expect(pipelinesOf(financeWith({ [first]: { anomalies: { errors } } }))[0]!.anomalyErrors).toEqual(errors);
    for (const wrong of ['row', 'shipping_fee.nullShare', 'status.median', 'status', '*', "rows'; drop table orders; --"]) {
      expect(() => pipelinesOf(financeWith({ [first]: { anomalies: { errors: [wrong] } } })), wrong).toThrow(/^PIPELINE_INVALID: finance\.orders: anomalies\.errors names ".*", which is no measure of it/);
    }
  });
});
