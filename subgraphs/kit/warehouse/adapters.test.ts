/**
 * Every warehouse adapter passes the same tests: the value contract, bound parameters, statement
 * observation, and read-only serving.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { onPostgres, TEST_POSTGRES } from '../../../test/harness/postgres.js';
import { openDuckDbWarehouse } from './duckdb.js';
import { openPostgresWarehouse } from './postgres.js';
import { defineTable, finishTables, loadTables, type RowOf, type WarehouseOf } from './tables.js';
import { DIALECTS, warehouseFailureOf, type TimeUnit } from './dialects.js';
import { parseWarehouseUrl, WarehouseConfigError, type Warehouse } from './warehouse.js';

const table = defineTable('t', {
  primaryKey: ['id'],
  indexes: [['day']],
  columns: { id: 'varchar', day: 'date', at: 'timestamp', amount: 'decimal(10, 2)', n: 'integer', flag: 'boolean', note: { type: 'varchar', nullable: true } },
});
type Db = WarehouseOf<[typeof table]>;

it('derives a declared table\'s row type from its columns, in the adapters\' value contract', () => {
  expectTypeOf<RowOf<typeof table>>().toEqualTypeOf<{ id: string; day: string; at: string; amount: number; n: number; flag: boolean; note: string | null }>();
  // A derived column is filled after every load: never null to readers.
  const derived = defineTable('d', { primaryKey: ['id'], columns: { id: 'integer', total: { type: 'decimal(14, 2)', nullable: true, derived: true } } });
  expectTypeOf<RowOf<typeof derived>>().toEqualTypeOf<{ id: number; total: number }>();
  expect(derived.columns).toEqual([
    { name: 'id', type: 'integer' },
    { name: 'total', type: 'decimal(14, 2)', nullable: true, derived: true },
  ]);
  // A column computed from its own row is a derived one, said so.
  expect(() => defineTable('e', { primaryKey: ['id'], columns: { id: 'integer', twice: { type: 'integer', fromRow: 'id * 2' } } })).toThrow(/e\.twice: a column computed from its row \(fromRow\) is derived/);
});

interface AdapterUnderTest {
  /** A warehouse to write the test table into. */
  writer(): Promise<Warehouse<Db>>;
  /** A read-only warehouse on the same data, opened after the writer is closed. */
  reader(): Warehouse<Db>;
  cleanup(): Promise<void>;
}


const dir = await mkdtemp(join(tmpdir(), 'adapters-'));
const database = `adapter_test_${process.pid}_${randomUUID().slice(0, 8)}`;

