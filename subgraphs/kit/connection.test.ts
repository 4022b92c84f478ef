import { GraphQLError } from 'graphql';
import { DummyDriver, Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler } from 'kysely';
import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor, keysetCondition, MAX_PAGE_SIZE, readPageArgs, toConnection, type Ordering } from './connection.js';

const bySignup: Ordering = {
  key: 'customers.SIGNUP_DATE.ASC',
  columns: [{ column: 'signup_date', cast: 'date', field: 'Customer.signupDate' }, { column: 'id', field: 'Customer.id' }],
  direction: 'asc',
};
const byTotal: Ordering = { key: 'orders.TOTAL.DESC', columns: [{ column: 'total_amount', numeric: true, field: 'Order.total' }, { column: 'id', field: 'Order.id' }], direction: 'desc' };

function codeOf(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(GraphQLError);
    return (error as GraphQLError).extensions.code;
  }
  throw new Error('expected an error');
}

describe('cursors', () => {
  it('round-trip the sort values of a row', () => {
    const cursor = encodeCursor(bySignup, { id: 'C0000042', signup_date: '2023-04-05', name: 'x' });
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(cursor, bySignup)).toEqual(['2023-04-05', 'C0000042']);
    expect(decodeCursor(encodeCursor(byTotal, { id: 'O1', total_amount: 12.34 }), byTotal)).toEqual([12.34, 'O1']);
  });

  it('refuse anything not issued for the same ordering, with INVALID_CURSOR', () => {
    const foreign = encodeCursor(byTotal, { id: 'O1', total_amount: 1 });
    const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    for (const cursor of [
      '',
      'not base64!',
      'abc',
      foreign,
      b64({ key: 'customers.SIGNUP_DATE.ASC' }),
      b64(['customers.SIGNUP_DATE.ASC', '2023-04-05']), // too few values
      b64(['customers.SIGNUP_DATE.ASC', '2023-02-30x', 'C1']), // not a date
      b64(['customers.SIGNUP_DATE.ASC', 20230405, 'C1']), // a number where a date goes
      b64(['customers.SIGNUP_DATE.ASC', '2023-04-05', { $ne: 1 }]), // an object
      'A'.repeat(5000),
    ]) {
      expect(codeOf(() => decodeCursor(cursor, bySignup)), cursor.slice(0, 30)).toBe('INVALID_CURSOR');
    }
  });
});

describe('page arguments', () => {
  it('default to 20 rows and accept 0 up to the maximum', () => {
    expect(readPageArgs({}, bySignup)).toMatchObject({ limit: 20, after: null });
    expect(readPageArgs({ first: 0 }, bySignup).limit).toBe(0);
    expect(readPageArgs({ first: MAX_PAGE_SIZE }, bySignup).limit).toBe(MAX_PAGE_SIZE);
  });

  it('refuse first below 0 or above the maximum with PAGE_SIZE_OUT_OF_RANGE', () => {
    expect(codeOf(() => readPageArgs({ first: -1 }, bySignup))).toBe('PAGE_SIZE_OUT_OF_RANGE');
    expect(codeOf(() => readPageArgs({ first: MAX_PAGE_SIZE + 1 }, bySignup))).toBe('PAGE_SIZE_OUT_OF_RANGE');
  });

  it('turn a cursor into a bound row-value comparison, in the direction of the ordering', () => {
    const compiler = new Kysely<any>({
      dialect: {
        createAdapter: () => new PostgresAdapter(),
        createDriver: () => new DummyDriver(),
        createIntrospector: (db) => new PostgresIntrospector(db),
        createQueryCompiler: () => new PostgresQueryCompiler(),
      },
    });
    expect(keysetCondition(readPageArgs({}, bySignup))).toBeNull();
    const descending = keysetCondition(readPageArgs({ after: encodeCursor(byTotal, { id: "O9' --", total_amount: 5 }) }, byTotal))!;
    expect(compiler.selectFrom('orders').selectAll().where(descending).compile()).toMatchObject({
      sql: 'select * from "orders" where ("total_amount", "id") < ($1, $2)',
      parameters: [5, "O9' --"],
    });
    const ascending = keysetCondition(readPageArgs({ after: encodeCursor(bySignup, { id: 'C1', signup_date: '2024-01-31' }) }, bySignup))!;
    expect(compiler.selectFrom('customers').selectAll().where(ascending).compile()).toMatchObject({
      sql: 'select * from "customers" where ("signup_date", "id") > (cast($1 as date), $2)',
      parameters: ['2024-01-31', 'C1'],
    });
  });
});

describe('connections', () => {
  it('use the extra row only to tell that there is a next page', () => {
    const page = readPageArgs({ first: 2 }, byTotal);
    const rows = [
      { id: 'a', total_amount: 3 },
      { id: 'b', total_amount: 2 },
      { id: 'c', total_amount: 1 },
    ];
    const connection = toConnection(rows, page, (row) => row.id, async () => 3);
    expect(connection.nodes).toEqual(['a', 'b']);
    expect(connection.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: false });
    expect(connection.pageInfo.endCursor).toBe(connection.edges[1]!.cursor);
    expect(toConnection(rows.slice(0, 2), page, (row) => row.id, async () => 2).pageInfo.hasNextPage).toBe(false);
  });
});
