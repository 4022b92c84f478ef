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
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { customers } from '../subgraphs/customers/index.js';
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
const database = `quality_test_${process.pid}_${randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'quality-gate-'));
  await generateSourceData({ rawDir: join(dir, 'raw'), scale: 0.01 });
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

/** The raw customers file broken three ways: a duplicated key, an empty name, a malformed email. */
function broken(csv: string): { csv: string; duplicated: string; nameless: string; malformed: string } {
  const [header, ...rows] = csv.trimEnd().split('\n');
  const columns = header!.split(',');
  const cells = (row: string) => row.split(',');
  const at = (name: string) => columns.indexOf(name);
  const second = cells(rows[1]!);
  const third = cells(rows[2]!);
  const duplicated = cells(rows[0]!)[at('id')]!;
  second[at('name')] = '';
  third[at('email')] = 'not-an-email';
  // The first row again, as a second row with the same key.
  const lines = [header!, rows[0]!, second.join(','), third.join(','), ...rows.slice(3), rows[0]!];
  return { csv: `${lines.join('\n')}\n`, duplicated, nameless: second[at('id')]!, malformed: third[at('id')]! };
}

describe.each(DIALECTS.map((adapter) => adapter.dialect))('loads into a %s warehouse', (dialect) => {
  const url = () => urls[dialect]();
  const load = (fingerprint: string) => ensureWarehouse({ domain: customers, url: url(), rawDir: join(dir, 'raw', 'customers'), sourceFingerprint: fingerprint });
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
