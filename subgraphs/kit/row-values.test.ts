/**
 * A row filter granting every value its column holds is left out of the SQL, only where the data
 * cannot change while served (a DuckDB file opened read-only), and never when the column holds a
 * NULL or a value the principal is not granted.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'graphql';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { RequestPolicy } from '../../policy/decide.js';
import { POLICY_DIRECTIVES_SDL } from '../../policy/directives.js';
import { governanceRules } from '../../policy/governance.rules.js';
import { readPolicy } from '../../policy/policy-index.js';
import { ANONYMOUS, type Principal } from '../../policy/principal.js';
import { onPostgres, TEST_POSTGRES } from '../../test/harness/postgres.js';
import { rowPolicyValuesOf, withoutFullGrant } from './row-values.js';
import { openDuckDbWarehouse } from './warehouse/duckdb.js';
import { openPostgresWarehouse } from './warehouse/postgres.js';
import type { Warehouse } from './warehouse/warehouse.js';

const policy = readPolicy(
  parse(`${POLICY_DIRECTIVES_SDL}
    type Order @classify(level: "INTERNAL") @rowPolicy(column: "region", claim: "regions", bypassRoles: ["steward"]) { id: ID! }
    type Invoice @classify(level: "INTERNAL") @rowPolicy(column: "region", claim: "regions", bypassRoles: ["steward"]) { id: ID! }
    type Product @classify(level: "PUBLIC") { sku: ID! }
  `),
  governanceRules,
);
const products = [
  { type: 'Order', table: 'orders' },
  { type: 'Invoice', table: 'invoices' },
  { type: 'Product', table: 'products' },
];
const analyst = (regions: string[]): Principal => ({ ...ANONYMOUS, anonymous: false, subject: 'a', roles: ['analyst'], attributes: { regions } });
const rowsOf = (type: string, regions: string[], held: Awaited<ReturnType<typeof rowPolicyValuesOf>>) =>
  withoutFullGrant(new RequestPolicy(policy, analyst(regions)).rows(type), held.get(type));

/** Orders in three regions; one invoice without a region. */
async function fill(warehouse: Warehouse<any>): Promise<void> {
  const { db } = warehouse;
  await sql`create table orders (id varchar, region varchar)`.execute(db);
  await sql`insert into orders values ('o1', 'EMEA'), ('o2', 'APAC'), ('o3', 'AMERICAS'), ('o4', 'EMEA')`.execute(db);
  await sql`create table invoices (id varchar, region varchar)`.execute(db);
  await sql`insert into invoices values ('i1', 'EMEA'), ('i2', null)`.execute(db);
  await sql`create table products (sku varchar)`.execute(db);
}

const dir = await mkdtemp(join(tmpdir(), 'row-values-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('a DuckDB file opened read-only', async () => {
  const file = join(dir, 'served.duckdb');
  const writer = openDuckDbWarehouse({ file, readOnly: false });
  await fill(writer);
  await writer.close();
  const served = openDuckDbWarehouse({ file });
  afterAll(() => served.close());
  const held = await rowPolicyValuesOf(served, products, policy);

  it('holds the values of each row-policy column', () => {
    expect(served.immutable).toBe(true);
    expect([...held.keys()]).toEqual(['Order']);
    expect([...held.get('Order')!].sort()).toEqual(['AMERICAS', 'APAC', 'EMEA']);
  });

  it('drops the condition of a principal granted every value, and keeps every other', () => {
    expect(rowsOf('Order', ['APAC', 'EMEA', 'AMERICAS', 'MARS'], held)).toEqual({ kind: 'all' });
    expect(rowsOf('Order', ['APAC', 'EMEA'], held)).toEqual({ kind: 'match', column: 'region', values: ['APAC', 'EMEA'] });
    expect(rowsOf('Order', ['emea', 'apac', 'americas'], held)).toMatchObject({ kind: 'match' });
    expect(rowsOf('Order', [], held)).toMatchObject({ kind: 'match', values: [] });
  });

  it('keeps the condition on a column holding a NULL: no grant covers it', () => {
    expect(rowsOf('Invoice', ['EMEA', 'APAC', 'AMERICAS'], held)).toMatchObject({ kind: 'match' });
  });
});

describe('warehouses whose data may change while served', () => {
  it('keep every condition: a DuckDB file opened for writing', async () => {
    const writable = openDuckDbWarehouse({ file: join(dir, 'writable.duckdb'), readOnly: false });
    try {
      await fill(writable);
      expect(writable.immutable).toBe(false);
      const held = await rowPolicyValuesOf(writable, products, policy);
      expect(held.size).toBe(0);
      // Were it trusted, a row added now would reach a principal never granted its region.
      await sql`insert into orders values ('o5', 'MARS')`.execute(writable.db);
      expect(rowsOf('Order', ['APAC', 'EMEA', 'AMERICAS'], held)).toMatchObject({ kind: 'match' });
    } finally {
      await writable.close();
    }
  });

  it('keep every condition: PostgreSQL', async () => {
    const database = `row_values_${process.pid}_${randomUUID().slice(0, 8)}`;
    await onPostgres(`CREATE DATABASE ${database}`);
    const warehouse = openPostgresWarehouse({ connectionString: `${TEST_POSTGRES}/${database}`, schema: 'public', readOnly: false });
    try {
      await fill(warehouse);
      expect(warehouse.immutable).toBe(false);
      expect((await rowPolicyValuesOf(warehouse, products, policy)).size).toBe(0);
    } finally {
      await warehouse.close();
      await onPostgres(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    }
  });
});