/** A fixture per dialect of `DIALECTS`: a dialect added without one fails the test below. */
const adapters: Record<(typeof DIALECTS)[number]['dialect'], AdapterUnderTest> = {
  duckdb: {
    writer: async () => openDuckDbWarehouse<Db>({ file: join(dir, 'w.duckdb'), readOnly: false }),
    reader: () => openDuckDbWarehouse<Db>({ file: join(dir, 'w.duckdb') }),
    cleanup: async () => undefined,
  },
  postgres: {
    async writer() {
      await onPostgres(`CREATE DATABASE ${database}`);
      return openPostgresWarehouse<Db>({ connectionString: `${TEST_POSTGRES}/${database}`, schema: 'public', readOnly: false });
    },
    reader: () => openPostgresWarehouse<Db>({ connectionString: `${TEST_POSTGRES}/${database}`, schema: 'public' }),
    cleanup: () => onPostgres(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`),
  },
};

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

it('has a fixture for every dialect the kit serves from', () => {
  expect(Object.keys(adapters).sort()).toEqual(DIALECTS.map((adapter) => adapter.dialect).sort());
});

describe.each(DIALECTS.map((dialect) => [dialect.dialect, adapters[dialect.dialect]] as const))('the %s adapter', (_name, adapter) => {
  let warehouse: Warehouse<Db>;

  beforeAll(async () => {
    await writeFile(
      join(dir, 't.csv'),
      'id,day,at,amount,n,flag,note\n' +
        'a,2024-02-29,2024-02-29 13:14:15,12.34,7,true,"Smith, ""J"""\n' +
        'b,1999-12-31,2000-01-01 00:00:00,0.10,-3,false,\n',
    );
    warehouse = await adapter.writer();
    await loadTables(warehouse, dir, [table]);
    await finishTables(warehouse.db as never, [table]);
  });

  afterAll(async () => {
    await warehouse?.close();
    await adapter.cleanup();
  });

  it('returns every type in the adapter-independent value contract', async () => {
    const rows = await warehouse.db.selectFrom('t').selectAll().orderBy('id').execute();
    expect(rows).toEqual([
      { id: 'a', day: '2024-02-29', at: '2024-02-29T13:14:15.000Z', amount: 12.34, n: 7, flag: true, note: 'Smith, "J"' },
      { id: 'b', day: '1999-12-31', at: '2000-01-01T00:00:00.000Z', amount: 0.1, n: -3, flag: false, note: null },
    ]);
    const [aggregate] = await warehouse.db
      .selectFrom('t')
      .select((eb) => [eb.fn.sum<number>('amount').as('sum'), eb.fn.countAll<number>().as('count'), eb.fn.sum<number>('n').as('n')])
      .execute();
    expect(aggregate).toEqual({ sum: 12.44, count: 2, n: 4 });
  });

  it('binds values as parameters: hostile text is data, not SQL', async () => {
    const hostile = "a' OR '1'='1";
    expect(await warehouse.db.selectFrom('t').select('id').where('id', '=', hostile).execute()).toEqual([]);
    const events: { sql: string; parameters: readonly unknown[] }[] = [];
    const unsubscribe = warehouse.onStatement((event) => events.push(event));
    await warehouse.db.selectFrom('t').select('id').where('note', '=', hostile).execute();
    unsubscribe();
    expect(events).toHaveLength(1);
    expect(events[0]!.sql).not.toContain(hostile);
    expect(events[0]!.parameters).toEqual([hostile]);
  });

  it('compares with any finite number a caller may send, however large (a GraphQL Float reaches 1.8e308)', async () => {
    const above = (bound: number) => warehouse.db.selectFrom('t').select('id').where('amount', '>=', bound).orderBy('id').execute();
    for (const bound of [1e20, 2 ** 63, 1e300, Number.MAX_VALUE]) expect(await above(bound), String(bound)).toEqual([]);
    expect(await above(-1e20)).toEqual([{ id: 'a' }, { id: 'b' }]);
    expect(await warehouse.db.selectFrom('t').select('id').where('amount', '<', 9007199254740993).where('amount', '>', -Number.MAX_VALUE).orderBy('id').execute()).toEqual([{ id: 'a' }, { id: 'b' }]);
    // A safe integer is still bound as an integer: equality on an integer column holds.
    expect(await warehouse.db.selectFrom('t').select('id').where('n', '=', 7).execute()).toEqual([{ id: 'a' }]);
  });

  it('reports failed statements to observers, and the error to the caller', async () => {
    const events: { error?: unknown }[] = [];
    const unsubscribe = warehouse.onStatement((event) => events.push(event));
    await expect(sql`select * from missing_table`.execute(warehouse.db)).rejects.toThrow(/missing_table/);
    unsubscribe();
    expect(events[0]!.error).toBeDefined();
  });

  it('spells the dialect\'s SQL fragments: case-insensitive match with literal wildcards, time truncation, category membership', async () => {
    const { sql: fragments } = DIALECTS.find((d) => d.dialect === _name)!;
    const matching = async (pattern: string) =>
      (await warehouse.db.selectFrom('t').select('id').where(fragments.matchesIgnoringCase('note', pattern)).orderBy('id').execute()).map((row) => row.id);
    expect(await matching('%SMITH%')).toEqual(['a']);
    expect(await matching('%h,_"%')).toEqual(['a']); // `_` is any one character…
    expect(await matching('%h,\\_"%')).toEqual([]); // …unless escaped
    expect(await matching('%\\%%')).toEqual([]);
    const truncated = async (unit: TimeUnit) =>
      (await warehouse.db.selectFrom('t').select(fragments.truncateTime(unit, sql.ref('at')).as('start')).where('id', '=', 'a').executeTakeFirstOrThrow()).start;
    // 2024-02-29 13:14:15 is a Thursday.
    expect(await truncated('day')).toBe('2024-02-29T00:00:00.000Z');
    expect(await truncated('week')).toBe('2024-02-26T00:00:00.000Z');
    expect(await truncated('month')).toBe('2024-02-01T00:00:00.000Z');
    expect(await truncated('quarter')).toBe('2024-01-01T00:00:00.000Z');
    expect(await truncated('year')).toBe('2024-01-01T00:00:00.000Z');
    // Membership in a few categories (row policies): a NULL is in no list, values are parameters.
    const among = async (column: 'id' | 'note' | 'n', values: readonly (string | number)[]) =>
      (await warehouse.db.selectFrom('t').select('id').where(fragments.isOneOfCategories(column, values)).orderBy('id').execute()).map((row) => row.id);
    expect(await among('id', ['a', 'b'])).toEqual(['a', 'b']);
    expect(await among('id', ['b', 'zz'])).toEqual(['b']);
    expect(await among('note', ['Smith, "J"', ''])).toEqual(['a']);
    expect(await among('n', [7, 8])).toEqual(['a']);
    expect(await among('id', ["a') or true --", "b' or '1'='1"])).toEqual([]);
  });

  it('opens read-only by default: serving can never write', async () => {
    await warehouse.close(); // DuckDB allows one writer or many readers per file
    const reader = adapter.reader();
    try {
      await expect(sql`delete from t`.execute(reader.db)).rejects.toThrow(/read-only/i);
      expect(await reader.db.selectFrom('t').select('id').execute()).toHaveLength(2);
    } finally {
      await reader.close();
    }
  });
});

describe('the DuckDB adapter', () => {
  it('streams rows in the same value contract', async () => {
    const reader = openDuckDbWarehouse<Db>({ file: join(dir, 'w.duckdb') });
    try {
      const streamed = [];
      for await (const row of reader.db.selectFrom('t').select(['id', 'day', 'amount']).orderBy('id').stream()) streamed.push(row);
      expect(streamed).toEqual([
        { id: 'a', day: '2024-02-29', amount: 12.34 },
        { id: 'b', day: '1999-12-31', amount: 0.1 },
      ]);
    } finally {
      await reader.close();
    }
  });
});

describe('the PostgreSQL adapter', () => {
  it('cancels a statement past its timeout, as a timeout', async () => {
    const slow = openPostgresWarehouse({ connectionString: `${TEST_POSTGRES}/postgres`, schema: 'public', statementTimeoutMs: 50 });
    try {
      const error = await sql`select pg_sleep(2)`.execute(slow.db).catch((e: unknown) => e);
      expect(warehouseFailureOf(error)).toBe('timeout');
    } finally {
      await slow.close();
    }
  });
});

describe('warehouse URLs', () => {
  it('name the adapter and refuse what is not supported', () => {
    expect(parseWarehouseUrl('duckdb:data/w.duckdb')).toEqual({ dialect: 'duckdb', file: 'data/w.duckdb' });
    expect(parseWarehouseUrl('postgres://mesh:secret@db:5432/mesh?schema=finance')).toEqual({
      dialect: 'postgres',
      connectionString: 'postgres://mesh:secret@db:5432/mesh',
      schema: 'finance',
    });
    expect(() => parseWarehouseUrl('postgres://db/mesh?schema=Robert%27);drop')).toThrow(/lower-case SQL identifier/);
    expect(() => parseWarehouseUrl('duckdb:')).toThrow(WarehouseConfigError);
    expect(() => parseWarehouseUrl('mysql://x')).toThrow(/scheme "mysql" is not supported/);
  });
});
