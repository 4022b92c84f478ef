/**
 * `npm run bench`: the mesh on the default data set (scale 1: 10k customers, 100k orders), each
 * figure a ratio against a baseline measured in the same run (Vitest prints "N times faster than").
 */
import { afterAll, bench, describe } from 'vitest';
import { postGraphQL, startTestMesh, tokenFor } from './harness/mesh.js';

const mesh = await startTestMesh({ scale: 1 });
afterAll(() => mesh.stop());

async function ok(answer: Promise<{ status: number; body: { errors?: unknown } }>): Promise<void> {
  const { status, body } = await answer;
  if (status !== 200 || body.errors) throw new Error(`query failed: ${JSON.stringify(body)}`);
}

/** Long enough for a few hundred samples per case on a shared 2-core machine. */
const options = { time: 3_000, warmupTime: 500 };

// The subgraph verifies the same token the gateway forwards: both paths do the same policy work.
const authorization = `Bearer ${tokenFor()}`;

const CUSTOMERS_PAGE = '{ customers(first: 50, orderBy: {field: NAME}) { nodes { id name email country } } }';

describe('gateway overhead: a page of 50 customers', () => {
  bench('customers subgraph, called directly (baseline)', async () => {
    await ok(postGraphQL(mesh.subgraphs.customers!.url, CUSTOMERS_PAGE, undefined, { authorization }));
  }, options);
  bench('through the gateway', async () => {
    await ok(mesh.query(CUSTOMERS_PAGE));
  }, options);
});

describe('cross-domain joins: 100 orders', () => {
  bench('orders only, one domain (baseline)', async () => {
    await ok(mesh.query('{ orders(first: 100) { nodes { id total status } } }'));
  }, options);
  bench('with their customers, lines and products, three domains', async () => {
    await ok(mesh.query('{ orders(first: 100) { nodes { id total customer { name } lines { quantity product { name } } } } }'));
  }, options);
});

// A cursor 90,000 orders into the list, taken once: keyset paging costs the same at any depth.
const deep = await mesh.sql<{ id: string }>('finance', 'select id from orders order by id limit 1 offset 90000');
const deepCursor = Buffer.from(JSON.stringify(['orders.ID.ASC', deep[0]!.id])).toString('base64url');

describe('keyset paging: 100 orders by id', () => {
  bench('first page (baseline)', async () => {
    await ok(mesh.query('{ orders(first: 100) { nodes { id } } }'));
  }, options);
  bench('a page 90,000 rows in', async () => {
    await ok(mesh.query('query ($after: String) { orders(first: 100, after: $after) { nodes { id } } }', { after: deepCursor }));
  }, options);
});
