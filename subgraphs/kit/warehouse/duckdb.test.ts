import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDuckDbWarehouse } from './duckdb.js';
import { loadTables } from './tables.js';
import { parseWarehouseUrl, WarehouseConfigError, type Warehouse } from './warehouse.js';

type Db = { t: { id: string; day: string; at: string; amount: number; n: number; flag: boolean; note: string | null } };

let dir: string;
let warehouse: Warehouse<Db>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'duckdb-adapter-'));
  await writeFile(
    join(dir, 't.csv'),
    'id,day,at,amount,n,flag,note\n' +
      'a,2024-02-29,2024-02-29 13:14:15,12.34,7,true,"Smith, ""J"""\n' +
      'b,1999-12-31,2000-01-01 00:00:00,0.10,-3,false,\n',
  );
  warehouse = openDuckDbWarehouse<Db>({ file: join(dir, 'w.duckdb'), readOnly: false });
  await loadTables(warehouse, dir, [
    {
      name: 't',
      primaryKey: ['id'],
      indexes: [['day']],
      columns: [
        { name: 'id', type: 'varchar' },
        { name: 'day', type: 'date' },
        { name: 'at', type: 'timestamp' },
        { name: 'amount', type: 'decimal(10, 2)' },
        { name: 'n', type: 'integer' },
        { name: 'flag', type: 'boolean' },
        { name: 'note', type: 'varchar', nullable: true },
      ],
    },
  ]);
});

afterAll(async () => {
  await warehouse?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('the DuckDB adapter', () => {
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
    const rows = await warehouse.db.selectFrom('t').select('id').where('id', '=', hostile).execute();
    expect(rows).toEqual([]);
    const events: { sql: string; parameters: readonly unknown[] }[] = [];
    const unsubscribe = warehouse.onStatement((event) => events.push(event));
    await warehouse.db.selectFrom('t').select('id').where('note', '=', hostile).execute();
    unsubscribe();
    expect(events).toHaveLength(1);
    expect(events[0]!.sql).not.toContain(hostile);
    expect(events[0]!.parameters).toEqual([hostile]);
  });

  it('reports failed statements to observers, and the error to the caller', async () => {
    const events: { error?: unknown }[] = [];
    const unsubscribe = warehouse.onStatement((event) => events.push(event));
    await expect(sql`select * from missing_table`.execute(warehouse.db)).rejects.toThrow(/missing_table/);
    unsubscribe();
    expect(events[0]!.error).toBeDefined();
  });

  it('streams rows in the same value contract', async () => {
    const streamed = [];
    for await (const row of warehouse.db.selectFrom('t').select(['id', 'day', 'amount']).orderBy('id').stream()) streamed.push(row);
    expect(streamed).toEqual([
      { id: 'a', day: '2024-02-29', amount: 12.34 },
      { id: 'b', day: '1999-12-31', amount: 0.1 },
    ]);
  });

  it('opens read-only by default: serving can never write', async () => {
    const reader = openDuckDbWarehouse<Db>({ file: join(dir, 'w.duckdb') });
    try {
      await warehouse.close(); // DuckDB allows one writer or many readers per file
      await expect(sql`delete from t`.execute(reader.db)).rejects.toThrow(/read-only/i);
      expect(await reader.db.selectFrom('t').select('id').execute()).toHaveLength(2);
    } finally {
      await reader.close();
    }
  });
});

describe('warehouse URLs', () => {
  it('name the adapter and refuse what is not supported', () => {
    expect(parseWarehouseUrl('duckdb:data/w.duckdb')).toEqual({ dialect: 'duckdb', file: 'data/w.duckdb' });
    expect(() => parseWarehouseUrl('duckdb:')).toThrow(WarehouseConfigError);
    expect(() => parseWarehouseUrl('mysql://x')).toThrow(/scheme "mysql" is not supported/);
  });
});
