/**
 * Server-side aggregates for BI tools: computed in the finance warehouse, equal to the same
 * aggregation written in SQL by the test, under the caller's row policy.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestMesh, tokenFor, type TestMesh } from './harness/mesh.js';

let mesh: TestMesh;
const analystEmea = { authorization: `Bearer ${tokenFor({ subject: 'ana', roles: ['analyst'], regions: ['EMEA'] })}` };

beforeAll(async () => {
  mesh = await startTestMesh();
});

afterAll(async () => {
  await mesh?.stop();
});

const REVENUE = "('PAID', 'SHIPPED', 'DELIVERED')";
const cents = (value: unknown) => Math.round(Number(value) * 100) / 100;

describe('sales aggregates', () => {
  it('revenue by month and category equals SQL on the warehouse, with the categories named by their domain', async () => {
    const { body } = await mesh.query(
      '{ salesAggregate(groupBy: [CATEGORY], bucket: MONTH, from: "2024-01-01T00:00:00Z", to: "2025-01-01T00:00:00Z", limit: 10000) { period category { id name } orders lines units revenue averageLineRevenue minLineRevenue maxLineRevenue } }',
    );
    expect(body.errors).toBeUndefined();
    const expected = await mesh.sql<Record<string, unknown>>(
      'finance',
      `select strftime(date_trunc('month', o.ordered_at), '%Y-%m-%dT%H:%M:%S.000Z') as period, l.category_id,
              count(distinct o.id) as orders, count(*) as lines, sum(l.quantity) as units, sum(l.net_amount) as revenue,
              min(l.net_amount) as min, max(l.net_amount) as max
       from order_lines l join orders o on o.id = l.order_id
       where o.status in ${REVENUE} and o.ordered_at >= '2024-01-01' and o.ordered_at < '2025-01-01'
       group by 1, 2 order by 1, 2`,
    );
    const categories = new Map(
      (await mesh.sql<{ id: string; name: string }>('products', 'select id, name from categories')).map((c) => [c.id, c.name]),
    );
    expect(expected.length).toBeGreaterThan(50);
    expect(body.data!.salesAggregate).toEqual(
      expected.map((row) => ({
        period: row.period,
        category: { id: row.category_id, name: categories.get(String(row.category_id)) },
        orders: Number(row.orders),
        lines: Number(row.lines),
        units: Number(row.units),
        revenue: cents(row.revenue),
        // Rounded half up to cents from the exact sum (the same in every dialect).
        averageLineRevenue: Math.round(Math.round(Number(row.revenue) * 100) / Number(row.lines)) / 100,
        minLineRevenue: cents(row.min),
        maxLineRevenue: cents(row.max),
      })),
    );
  });

  it('buckets by ISO week (from Monday) and by day, and groups by several dimensions', async () => {
    const { body } = await mesh.query(
      '{ w: salesAggregate(groupBy: [REGION, CHANNEL], bucket: WEEK, from: "2023-06-01T00:00:00Z", to: "2023-07-01T00:00:00Z") { period region channel orders revenue } d: salesAggregate(bucket: DAY, from: "2023-06-01T00:00:00Z", to: "2023-06-08T00:00:00Z") { period orders revenue } }',
    );
    expect(body.errors).toBeUndefined();
    const weeks = await mesh.sql<Record<string, unknown>>(
      'finance',
      `select strftime(date_trunc('week', o.ordered_at), '%Y-%m-%dT%H:%M:%S.000Z') as period, o.region, o.channel, count(distinct o.id) as orders, sum(l.net_amount) as revenue
       from order_lines l join orders o on o.id = l.order_id
       where o.status in ${REVENUE} and o.ordered_at >= '2023-06-01' and o.ordered_at < '2023-07-01'
       group by 1, 2, 3 order by 1, 2, 3`,
    );
    expect(body.data!.w).toEqual(weeks.map((r) => ({ period: r.period, region: r.region, channel: r.channel, orders: Number(r.orders), revenue: cents(r.revenue) })));
    expect(body.data!.w.every((g: { period: string }) => new Date(g.period).getUTCDay() === 1)).toBe(true); // Mondays
    const days = await mesh.sql<Record<string, unknown>>(
      'finance',
      `select strftime(date_trunc('day', o.ordered_at), '%Y-%m-%dT%H:%M:%S.000Z') as period, count(distinct o.id) as orders, sum(l.net_amount) as revenue
       from order_lines l join orders o on o.id = l.order_id
       where o.status in ${REVENUE} and o.ordered_at >= '2023-06-01' and o.ordered_at < '2023-06-08'
       group by 1 order by 1`,
    );
    expect(body.data!.d).toEqual(days.map((r) => ({ period: r.period, orders: Number(r.orders), revenue: cents(r.revenue) })));
  });

  it('totals only the orders a row policy lets the caller see', async () => {
    const { body } = await mesh.query('{ salesAggregate(groupBy: [REGION], status: [DELIVERED]) { region orders revenue } }', undefined, analystEmea);
    const [emea] = await mesh.sql<Record<string, unknown>>(
      'finance',
      `select count(distinct o.id) as orders, sum(l.net_amount) as revenue from order_lines l join orders o on o.id = l.order_id where o.status = 'DELIVERED' and o.region = 'EMEA'`,
    );
    expect(body).toEqual({ data: { salesAggregate: [{ region: 'EMEA', orders: Number(emea!.orders), revenue: cents(emea!.revenue) }] } });
  });

  it('refuses a limit out of range, and caps the groups it returns', async () => {
    for (const limit of [0, 10001]) {
      const { body } = await mesh.query(`{ salesAggregate(groupBy: [PRODUCT], limit: ${limit}) { units } }`);
      expect(body.errors?.[0]?.extensions).toMatchObject({ code: 'INVALID_ARGUMENT', argument: 'limit' });
    }
    const { body } = await mesh.query('{ salesAggregate(groupBy: [PRODUCT], limit: 7) { product { sku } units } }');
    expect(body.data!.salesAggregate).toHaveLength(7);
  });
});
