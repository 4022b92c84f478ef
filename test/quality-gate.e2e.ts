/**
 * Data quality gates every load (issue 14, parts 1 and 2), on each warehouse dialect: a raw file
 * with a duplicated key, an empty required column and a malformed email is loaded; the serving
 * version stays and answers exactly as before, the rejected load is kept aside with its rows and
 * its results (each failing check named with its value and sample keys), and a good file
 * afterwards swaps in, with the whole history stored in the warehouse.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse as parseCsv } from 'csv-parse/sync';
import { stringify as stringifyCsv } from 'csv-stringify/sync';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { customers } from '../subgraphs/customers/index.js';
import { finance } from '../subgraphs/finance/index.js';
import { products } from '../subgraphs/products/index.js';
import { readQualityRuns, readQualityRunsAt } from '../subgraphs/kit/quality-store.js';
import { ensureWarehouse, QualityGateError } from '../subgraphs/kit/warehouse/build.js';
import { DIALECTS, dialectAdapter } from '../subgraphs/kit/warehouse/dialects.js';
import { openWarehouse } from '../subgraphs/kit/warehouse/open.js';
import { parseWarehouseUrl } from '../subgraphs/kit/warehouse/warehouse.js';
import { generateSourceData } from '../subgraphs/synthetic-sources/generate.js';
import { onPostgres, TEST_POSTGRES } from './harness/postgres.js';

const run = promisify(execFile);
let dir: string;
let good: string;
let extractedAt: string;
const database = `quality_test_${process.pid}_${randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'quality-gate-'));
  ({ extractedAt } = await generateSourceData({ rawDir: join(dir, 'raw'), scale: 0.01 }));
  good = await readFile(join(dir, 'raw', 'customers', 'customers.csv'), 'utf8');
  await onPostgres(`CREATE DATABASE ${database}`);
});

afterAll(async () => {
  await onPostgres(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  await rm(dir, { recursive: true, force: true });
});

const urls = {
  duckdb: () => `duckdb:${join(dir, 'customers.duckdb')}`,
  postgres: () => `${TEST_POSTGRES}/${database}?schema=customers`,
};

/** How a test breaks a raw file: a duplicated key, an empty required column, a value against its pattern, and every time of its time column four years older (a stale extract). */
interface BreakPlan {
  readonly key: string;
  readonly empty: string;
  readonly malform: { readonly column: string; readonly value: string };
  readonly stale: string;
}

/** The file broken as planned; which keys carry which break. */
function breakFile(csv: string, plan: BreakPlan): { csv: string; duplicated: string; emptied: string; malformed: string } {
  const [header, ...rows] = parseCsv(csv) as string[][];
  const at = (name: string) => header!.indexOf(name);
  const duplicated = rows[0]![at(plan.key)]!;
  const emptied = rows[1]![at(plan.key)]!;
  rows[1]![at(plan.empty)] = '';
  rows[2]![at(plan.malform.column)] = plan.malform.value;
  const malformed = rows[2]![at(plan.key)]!;
  // Four years back keeps 29 February a real day.
  for (const row of rows) row[at(plan.stale)] = row[at(plan.stale)]!.replace(/^(\d{4})/, (year) => String(Number(year) - 4));
  return { csv: stringifyCsv([header!, ...rows, rows[0]!]), duplicated, emptied, malformed };
}

/** The raw customers file broken four ways: a duplicated key, an empty name, a malformed email, stale sign-ups. */
function broken(csv: string): { csv: string; duplicated: string; nameless: string; malformed: string } {
  const { csv: text, duplicated, emptied, malformed } = breakFile(csv, { key: 'id', empty: 'name', malform: { column: 'email', value: 'not-an-email' }, stale: 'signup_date' });
  return { csv: text, duplicated, nameless: emptied, malformed };
}

