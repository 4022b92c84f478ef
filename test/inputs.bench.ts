/**
 * `npm run bench` (with the others): a steward's page of 50 customers with their lifetime values, and
 * of 50 products with their units sold and revenue, at SCALE 1 (100,000 orders) and SCALE 20
 * (2,000,000 orders), now that the customers domain keeps the lifetime values from finance's orders
 * (an input, read through the gateway as finance.orders' change feed announces them) and finance
 * keeps each product's sales per region, instead of summing orders and lines at each request.
 *
 * Two test meshes (DuckDB files, the gateway, real tokens), each built and caught up with its
 * input first (the snapshot of every order through the gateway: its time is printed). Then, at
 * SCALE 1, the time from finance's events to the changed lifetime value served (printed).
 * Per scale, three cases: the page without lifetime values (the baseline), the page with them, and
 * the statement finance ran per page before (the per-request sum over the 50 customers' revenue
 * orders, on the finance warehouse of the same data): how it grew with the orders is what the
 * input removes from the request.
 */
import { join } from 'node:path';
import { afterAll, bench, describe } from 'vitest';
import { deliverIncrement } from '../subgraphs/synthetic-sources/live.js';
import { startTestMesh, type TestMesh } from './harness/mesh.js';

const PAGE = '{ customers(first: 50, orderBy: { field: ID }) { nodes { id name country lifetimeValue } } }';
const BASELINE = '{ customers(first: 50, orderBy: { field: ID }) { nodes { id name country } } }';

const meshes: Record<string, TestMesh> = {};
const timings: string[] = [];
for (const scale of [1, 20]) {
  const started = Date.now();
  meshes[scale] = await startTestMesh({ scale, inputsTimeoutMs: 60 * 60_000 });
  timings.push(`SCALE=${scale}: mesh built and its input read whole in ${Math.round((Date.now() - started) / 1000)} s`);
}
afterAll(async () => {
  console.log(timings.join('\n'));
  for (const mesh of Object.values(meshes)) await mesh.stop();
});

/**
 * From finance's events to the lifetime values they change, at SCALE 1: a delivery of 20 orders
 * merged and served by finance, its events published; then the customers domain reads the changed
 * orders through the gateway, merges them and serves the new values. Timed from the publish to the
 * moment the gateway answers a changed customer's new lifetime value (medians of 3).
 */
const followed: number[] = [];
{
  const mesh = meshes[1]!;
  for (let round = 0; round < 3; round += 1) {
    const before = new Map((await mesh.sql('customers', 'select id, lifetime_value from customers')).map((row) => [String(row.id), String(row.lifetime_value)]));
    await deliverIncrement({ rawDir: join(mesh.dataDir, 'raw'), orders: 20, changes: 0 });
    await mesh.load('finance');
    const sums = await mesh.sql('finance', "select customer_id, sum(total_amount) as value from orders where status in ('PAID', 'SHIPPED', 'DELIVERED') group by customer_id");
    const changed = sums.find((row) => Number(before.get(String(row.customer_id))) !== Number(row.value));
    if (!changed) throw new Error('the delivery changed no lifetime value');
    const started = performance.now();
    await mesh.publish('finance');
    for (;;) {
      const { body } = await mesh.query<any>('query ($id: ID!) { customer(id: $id) { lifetimeValue } }', { id: changed.customer_id });
      if (Math.abs(body.data.customer.lifetimeValue - Number(changed.value)) < 0.005) break;
      if (performance.now() - started > 60_000) throw new Error('the lifetime value did not follow within a minute');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    followed.push(performance.now() - started);
  }
  followed.sort((a, b) => a - b);
  timings.push(`SCALE=1: finance's events published → the changed lifetime value served by the gateway: median ${Math.round(followed[1]!)} ms (${followed.map((ms) => Math.round(ms)).join(', ')})`);
}

/** The 50 customers of the page, as finance summed their revenue orders per request before. */
const pageIds = async (mesh: TestMesh) => (await mesh.sql('customers', 'select id from customers order by id limit 50')).map((row) => String(row.id));
const ids: Record<string, string[]> = {};
for (const [scale, mesh] of Object.entries(meshes)) ids[scale] = await pageIds(mesh);

async function page(mesh: TestMesh, query: string): Promise<void> {
  const { body } = await mesh.query<any>(query);
  if (body.errors || body.data.customers.nodes.length !== 50) throw new Error(JSON.stringify(body).slice(0, 500));
}

const options = { time: 4_000, warmupTime: 1_000 };

const PRODUCTS = '{ products(first: 50, orderBy: { field: SKU }) { nodes { sku name unitsSold revenue } } }';
const PRODUCTS_BASELINE = '{ products(first: 50, orderBy: { field: SKU }) { nodes { sku name } } }';
const skus: Record<string, string[]> = {};
for (const [scale, mesh] of Object.entries(meshes)) skus[scale] = (await mesh.sql('products', 'select sku from products order by sku limit 50')).map((row) => String(row.sku));

async function productsPage(mesh: TestMesh, query: string): Promise<void> {
  const { body } = await mesh.query<any>(query);
  if (body.errors || body.data.products.nodes.length !== 50) throw new Error(JSON.stringify(body).slice(0, 500));
}

for (const scale of ['1', '20']) {
  describe(`SCALE=${scale}: a steward's page of 50 products`, () => {
    bench('without units sold and revenue (baseline)', () => productsPage(meshes[scale]!, PRODUCTS_BASELINE), options);
    bench('with units sold and revenue (kept per product and region by finance)', () => productsPage(meshes[scale]!, PRODUCTS), options);
    bench("finance's per-request sum of the 50 products' revenue lines (before: its statement per page)", async () => {
      const list = skus[scale]!.map((sku) => `'${sku}'`).join(', ');
      await meshes[scale]!.sql('finance', `select l.sku, sum(l.quantity) as units, sum(l.net_amount) as revenue from order_lines l join orders o on o.id = l.order_id where l.sku in (${list}) and o.status in ('PAID', 'SHIPPED', 'DELIVERED') group by l.sku`);
    }, options);
  });
}

for (const scale of ['1', '20']) {
  describe(`SCALE=${scale}: a steward's page of 50 customers`, () => {
    bench('without lifetime values (baseline)', () => page(meshes[scale]!, BASELINE), options);
    bench('with lifetime values (kept by the customers domain)', () => page(meshes[scale]!, PAGE), options);
    bench("finance's per-request sum of the 50 customers' revenue orders (before: its statement per page)", async () => {
      const list = ids[scale]!.map((id) => `'${id}'`).join(', ');
      await meshes[scale]!.sql('finance', `select customer_id, sum(total_amount) as value from orders where customer_id in (${list}) and status in ('PAID', 'SHIPPED', 'DELIVERED') group by customer_id`);
    }, options);
  });
}
