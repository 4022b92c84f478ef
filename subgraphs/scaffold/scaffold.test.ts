/**
 * `npm run domain -- new`: what it proposes from a source, and every way a source is refused, each
 * with its code and nothing left behind (neither the folder nor its staging copy). The PostgreSQL
 * source runs on the machine's server, in a database of its own.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onPostgres, TEST_POSTGRES } from '../../test/harness/postgres.js';
import { withGeneratedSections } from '../../policy/errors-doc.js';
import { runProcess } from '../../test/harness/run-process.js';
import { SCAFFOLD_ERROR_SECTION, ScaffoldError, SUBGRAPHS_README, type ScaffoldErrorCode } from './codes.js';
import { isDomain } from '../kit/domain.js';
import { columnNameOf, fieldNameOf } from './propose.js';
import { scaffoldDomain, type ScaffoldOptions } from './scaffold.js';

let work: string;
const database = `scaffold_${randomBytes(4).toString('hex')}`;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'scaffold-'));
  await onPostgres(`CREATE DATABASE ${database}`);
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
  await onPostgres(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
});

const csv = (rows: readonly (readonly unknown[])[]) => `${rows.map((row) => row.join(',')).join('\n')}\n`;
const people = (n: number) => [['id', 'email', 'region', 'score'], ...Array.from({ length: n }, (_, i) => [`P-${String(i).padStart(4, '0')}`, `person${i}@example.com`, ['EMEA', 'APAC'][i % 2], i * 1.5])];

async function source(name: string, content: string | Buffer): Promise<string> {
  const file = join(work, name);
  await writeFile(file, content);
  return file;
}

/** Scaffolds into a fresh folder of `work`; on refusal, checks that nothing was written, and returns the code. */
async function refusal(options: Omit<ScaffoldOptions, 'into'>): Promise<{ code: ScaffoldErrorCode; message: string }> {
  const into = join(work, `out-${randomBytes(4).toString('hex')}`);
  const before = await readdir(work);
  const error = await scaffoldDomain({ ...options, into }).then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(ScaffoldError);
  expect(await readdir(work)).toEqual(before); // no folder, no staging copy
  return { code: (error as ScaffoldError).code, message: (error as ScaffoldError).message };
}

describe('names', () => {
  it('makes source names SQL and GraphQL names, documented in the domain', () => {
    expect(['First Name', 'orderID', '2nd line', 'Größe', '  ', 'already_snake'].map((name, i) => columnNameOf(name, i))).toEqual(['first_name', 'order_id', 'c_2nd_line', 'grosse', 'column_5', 'already_snake']);
    expect(fieldNameOf('first_name')).toBe('firstName');
    expect(fieldNameOf('c_2nd_line')).toBe('c2ndLine');
  });
});

