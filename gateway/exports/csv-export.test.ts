import { stringify } from 'csv-stringify/sync';
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { cellOf, planExport } from './csv-export.js';

describe('CSV cells', () => {
  it('keeps numbers and booleans, and makes text a spreadsheet would evaluate inert', () => {
    expect([12.5, -3, true, null, undefined].map(cellOf)).toEqual([12.5, -3, true, null, null]);
    expect(['=HYPERLINK("http://x")', '+1', '-2', '@SUM(A1)', '\tx', 'plain', 'a=b'].map(cellOf)).toEqual([
      `'=HYPERLINK("http://x")`,
      `'+1`,
      `'-2`,
      `'@SUM(A1)`,
      `'\tx`,
      'plain',
      'a=b',
    ]);
    expect(() => cellOf({ nested: 1 })).toThrow(/list or an object/);
  });

  it('round-trips commas, quotes and line breaks through a CSV parser', () => {
    const values = ['Rua Eloisa, 83', 'say "hi"', 'two\nlines', "O'Brien", ''];
    const text = stringify([values.map(cellOf)]);
    expect(parse(text)).toEqual([values]);
  });
});

describe('the export plan', () => {
  it('pages the one root connection and flattens nested columns', () => {
    const plan = planExport('query Q($s: [OrderStatus!]) { orders(first: 3, filter: { status: $s }) { totalCount nodes { id customer { id region } ...F } } } fragment F on Order { total }', undefined);
    expect(plan.root).toBe('orders');
    expect(plan.columns.map((c) => c.name)).toEqual(['id', 'customer_id', 'customer_region', 'total']);
    expect(plan.document).toContain('query Q($s: [OrderStatus!], $__exportFirst: Int!, $__exportAfter: String)');
    expect(plan.document).toContain('orders(filter: {status: $s}, first: $__exportFirst, after: $__exportAfter)');
    expect(plan.document).toContain('__exportPage: pageInfo');
    expect(plan.document).not.toContain('totalCount');
  });

  it('refuses what is not one list', () => {
    expect(() => planExport('mutation { x }', undefined)).toThrow(/Only a query/);
    expect(() => planExport('{ a { nodes { id } } b { nodes { id } } }', undefined)).toThrow(/exactly one root field/);
    expect(() => planExport('{ a { edges { node { id } } } }', undefined)).toThrow(/must be a connection/);
    expect(() => planExport('query A { a { nodes { id } } } query B { b { nodes { id } } }', undefined)).toThrow(/one operation, or name one/);
    expect(planExport('query A { a { nodes { id } } } query B { b { nodes { x } } }', 'B').root).toBe('b');
  });
});
