/**
 * `npm run quality -- run [<domain> | <domain>.<product>]`: runs the data quality checks of every
 * product (or of one domain, or one product) now, on the serving warehouse (read-only; where each
 * is: `<DOMAIN>_WAREHOUSE_URL`, else the DuckDB file under `DATA_DIR`), and prints a table: one line
 * per check with its outcome, value, threshold, failing rows and a few of their keys.
 * `npm run quality -- history [<domain>]` prints the runs stored with the serving version (each
 * load's, rejected ones included).
 *
 * Exit codes: 0 no error-severity check failed, 1 one did, 2 the command failed (usage, unknown
 * product, warehouse unavailable).
 */
import { CommandFailure, defineCommand, EXIT_OK, EXIT_REFUSED, runCommand } from '../policy/command-line.js';
import { sql } from 'kysely';
import { subgraphConfigFromEnv, warehouseUrlOf } from './config.js';
import { meshDomains } from './mesh-domains.js';
import { blocksLoad, type QualityResult } from './kit/quality.js';
import { readQualityRuns } from './kit/quality-store.js';
import { runDomainChecks } from './kit/warehouse/build.js';
import { openWarehouse } from './kit/warehouse/open.js';

const { domains } = await meshDomains();

function table(results: readonly QualityResult[]): string {
  const rows = results.map((r) => [r.product, r.check, r.dimension, r.severity, r.outcome.toUpperCase(), r.value === null ? '-' : String(r.value) + (r.unit === 'percent' ? ' %' : ''), r.threshold, r.failedRows === null ? '-' : String(r.failedRows), r.error ?? r.sampleKeys.join(' ')]);
  const header = ['product', 'check', 'dimension', 'severity', 'outcome', 'value', 'threshold', 'failed rows', 'sample keys / error'];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: readonly string[]) => cells.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd();
  return [line(header), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)].join('\n');
}

async function runQuality(command: 'run' | 'history', target: string | undefined): Promise<number> {
  const [domainName, productName] = (target ?? '').split('.', 2) as [string, string | undefined];
  const selected = target ? domains.filter((domain) => domain.name === domainName) : domains;
  const product = productName ? selected[0]?.dataProducts.find((candidate) => candidate.spec.name === productName) : undefined;
  if (selected.length === 0 || (productName && !product) || (command === 'history' && productName)) {
    const known = domains.flatMap((domain) => [domain.name, ...(command === 'run' ? domain.dataProducts.map((p) => `${domain.name}.${p.spec.name}`) : [])]);
    throw new CommandFailure(`Unknown ${command === 'run' ? 'domain or product' : 'domain'} "${target}": ${known.join(', ')}.`);
  }
  const config = subgraphConfigFromEnv();
  let failed = false;
  for (const domain of selected) {
    const url = warehouseUrlOf(domain.name, config);
    let warehouse;
    try {
      warehouse = openWarehouse(url, { readOnly: true });
      // Adapters connect lazily: a missing warehouse is a command failure, not a column of errors.
      await sql`select 1`.execute(warehouse.db);
      if (command === 'history') {
        for (const run of await readQualityRuns(warehouse.db)) {
          const counts = ['pass', 'warn', 'fail', 'error'].map((outcome) => `${run.results.filter((r) => r.outcome === outcome).length} ${outcome}`).join(', ');
          console.log(`${run.at}  ${domain.name.padEnd(10)} ${run.trigger.padEnd(9)} ${run.outcome.padEnd(8)} ${counts}  (run ${run.runId})`);
        }
        continue;
      }
      const scoped = product ? { ...domain, dataProducts: [product] } : domain;
      const run = await runDomainChecks(scoped, warehouse, 'manual');
      console.log(`${domain.name}: ${run.results.length} checks on ${url.startsWith('duckdb:') ? url : url.replace(/\/\/[^@/]*@/, '//')}\n${table(run.results)}\n`);
      failed ||= blocksLoad(run.results);
    } catch (error) {
      throw new CommandFailure(`The ${domain.name} warehouse cannot be read (${error instanceof Error ? error.message : String(error)}): build it first (npm run data).`);
    } finally {
      await warehouse?.close();
    }
  }
  if (command === 'run') console.log(failed ? 'FAILED: an error-severity check failed (exit 1).' : 'PASSED: no error-severity check failed.');
  return failed ? EXIT_REFUSED : EXIT_OK;
}

const command = defineCommand('npm run -s quality --', 'Runs the data quality checks on the serving warehouses, or lists their stored runs. Exit 1 when an error-severity check fails.');
command
  .command('run')
  .description('runs the checks of every product, of one domain, or of one product, now')
  .argument('[target]', '<domain> or <domain>.<product>')
  .action(async (target?: string) => {
    process.exitCode = await runQuality('run', target);
  });
command
  .command('history')
  .description('lists the stored runs (each load\'s, rejected ones included)')
  .argument('[domain]', 'one domain')
  .action(async (domain?: string) => {
    process.exitCode = await runQuality('history', domain);
  });

await runCommand(command);