describe('a domain from a CSV file', () => {
  it('proposes the key, the personal data and its mask, the row policy and accepted values, and writes a domain that lists its renamings', async () => {
    const file = await source('shipments.csv', csv([['Shipment ID', 'Recipient Email', 'carrier', 'region', 'weight'], ...Array.from({ length: 120 }, (_, i) => [`S-${i}`, `r${i}@example.org`, ['Parcelo', 'Swiftly'][i % 2], ['EMEA', 'APAC', 'AMERICAS'][i % 3], (i % 7) + 0.25])]));
    const into = join(work, 'shipping');
    const result = await scaffoldDomain({ name: 'shipping', source: { location: file }, into, baseManifest: undefined });
    expect(result.proposal.key.column).toBe('shipment_id');
    const byColumn = Object.fromEntries(result.proposal.columns.map((column) => [column.column, column]));
    expect(byColumn.recipient_email!.pii?.detection?.detector).toBe('email');
    expect(byColumn.recipient_email!.redact).toBe(false); // 120 values: the default HASH mask fits
    expect(byColumn.carrier!.acceptedValues).toEqual(['Parcelo', 'Swiftly']);
    expect(byColumn.weight!.type).toBe('decimal(18, 2)');
    expect(result.proposal.rowPolicy?.column).toBe('region');
    expect(result.placeholders).toEqual(['owner', 'purpose']);
    const schema = await readFile(join(into, 'schema.graphql'), 'utf8');
    expect(schema).toMatch(/recipientEmail: String! @classify\(level: "CONFIDENTIAL", tags: \["pii"\]\)\n/);
    expect(schema).toMatch(/@rowPolicy\(column: "region", claim: "regions"/);
    expect(schema).toMatch(/"<fill in: what one Shipment is, and what the product is for> Data product/);
    const sourceJson = JSON.parse(await readFile(join(into, 'source.json'), 'utf8'));
    expect(sourceJson.columns[0]).toEqual({ source: 'Shipment ID', column: 'shipment_id', field: 'shipmentId' });
    expect((await readFile(join(into, 'data/shipments.csv'), 'utf8')).split('\n')[0]).toBe('shipment_id,recipient_email,carrier,region,weight');
    expect(await readFile(join(into, 'README.md'), 'utf8')).toMatch(/`Shipment ID` → column `shipment_id`, field `shipmentId`/);
  });

  it('redacts personal data with too few values to hash, and takes the owner and purpose it is given', async () => {
    const file = await source('agents.csv', csv([['agent_code', 'contact_phone'], ...Array.from({ length: 40 }, (_, i) => [`A${i}`, ['+44 20 7946 0958', '+1 212 555 0199'][i % 2]])]));
    const result = await scaffoldDomain({ name: 'agents', source: { location: file }, into: join(work, 'agents'), owner: 'desk@example.com', purpose: 'Who answers the phone.' });
    expect(result.placeholders).toEqual([]);
    const phone = result.proposal.columns.find((column) => column.column === 'contact_phone')!;
    expect(phone.pii).not.toBeNull();
    expect(phone.redact).toBe(true);
    expect(await readFile(join(work, 'agents/schema.graphql'), 'utf8')).toMatch(/contactPhone: String! @classify\(level: "CONFIDENTIAL", tags: \["pii"\]\) @mask\(strategy: "REDACT", exemptRoles: \["steward", "support", "admin"\]\)/);
    expect(await readFile(join(work, 'agents/index.ts'), 'utf8')).not.toMatch(/<fill in:/);
  });
});

describe('a refused source leaves nothing behind', () => {
  it('refuses a folder that is not empty, and leaves the team\'s files as they were', async () => {
    const file = await source('few.csv', csv(people(3)));
    const into = join(work, 'taken');
    await mkdir(into);
    await writeFile(join(into, 'mine.txt'), 'a team file');
    await expect(scaffoldDomain({ name: 'few', source: { location: file }, into })).rejects.toMatchObject({ code: 'SCAFFOLD_FOLDER_EXISTS' });
    expect(await readdir(into)).toEqual(['mine.txt']);
  });

  it('refuses a domain name that is not one, or one the mesh has', async () => {
    const file = await source('p.csv', csv(people(3)));
    expect((await refusal({ name: 'Bad-Name', source: { location: file } })).code).toBe('SCAFFOLD_INVALID_NAME');
    expect((await refusal({ name: 'customers', source: { location: file } })).message).toMatch(/already has a domain "customers"/);
  });

  it('refuses a type every subgraph has, and exports a domain named by a reserved word under another name', async () => {
    const pages = await source('page_infos.csv', csv(people(3)));
    expect(await refusal({ name: 'pages', source: { location: pages } })).toEqual({ code: 'SCAFFOLD_INVALID_NAME', message: 'SCAFFOLD_INVALID_NAME: The type PageInfo is one every subgraph has already; give the type another name with --type.' });
    const made = await scaffoldDomain({ name: 'class', source: { location: await source('lessons.csv', csv(people(3))) }, into: join(work, 'class') });
    const module = (await import(join(made.folder, 'index.ts'))) as Record<string, unknown>;
    expect(Object.keys(module)).toEqual(['classDomain']);
    expect(isDomain(module.classDomain)).toBe(true);
  });

  it('refuses a file it cannot read, or whose format it cannot tell', async () => {
    expect((await refusal({ name: 'nothing', source: { location: join(work, 'missing.csv') } })).code).toBe('SCAFFOLD_SOURCE_UNREADABLE');
    expect((await refusal({ name: 'nothing', source: { location: await source('data.xlsx', 'PK') } })).code).toBe('SCAFFOLD_SOURCE_FORMAT');
    expect((await refusal({ name: 'nothing', source: { location: await source('broken.parquet', 'not parquet at all') } })).code).toBe('SCAFFOLD_SOURCE_UNREADABLE');
  });

  it('refuses a source of 10,000 columns', async () => {
    const wide = Array.from({ length: 10_000 }, (_, i) => `c${i}`);
    const { code, message } = await refusal({ name: 'wide', source: { location: await source('wide.csv', csv([wide, wide.map((_, i) => i)])) } });
    expect(code).toBe('SCAFFOLD_TOO_MANY_COLUMNS');
    expect(message).toMatch(/has 10000 columns; a data product serves at most 500/);
  });

  it('refuses a file over the size limit (lowered here)', async () => {
    const file = await source('big.csv', csv(people(50)));
    const { code, message } = await refusal({ name: 'big', source: { location: file }, limits: { maxBytes: 1_000, maxColumns: 500 } });
    expect(code).toBe('SCAFFOLD_SOURCE_TOO_LARGE');
    expect(message).toMatch(/the limit is 1000/);
  });

  it('refuses bytes that are not UTF-8, saying where', async () => {
    const latin1 = Buffer.concat([Buffer.from('id,name\n1,caf'), Buffer.from([0xe9]), Buffer.from('\n2,tea\n')]);
    const { code, message } = await refusal({ name: 'latin', source: { location: await source('latin.csv', latin1) } });
    expect(code).toBe('SCAFFOLD_SOURCE_NOT_UTF8');
    expect(message).toMatch(/iconv/);
    const jsonl = Buffer.concat([Buffer.from('{"id": 1, "name": "caf'), Buffer.from([0xe9]), Buffer.from('"}\n')]);
    expect((await refusal({ name: 'latin', source: { location: await source('latin.jsonl', jsonl) } })).code).toBe('SCAFFOLD_SOURCE_NOT_UTF8');
  });

  it('reads characters split across its 1 MiB chunks, and refuses a file that ends inside one', async () => {
    for (const character of ['é', '€', '😀']) {
      // The character starts one byte before the first chunk's end.
      const head = 'id,name\n1,';
      const text = `${head}${'a'.repeat((1 << 20) - 1 - head.length)}${character}\n2,b\n`;
      expect(Buffer.from(text).indexOf(Buffer.from(character))).toBe((1 << 20) - 1);
      const made = await scaffoldDomain({ name: 'split', source: { location: await source('split.csv', text) }, into: join(work, `split-${randomBytes(3).toString('hex')}`) });
      expect(made.proposal.key.column).toBe('id');
    }
    const cut = Buffer.from('id,name\n1,caf€');
    const { code, message } = await refusal({ name: 'cut', source: { location: await source('cut.csv', cut.subarray(0, cut.length - 1)) } });
    expect({ code, message: message.replace(/^.*: /, '') }).toEqual({ code: 'SCAFFOLD_SOURCE_NOT_UTF8', message: 'it ends in the middle of a character.' });
  });

  it('refuses duplicate column names, as written or once made safe', async () => {
    const repeated = await refusal({ name: 'dup', source: { location: await source('dup.csv', csv([['id', 'email', 'email'], [1, 'a', 'b']])) } });
    expect(repeated).toEqual({ code: 'SCAFFOLD_DUPLICATE_COLUMN', message: 'SCAFFOLD_DUPLICATE_COLUMN: The column name "email" appears twice (columns 2 and 3).' });
    const collide = await refusal({ name: 'dup', source: { location: await source('dup2.csv', csv([['id', 'First Name', 'first_name'], [1, 'a', 'b']])) } });
    expect(collide.message).toMatch(/"First Name" and "first_name" would both be named first_name/);
  });

  it('refuses SQL metacharacters in column names, naming them', async () => {
    for (const bad of ['name"; DROP TABLE x; --', "o'brien", 'a/*b*/', 'semi;colon', 'back\\slash']) {
      const header = `id,"${bad.replaceAll('"', '""')}"`;
      const { code, message } = await refusal({ name: 'unsafe', source: { location: await source('unsafe.csv', `${header}\n1,x\n`) } });
      expect({ bad, code }).toEqual({ bad, code: 'SCAFFOLD_UNSAFE_COLUMN_NAME' });
      expect(message).toContain(JSON.stringify(bad));
    }
  });

  it('refuses a source without a key candidate, and a --key that is not one', async () => {
    const file = await source('nokey.csv', csv([['region', 'amount'], ['EMEA', 1], ['EMEA', 2], ['APAC', 2]]));
    expect((await refusal({ name: 'nokey', source: { location: file } })).code).toBe('SCAFFOLD_NO_KEY');
    expect((await refusal({ name: 'nokey', source: { location: file }, key: 'region' })).message).toMatch(/--key region: 1 of the 3 rows read repeat or leave it empty/);
    expect((await refusal({ name: 'nokey', source: { location: file }, key: 'nope' })).code).toBe('SCAFFOLD_KEY_NOT_UNIQUE');
    expect((await refusal({ name: 'empty', source: { location: await source('empty.csv', 'id,name\n') } })).code).toBe('SCAFFOLD_SOURCE_EMPTY');
  });
});

describe('a source larger than the profile reads', () => {
  it('profiles its first 100,000 rows, leaves every column but the key nullable, makes accepted values warnings, and lands every row', async () => {
    const file = join(work, 'large.csv');
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    await connection.run(`COPY (SELECT 'K' || i AS code, (['red', 'green'])[1 + i % 2] AS colour, i AS amount FROM range(150000) t(i)) TO '${file}' (HEADER)`);
    connection.closeSync();
    instance.closeSync();
    const result = await scaffoldDomain({ name: 'large', source: { location: file }, into: join(work, 'large') });
    expect({ rows: result.proposal.rowsProfiled, exact: result.proposal.exact, key: result.proposal.key.column }).toEqual({ rows: 100_000, exact: false, key: 'code' });
    expect(result.proposal.columns.map((column) => [column.column, column.nullable])).toEqual([['code', false], ['colour', true], ['amount', true]]);
    expect(await readFile(join(work, 'large/index.ts'), 'utf8')).toMatch(/name: "colour_accepted_values", .* severity: 'warning'/);
    expect((await readFile(join(work, 'large/data/large.csv'), 'utf8')).trimEnd().split('\n')).toHaveLength(150_001);
  });
});

describe('a domain from Parquet and JSON lines', () => {
  it('reads their types: dates, timestamps with a zone (landed in UTC), decimals, booleans', async () => {
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    const parquet = join(work, 'events.parquet');
    await connection.run(`COPY (SELECT 'E-' || i AS event_id, DATE '2026-01-01' + cast(i AS INTEGER) AS on_day, TIMESTAMPTZ '2026-01-01 10:00:00+02' + (i * INTERVAL 1 HOUR) AS at, cast(i * 1.5 AS DECIMAL(10, 2)) AS amount, i % 2 = 0 AS even FROM range(10) t(i)) TO '${parquet}' (FORMAT parquet)`);
    connection.closeSync();
    instance.closeSync();
    const result = await scaffoldDomain({ name: 'events', source: { location: parquet }, into: join(work, 'events') });
    expect(result.proposal.columns.map((column) => [column.column, column.type, column.graphqlType])).toEqual([
      ['event_id', 'varchar', 'ID'],
      ['on_day', 'date', 'LocalDate'],
      ['at', 'timestamp', 'DateTime'],
      ['amount', 'decimal(10, 2)', 'Float'],
      ['even', 'boolean', 'Boolean'],
    ]);
    const landed = (await readFile(join(work, 'events/data/events.csv'), 'utf8')).split('\n');
    expect(landed[0]).toBe('event_id,on_day,at,amount,even');
    expect(landed[1]).toBe('E-0,2026-01-01,2026-01-01 08:00:00.000000,0.00,true');

    const jsonl = await source('feed.jsonl', ['{"id": "a", "name": "Ana"}', '{"id": "b", "name": "Bo"}', ''].join('\n'));
    const feed = await scaffoldDomain({ name: 'feed', source: { location: jsonl }, into: join(work, 'feed') });
    expect(feed.proposal.key.column).toBe('id');
    expect(await readFile(join(work, 'feed/data/feed.csv'), 'utf8')).toBe('id,name\na,Ana\nb,Bo\n');
  });
});

describe('a domain from PostgreSQL', () => {
  const url = `${TEST_POSTGRES}/${database}`;

  beforeAll(async () => {
    await onPostgres(
      `CREATE SCHEMA sales;
       CREATE TABLE sales.accounts ("Account No" text PRIMARY KEY, holder_email text NOT NULL, region text NOT NULL, opened date NOT NULL, balance numeric(12, 2));
       INSERT INTO sales.accounts SELECT 'AC-' || i, 'holder' || i || '@example.com', (ARRAY['EMEA','APAC'])[1 + i % 2], DATE '2020-01-01' + i, i * 10.5 FROM generate_series(1, 60) i;`,
      database,
    );
  });

  it('extracts a table in a read-only transaction, with its types, and renames what must be', async () => {
    const result = await scaffoldDomain({ name: 'sales', source: { location: url, table: 'sales.accounts' }, into: join(work, 'sales') });
    expect(result.product).toBe('accounts');
    expect(result.proposal.key.column).toBe('account_no');
    expect(result.proposal.columns.map((column) => [column.column, column.type])).toEqual([
      ['account_no', 'varchar'],
      ['holder_email', 'varchar'],
      ['region', 'varchar'],
      ['opened', 'date'],
      ['balance', 'decimal(18, 2)'],
    ]);
    expect(result.proposal.columns[1]!.pii?.detection?.detector).toBe('email');
    const landed = (await readFile(join(work, 'sales/data/accounts.csv'), 'utf8')).split('\n');
    expect(landed[0]).toBe('account_no,holder_email,region,opened,balance');
    expect(landed.filter(Boolean)).toHaveLength(61);
    const described = JSON.parse(await readFile(join(work, 'sales/source.json'), 'utf8'));
    expect(described).toMatchObject({ format: 'postgres', table: 'sales.accounts' });
  });

  it('cannot write through a query, and refuses what it cannot read', async () => {
    const writing = await refusal({ name: 'sales', source: { location: url, query: 'DELETE FROM sales.accounts RETURNING *' } });
    expect(writing.code).toBe('SCAFFOLD_SOURCE_UNREADABLE');
    expect(writing.message).toMatch(/read-only transaction|syntax error/);
    const client = await import('pg');
    const check = new client.default.Client({ connectionString: url });
    await check.connect();
    expect(Number((await check.query('SELECT count(*) AS n FROM sales.accounts')).rows[0].n)).toBe(60);
    await check.end();
    expect((await refusal({ name: 'sales', source: { location: url, table: 'sales.missing' } })).message).toMatch(/refused the table: relation "sales.missing" does not exist/);
    expect((await refusal({ name: 'sales', source: { location: url, table: 'x; DROP TABLE y' } })).code).toBe('SCAFFOLD_USAGE');
    expect((await refusal({ name: 'sales', source: { location: `${TEST_POSTGRES}/no_such_database_${database}`, table: 'accounts' } })).message).toMatch(/refused the connection/);
  });

  it('refuses a table over the size limit while extracting it', async () => {
    const { code } = await refusal({ name: 'sales', source: { location: url, table: 'sales.accounts' }, limits: { maxBytes: 500, maxColumns: 500 } });
    expect(code).toBe('SCAFFOLD_SOURCE_TOO_LARGE');
  });
});

describe('the command line', () => {
  const npm = (args: readonly string[]) => runProcess('npm', ['run', '-s', 'domain', '--', ...args], { cwd: fileURLToPath(new URL('../..', import.meta.url)) });

  it('says a refusal with its code, exit 1, and an unreadable source, exit 2; nothing is written', async () => {
    const file = await source('dup-cli.csv', csv([['id', 'id'], [1, 2]]));
    const into = join(work, 'cli-out');
    const refused = await npm(['new', 'dup', '--source', file, '--into', into]);
    expect({ code: refused.code, stderr: refused.stderr.trim() }).toEqual({ code: 1, stderr: 'SCAFFOLD_DUPLICATE_COLUMN: The column name "id" appears twice (columns 1 and 2).' });
    const unreadable = await npm(['new', 'dup', '--source', join(work, 'nowhere.csv'), '--into', into]);
    expect(unreadable.code).toBe(2);
    expect(unreadable.stderr).toMatch(/^SCAFFOLD_SOURCE_UNREADABLE: .*nowhere\.csv cannot be read/);
    await expect(readdir(into)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('is what subgraphs/README.md lists (run `npm run docs:errors` after changing the catalogue)', async () => {
    const readme = await readFile(SUBGRAPHS_README, 'utf8');
    expect(withGeneratedSections(readme, [SCAFFOLD_ERROR_SECTION])).toBe(readme);
  });
});