describe.each(DIALECTS.map((adapter) => adapter.dialect))('loads into a %s warehouse', (dialect) => {
  const url = () => urls[dialect]();
  const load = (fingerprint: string) => ensureWarehouse({ domain: customers, url: url(), rawDir: join(dir, 'raw', 'customers'), sourceFingerprint: fingerprint, sourceExtractedAt: extractedAt });
  const servingRows = async () => {
    const warehouse = openWarehouse<any>(url());
    try {
      return await sql<{ id: string; name: string | null; email: string }>`select id, name, email from customers order by id`.execute(warehouse.db).then((r) => r.rows);
    } finally {
      await warehouse.close();
    }
  };

  it('passes a good load, with every key checked without being declared', async () => {
    await writeFile(join(dir, 'raw', 'customers', 'customers.csv'), good);
    const build = await load(`${dialect}-good-1`);
    expect(build.built).toBe(true);
    expect(build.quality?.outcome).toBe('passed');
    const checks = build.quality!.results.map((result) => `${result.product} ${result.check} ${result.outcome}`);
    expect(checks).toContain('customers.customers id_not_null pass');
    expect(checks).toContain('customers.customers id_unique pass');
    expect(checks).toContain('customers.customers email_format pass');
    expect(build.quality!.results.every((result) => result.outcome === 'pass' || result.outcome === 'warn')).toBe(true);
  });

  it('rejects a broken load: the serving version stays, the rejected one is kept with its results', async () => {
    const before = await servingRows();
    const bad = broken(good);
    await writeFile(join(dir, 'raw', 'customers', 'customers.csv'), bad.csv);
    const build = await load(`${dialect}-bad`);
    expect(build.built).toBe(false);
    expect(build.rejectedKeptAt).toBeTruthy();
    // Queries answer the old data, exactly.
    expect(await servingRows()).toEqual(before);

    const failing = Object.fromEntries(build.quality!.results.filter((r) => r.outcome === 'fail').map((r) => [r.check, r]));
    expect(Object.keys(failing).sort()).toEqual(['email_format', 'id_unique', 'name_present']);
    expect(failing.id_unique).toMatchObject({ value: 2, failedRows: 2, sampleKeys: [bad.duplicated], threshold: 'mustBe 0', dimension: 'uniqueness' });
    expect(failing.email_format).toMatchObject({ value: 1, sampleKeys: [bad.malformed], dimension: 'conformity' });
    expect(failing.name_present).toMatchObject({ value: 1, sampleKeys: [bad.nameless] });
    // The stale extract: its newest sign-up is four years older than the source says it was extracted.
    const stale = build.quality!.results.find((r) => r.check === 'signup_recent')!;
    expect(stale).toMatchObject({ outcome: 'warn', dimension: 'timeliness', unit: 'seconds', threshold: `mustBeLessOrEqualTo ${400 * 86_400}` });
    expect(stale.value).toBeGreaterThan(4 * 365 * 86_400);
    // Results carry keys, never the values they judged.
    expect(JSON.stringify(build.quality)).not.toContain('not-an-email');
    expect(failing.email_format!.sql).toMatch(/select count\(\*\)/i);

    // The rejected load is kept: its rows (the duplicate included) and its run.
    const { adapter, location } = { adapter: dialectAdapter(dialect), location: parseWarehouseUrl(url()) };
    const kept = adapter.open<any>(adapter.rejectedLocation(location as never), true);
    try {
      const [{ n }] = (await sql<{ n: number }>`select count(*) as n from customers where id = ${bad.duplicated}`.execute(kept.db)).rows as [{ n: number }];
      expect(Number(n)).toBe(2);
      const runs = await readQualityRuns(kept.db);
      expect(runs.at(-1)).toMatchObject({ outcome: 'rejected', trigger: 'load', runId: build.quality!.runId });
    } finally {
      await kept.close();
    }
  });

  it('swaps a good load in afterwards, with the whole history: passed, rejected, passed', async () => {
    await writeFile(join(dir, 'raw', 'customers', 'customers.csv'), good);
    const build = await load(`${dialect}-good-2`);
    expect(build).toMatchObject({ built: true, quality: { outcome: 'passed' } });
    const history = await readQualityRunsAt(url());
    expect(history.map((run) => run.outcome)).toEqual(['passed', 'rejected', 'passed']);
    expect(history[1]!.results.find((r) => r.check === 'id_unique')).toMatchObject({ outcome: 'fail', value: 2 });
  });

  it('keeps serving when a load cannot even read its raw file, and says why', async () => {
    const before = await servingRows();
    const file = join(dir, 'raw', 'customers', 'customers.csv');
    await rm(file);
    try {
      const build = await load(`${dialect}-missing-file`);
      expect(build).toMatchObject({ built: false, loadError: expect.stringContaining('customers.csv') });
      expect(await servingRows()).toEqual(before);
    } finally {
      await writeFile(file, good);
    }
  });

  it('refuses to serve a first load that fails (there is nothing to keep serving)', async () => {
    const fresh = dialect === 'duckdb' ? `duckdb:${join(dir, 'first.duckdb')}` : `${TEST_POSTGRES}/${database}?schema=first_load`;
    await writeFile(join(dir, 'raw', 'customers', 'customers.csv'), broken(good).csv);
    try {
      const error = await ensureWarehouse({ domain: customers, url: fresh, rawDir: join(dir, 'raw', 'customers'), sourceFingerprint: 'x' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(QualityGateError);
      expect(String(error)).toMatch(/customers\.customers id_unique = 2 \(mustBe 0\)/);
    } finally {
      await writeFile(join(dir, 'raw', 'customers', 'customers.csv'), good);
    }
  });
});

/** The other domains' product files, broken the same four ways. */
const OTHER_DOMAINS = [
  {
    domain: products,
    file: 'products.csv',
    plan: { key: 'sku', empty: 'name', malform: { column: 'sku', value: 'SKU-12' }, stale: 'launch_date' },
    checks: { duplicate: 'sku_unique', empty: 'name_present', malformed: 'sku_format', stale: 'launch_recent' },
    staleAtLeast: 4 * 365 * 86_400,
  },
  {
    domain: finance,
    file: 'orders.csv',
    plan: { key: 'id', empty: 'customer_id', malform: { column: 'id', value: 'ORDER-1' }, stale: 'ordered_at' },
    checks: { duplicate: 'id_unique', empty: 'customer_present', malformed: 'id_format', stale: 'ordered_recent' },
    staleAtLeast: 4 * 365 * 86_400,
  },
] as const;

describe.each(DIALECTS.flatMap((adapter) => OTHER_DOMAINS.map((entry) => [adapter.dialect, entry.domain.name, entry] as const)))('a broken file in a %s warehouse of %s', (dialect, name, entry) => {
  const url = () => (dialect === 'duckdb' ? `duckdb:${join(dir, `${name}.duckdb`)}` : `${TEST_POSTGRES}/${database}?schema=${name}`);
  const file = () => join(dir, 'raw', name, entry.file);
  const load = (fingerprint: string) => ensureWarehouse({ domain: entry.domain, url: url(), rawDir: join(dir, 'raw', name), sourceFingerprint: fingerprint, sourceExtractedAt: extractedAt });
  const serving = async () => {
    const warehouse = openWarehouse<any>(url(), { readOnly: true });
    try {
      return (await sql`select * from ${sql.table(entry.file.replace('.csv', ''))} order by ${sql.ref(entry.plan.key)}`.execute(warehouse.db)).rows;
    } finally {
      await warehouse.close();
    }
  };

  it('keeps the serving version, keeps the rejected load, names each failing check with its value; a good file then swaps in', async () => {
    const original = await readFile(file(), 'utf8');
    expect(await load(`${dialect}-${name}-good-1`)).toMatchObject({ built: true, quality: { outcome: 'passed' } });
    const before = await serving();
    const bad = breakFile(original, entry.plan);
    await writeFile(file(), bad.csv);
    try {
      const build = await load(`${dialect}-${name}-bad`);
      expect(build).toMatchObject({ built: false, rejectedKeptAt: expect.any(String), quality: { outcome: 'rejected' } });
      expect(await serving()).toEqual(before);
      const result = (check: string) => build.quality!.results.find((r) => r.product.startsWith(`${name}.`) && r.check === check)!;
      expect(result(entry.checks.duplicate)).toMatchObject({ outcome: 'fail', value: 2, sampleKeys: [bad.duplicated] });
      expect(result(entry.checks.empty)).toMatchObject({ outcome: 'fail', value: 1, sampleKeys: [bad.emptied] });
      expect(result(entry.checks.malformed)).toMatchObject({ outcome: 'fail', value: 1, sampleKeys: [bad.malformed] });
      expect(result(entry.checks.stale)).toMatchObject({ outcome: 'warn', dimension: 'timeliness', unit: 'seconds' });
      expect(result(entry.checks.stale).value).toBeGreaterThan(entry.staleAtLeast);
      // The rejected load is kept with its rows: the duplicated key twice.
      const adapter = dialectAdapter(dialect);
      const kept = adapter.open<any>(adapter.rejectedLocation(parseWarehouseUrl(url()) as never), true);
      try {
        const [row] = (await sql<{ n: number }>`select count(*) as n from ${sql.table(entry.file.replace('.csv', ''))} where ${sql.ref(entry.plan.key)} = ${bad.duplicated}`.execute(kept.db)).rows;
        expect(Number(row!.n)).toBe(2);
      } finally {
        await kept.close();
      }
    } finally {
      await writeFile(file(), original);
    }
    const again = await load(`${dialect}-${name}-good-2`);
    expect(again).toMatchObject({ built: true, quality: { outcome: 'passed' } });
    expect((await readQualityRunsAt(url())).map((run) => run.outcome)).toEqual(['passed', 'rejected', 'passed']);
  });
});

describe('npm run quality', () => {
  const quality = (env: Record<string, string>, ...args: string[]) =>
    run(process.execPath, ['--import', 'tsx', 'subgraphs/quality.ts', ...args], { env: { ...process.env, DATA_DIR: join(dir, 'none'), ...env } }).then(
      ({ stdout }) => ({ code: 0, stdout, stderr: '' }),
      (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
    );
  const serving = () => ({ CUSTOMERS_WAREHOUSE_URL: urls.duckdb() });

  it('runs the checks on the serving version and prints them, exit 0 when none fails', async () => {
    const { code, stdout } = await quality(serving(), 'run', 'customers');
    expect(code).toBe(0);
    expect(stdout).toMatch(/customers\.customers\s+id_unique\s+uniqueness\s+error\s+PASS\s+0\s+mustBe 0\s+0/);
    expect(stdout).toContain('PASSED: no error-severity check failed.');
    // Latency is measured to the extraction time the load kept, not to today: the same value as at the load.
    const atLoad = (await readQualityRunsAt(urls.duckdb())).filter((r) => r.trigger === 'load' && r.outcome === 'passed').at(-1)!.results.find((r) => r.check === 'signup_recent')!.value;
    expect(stdout).toMatch(new RegExp(`customers\\.customers\\s+signup_recent\\s+timeliness\\s+warning\\s+PASS\\s+${atLoad}\\s`));
  });

  it('exits 1 naming each failing check, on the rejected load kept aside', async () => {
    const { code, stdout } = await quality({ CUSTOMERS_WAREHOUSE_URL: `${urls.duckdb()}.rejected` }, 'run', 'customers.customers');
    expect(code).toBe(1);
    expect(stdout).toMatch(/customers\.customers\s+id_unique\s+uniqueness\s+error\s+FAIL\s+2\s+mustBe 0\s+2\s+C\d+/);
    expect(stdout).toMatch(/email_format .* FAIL/);
    expect(stdout).toContain('FAILED: an error-severity check failed (exit 1).');
  });

  it('prints the stored history, and refuses an unknown product or a missing warehouse with exit 2', async () => {
    const history = await quality(serving(), 'history', 'customers');
    expect(history.code).toBe(0);
    expect(history.stdout.trim().split('\n').map((line) => line.split(/\s+/)[3])).toEqual(['passed', 'rejected', 'passed']);
    const unknown = await quality(serving(), 'run', 'customers.nothing');
    expect(unknown).toMatchObject({ code: 2, stderr: expect.stringContaining('Unknown domain or product "customers.nothing"') });
    const missing = await quality({}, 'run', 'products');
    expect(missing).toMatchObject({ code: 2, stderr: expect.stringContaining('The products warehouse cannot be read') });
    expect((await quality(serving(), 'frobnicate')).code).toBe(2);
  });
});

describe('npm run data', () => {
  const data = (dataDir: string, ...args: string[]) =>
    run(process.execPath, ['--import', 'tsx', 'subgraphs/main.ts', 'prepare', ...args], { env: { ...process.env, DATA_DIR: dataDir, SCALE: '0.01', LOG_LEVEL: 'info' } }).then(({ stdout }) =>
      stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { msg: string; domain?: string; checks?: string; personalData?: string }),
    );

  it('says what each load does (load, checks, swap), reuses what is current, and rebuilds everything with --reset', async () => {
    const dataDir = join(dir, 'prepare');
    const first = await data(dataDir);
    const of = (lines: { msg: string; domain?: string }[], domain: string) => lines.filter((line) => line.domain === domain).map((line) => line.msg);
    expect(first[0]!.msg).toBe('raw data generated');
    expect(of(first, 'finance')).toEqual([
      'loading the raw files into a new warehouse version',
      'raw files loaded; running the data quality checks',
      'data quality checks done',
      'columns profiled',
      'swapping the new version in',
      'warehouse built',
    ]);
    expect(first.find((line) => line.domain === 'finance' && line.msg === 'warehouse built')!.checks).toMatch(/^\d+ passed/);
    // Where the load found personal data, column by column.
    expect(first.find((line) => line.domain === 'customers' && line.msg === 'columns profiled')!.personalData).toMatch(/^customers\.customers: name \(personName \d+%\), email \(email 100%\), phone \(phone \d+%\), birth_date \(birthDate 100%\)$/);
    expect(first.find((line) => line.domain === 'finance' && line.msg === 'columns profiled')!.personalData).toBe('none');
    const again = await data(dataDir);
    expect(again.map((line) => line.msg)).toEqual(['raw data reused', 'warehouse reused', 'warehouse reused', 'warehouse reused']);
    const reset = await data(dataDir, '--reset');
    expect(reset[0]!.msg).toBe('raw data generated');
    expect(reset.filter((line) => line.msg === 'warehouse built').map((line) => line.domain)).toEqual(['customers', 'products', 'finance']);
  }, 120_000);
});
