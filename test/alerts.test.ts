/**
 * The data products' and pipelines' alert rules, checked with promtool from Debian's prometheus
 * package: the rules file is valid, its unit tests pass (a product turns stale after its SLA and
 * not before, and is at risk from four fifths of it; a failing check fires and clears; a rejected
 * load fires and a good one clears it; a failed run fires for an hour; a pipeline is late after two
 * of its intervals; a data anomaly fires for a day), and every metric the rules read is one a
 * subgraph serves.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { startTestMesh, type TestMesh } from './harness/mesh.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const rules = 'gateway/observability/alerts.yml';

describe('the data products\' alert rules', () => {
  let mesh: TestMesh;
  beforeAll(async () => {
    mesh = await startTestMesh();
  });
  afterAll(async () => {
    await mesh?.stop();
  });

  it('are valid Prometheus rules, and pass their unit tests', async () => {
    const checked = await run('promtool', ['check', 'rules', rules], { cwd: root });
    expect(checked.stdout).toContain('SUCCESS: 9 rules found');
    const tested = await run('promtool', ['test', 'rules', 'test/fixtures/alerts.test.yml'], { cwd: root });
    expect(tested.stdout).toContain('SUCCESS');
  });

  it('read only metrics the subgraphs serve, with the labels they group by', async () => {
    const file = parse(await readFile(`${root}/${rules}`, 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] };
    const exprs = file.groups.flatMap((group) => group.rules.map((rule) => rule.expr));
    const names = new Set(exprs.flatMap((expr) => expr.match(/\b((?:data|pipeline)_[a-z_]+)\b/g) ?? []));
    expect([...names].sort()).toEqual([
      'data_product_freshness_sla_seconds',
      'data_product_input_behind_events',
      'data_product_input_failing',
      'data_product_last_updated_timestamp_seconds',
      'data_product_loads_total',
      'data_quality_check_status',
      'pipeline_last_success_timestamp_seconds',
      'pipeline_run_anomalies_total',
      'pipeline_runs_total',
      'pipeline_schedule_seconds',
    ]);
    const served = await (await fetch(new URL('/metrics', mesh.subgraphs.finance!.url))).text();
    // The inputs' series, from the domain fed by another's product (customers, by finance's orders).
    const fed = await (await fetch(new URL('/metrics', mesh.subgraphs.customers!.url))).text();
    for (const name of names) {
      if (name.startsWith('data_product_input_')) {
        expect(fed, name).toMatch(new RegExp(`^${name}\\{product="customers\\.customers",input="finance\\.orders",service="customers"\\} 0$`, 'm'));
        continue;
      }
      const label = name.startsWith('pipeline_') ? 'pipeline' : 'product';
      expect(served, name).toMatch(new RegExp(`^${name}\\{[^}]*${label}="finance\\.orders"[^}]*service="finance"`, 'm'));
    }

    // The dashboard's data products row reads the same series.
    const dashboard = JSON.parse(await readFile(`${root}/gateway/observability/grafana/dashboards/mesh.json`, 'utf8')) as { panels: { targets: { expr: string }[] }[] };
    const charted = new Set(dashboard.panels.flatMap((panel) => panel.targets.flatMap((target) => target.expr.match(/\b(data_[a-z_]+)\b/g) ?? [])));
    expect(charted.size).toBeGreaterThanOrEqual(4);
    for (const name of charted) expect(served, name).toMatch(new RegExp(`^${name}\\{`, 'm'));
  });
});
