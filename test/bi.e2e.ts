/**
 * What BI connectors rely on: GET and POST alike (GET behind the CSRF preflight header), a bearer
 * token, introspection for signed-in callers, and a streamed CSV export under the same policy.
 */
import { createHash } from 'node:crypto';
import { parse as parseCsv } from 'csv-parse/sync';
import { openRegistry } from '../gateway/registry/open.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportWithTrailers, startTestMesh, tokenFor, type TestMesh } from './harness/mesh.js';

let mesh: TestMesh;
let exportUrl: string;
const steward = `Bearer ${tokenFor()}`;
const analyst = `Bearer ${tokenFor({ subject: 'ana', roles: ['analyst'], regions: ['EMEA'] })}`;

beforeAll(async () => {
  mesh = await startTestMesh();
  exportUrl = new URL('/export/csv', mesh.gateway.url).toString();
});

afterAll(async () => {
  await mesh?.stop();
});

async function exportCsv(body: Record<string, unknown>, authorization = steward): Promise<{ status: number; type: string | null; text: string }> {
  const response = await fetch(exportUrl, { method: 'POST', headers: { 'content-type': 'application/json', authorization }, body: JSON.stringify(body) });
  return { status: response.status, type: response.headers.get('content-type'), text: await response.text() };
}

// No comment lines: the body is CSV and nothing else (a note would be read as a row).
const rowsOf = (text: string) => parseCsv(text, { columns: true }) as Record<string, string>[];

describe('GraphQL over HTTP for BI tools', () => {
  it('answers GET (with the preflight header) exactly as POST, with a token and variables', async () => {
    const query = 'query Orders($n: Int!) { orders(first: $n, orderBy: { field: ID }) { nodes { id total status } } }';
    const post = await mesh.query(query, { n: 5 }, { authorization: analyst });
    const url = new URL(mesh.gateway.url);
    url.search = new URLSearchParams({ query, variables: JSON.stringify({ n: 5 }) }).toString();
    const get = await fetch(url, { headers: { authorization: analyst, 'apollo-require-preflight': 'true' } });
    expect(get.status).toBe(200);
    expect(await get.json()).toEqual(post.body);
    const withoutHeader = await fetch(url, { headers: { authorization: analyst } });
    expect(withoutHeader.status).toBe(400);
    expect(await withoutHeader.text()).toMatch(/Cross-Site Request Forgery.*apollo-require-preflight/s);
  });

  it('lets signed-in callers introspect, and no one else', async () => {
    const query = '{ __schema { queryType { name } } }';
    expect((await mesh.query(query, undefined, { authorization: analyst })).body).toEqual({ data: { __schema: { queryType: { name: 'Query' } } } });
    const anonymous = await fetch(mesh.gateway.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }) });
    expect(JSON.stringify(await anonymous.json())).toMatch(/UNAUTHENTICATED/);
  });
});

describe('CSV export', () => {
  const ORDERS = '{ orders(filter: { status: [DELIVERED] }, orderBy: { field: ID }) { nodes { id orderedAt status total customer { id region } } } }';

  it('streams every matching row, page after page, as the same query would answer', async () => {
    const { status, type, text } = await exportCsv({ query: ORDERS });
    expect(status).toBe(200);
    expect(type).toBe('text/csv; charset=utf-8');
    expect(text.split('\n')[0]).toBe('id,orderedAt,status,total,customer_id,customer_region');
    const expected = await mesh.sql<{ id: string; ordered_at: string; total: number; customer_id: string }>(
      'finance',
      "select id, ordered_at, total_amount as total, customer_id from orders where status = 'DELIVERED' order by id",
    );
    expect(expected.length).toBeGreaterThan(500); // several pages
    const rows = rowsOf(text);
    expect(rows.map((r) => [r.id, r.status, Number(r.total), r.customer_id])).toEqual(expected.map((o) => [o.id, 'DELIVERED', Number(o.total), o.customer_id]));
    expect(rows.every((r) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(r.orderedAt!))).toBe(true);
    expect(new Set(rows.map((r) => r.customer_region))).toEqual(new Set(['AMERICAS', 'EMEA', 'APAC']));
    expect(text).not.toMatch(/^#/m);
  });

  it('applies the same policy: row policies and masks, as the analyst sees them', async () => {
    const query = '{ customers(orderBy: { field: ID }) { nodes { id name region segment } } }';
    const { text } = await exportCsv({ query }, analyst);
    const rows = rowsOf(text);
    const emea = await mesh.sql<{ id: string; name: string }>('customers', "select id, name from customers where region = 'EMEA' order by id");
    expect(rows.map((r) => r.id)).toEqual(emea.map((c) => c.id));
    expect(rows.every((r) => r.region === 'EMEA')).toBe(true);
    // Names are hashed for an analyst: never the raw value, and the same hash the API answers.
    const raw = new Set(emea.map((c) => c.name));
    expect(rows.some((r) => raw.has(r.name!))).toBe(false);
    const api = await mesh.query('{ customers(first: 3, orderBy: { field: ID }) { nodes { name } } }', undefined, { authorization: analyst });
    expect(rows.slice(0, 3).map((r) => r.name)).toEqual(api.body.data!.customers.nodes.map((n: { name: string }) => n.name));
  });

  it('stops at the row cap, says so in its trailer (never in the CSV), and refuses a limit above the maximum', async () => {
    const capped = await exportWithTrailers(exportUrl, { query: ORDERS, limit: 700 }, steward);
    expect(capped.headers.trailer).toBe('X-Export-Status');
    const lines = capped.text.trimEnd().split('\n');
    expect(lines).toHaveLength(1 + 700);
    expect(lines.filter((line) => line.startsWith('#'))).toEqual([]);
    expect(rowsOf(capped.text)).toHaveLength(700);
    expect(capped.trailers['x-export-status']).toBe('truncated; rows=700; more rows match: narrow the query (filters, from/to), or raise limit up to 5000');
    // Positive control: an export that ends on its own says complete, with its row count.
    const whole = await exportWithTrailers(exportUrl, { query: '{ products { nodes { sku } } }' }, steward);
    expect([whole.aborted, whole.trailers['x-export-status']]).toEqual([false, `complete; rows=${rowsOf(whole.text).length}`]);
    for (const limit of [0, 5001, 'all', 1.5]) {
      const refused = await exportCsv({ query: ORDERS, limit });
      expect(refused.status, String(limit)).toBe(400);
      expect(JSON.parse(refused.text).errors[0].extensions.code).toBe('INVALID_ARGUMENT');
    }
  });

  it('refuses, before writing a row, what it cannot export or the caller may not read', async () => {
    const cases: [Record<string, unknown>, string, number, string][] = [
      [{ query: '{ customers { nodes { id } } orders { nodes { id } } }' }, steward, 400, 'EXPORT_NOT_TABULAR'],
      [{ query: '{ customer(id: "C0000001") { id } }' }, steward, 400, 'EXPORT_NOT_TABULAR'],
      [{ query: '{ customers { nodes { id addresses { city } } } }' }, steward, 400, 'EXPORT_NOT_TABULAR'],
      [{ query: '{ customers { nodes { id' }, steward, 400, 'GRAPHQL_PARSE_FAILED'],
      [{ query: '{ customers { nodes { id } } }', variables: '[1]' }, steward, 400, 'BAD_REQUEST'],
      [{}, steward, 400, 'BAD_REQUEST'],
      [{ query: '{ customers { nodes { id name } } }' }, '', 401, 'UNAUTHENTICATED'],
      [{ query: '{ customers { nodes { id birthDate } } }' }, analyst, 403, 'FORBIDDEN'],
      [{ query: '{ customers(orderBy: { field: NAME }) { nodes { id } } }' }, analyst, 403, 'ARGUMENT_NOT_ALLOWED'],
    ];
    for (const [body, authorization, status, code] of cases) {
      const answer = await exportCsv(body, authorization);
      expect(answer.status, JSON.stringify(body)).toBe(status);
      expect(answer.type, JSON.stringify(body)).toMatch(/application\/json/);
      expect(JSON.parse(answer.text).errors[0].extensions.code, JSON.stringify(body)).toBe(code);
    }
    const get = await fetch(`${exportUrl}?${new URLSearchParams({ query: ORDERS })}`, { headers: { authorization: steward } });
    expect(get.status).toBe(400);
    expect(((await get.json()) as any).errors[0].message).toMatch(/apollo-require-preflight/);
    const getOk = await fetch(`${exportUrl}?${new URLSearchParams({ query: ORDERS, limit: '3' })}`, { headers: { authorization: steward, 'apollo-require-preflight': 'true' } });
    expect(rowsOf(await getOk.text())).toHaveLength(3);
  });

  it('is closed to an app held to trusted documents', async () => {
    const body = '{ products(first: 1) { nodes { sku } } }';
    const registry = await openRegistry(mesh.registryUrl);
    await registry.registerDocuments([{ client: 'trusted-app', name: `sha256:${createHash('sha256').update(body).digest('hex')}`, body, registeredBy: 'test' }]);
    await registry.close();
    const app = `Bearer ${tokenFor({ subject: 'svc', roles: ['steward'], client: 'trusted-app' })}`;
    // The gateway rereads registered documents every 500 ms here: until then the app is not held.
    await expect.poll(async () => (await exportCsv({ query: ORDERS, limit: 1 }, app)).status, { timeout: 10_000 }).toBe(400);
    const refused = await exportCsv({ query: ORDERS }, app);
    expect(refused.status).toBe(400);
    expect(JSON.parse(refused.text).errors[0].extensions.code).toBe('TRUSTED_DOCUMENT_REQUIRED');
  });
});

describe('tabular lists and time windows', () => {
  it('an offset list is the SQL page of the same ordering and window, with numbers as numbers and times as ISO-8601', async () => {
    const { body } = await mesh.query(
      '{ orderList(limit: 50, offset: 120, from: "2023-01-01T00:00:00Z", to: "2024-01-01T00:00:00Z", orderBy: { field: TOTAL, direction: DESC }) { id orderedAt status total } }',
    );
    const expected = await mesh.sql<{ id: string; total: number }>(
      'finance',
      "select id, total_amount as total from orders where ordered_at >= '2023-01-01' and ordered_at < '2024-01-01' order by total_amount desc, id desc limit 50 offset 120",
    );
    expect(body.data!.orderList.map((o: { id: string; total: number }) => [o.id, o.total])).toEqual(expected.map((o) => [o.id, Number(o.total)]));
    const first = body.data!.orderList[0];
    expect(typeof first.total).toBe('number');
    expect(first.orderedAt).toMatch(/^2023-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it('from is inclusive and to exclusive on every data product, in lists and connections alike', async () => {
    const cases: [list: string, domain: string, column: string, from: string][] = [
      ['customers', 'customers', 'signup_date', '"2022-03-01"'],
      ['products', 'products', 'launch_date', '"2020-01-01"'],
      ['orders', 'finance', 'ordered_at', '"2023-07-01T00:00:00Z"'],
      ['invoices', 'finance', 'issued_on', '"2023-07-01"'],
    ];
    for (const [list, domain, column, from] of cases) {
      const to = from.replace(/20(\d\d)/, (_m, y: string) => `20${Number(y) + 1}`);
      const single = list.replace(/s$/, '');
      const { body } = await mesh.query(`{ c: ${list}(from: ${from}, to: ${to}) { totalCount } l: ${single}List(from: ${from}, to: ${to}, limit: 1000) { __typename } }`);
      expect(body.errors, list).toBeUndefined();
      const [row] = await mesh.sql<{ n: number }>(domain, `select count(*)::int as n from ${list} where ${column} >= cast(? as timestamp) and ${column} < cast(? as timestamp)`, [
        JSON.parse(from).replace('Z', ''),
        JSON.parse(to).replace('Z', ''),
      ]);
      expect(body.data!.c.totalCount, list).toBe(row!.n);
      expect(body.data!.l.length, list).toBe(Math.min(row!.n, 1000));
      expect(row!.n, list).toBeGreaterThan(0);
    }
  });

  it('caps limit and offset, and keeps row policies', async () => {
    const tooMany = await mesh.query('{ orderList(limit: 1001) { id } }');
    expect(tooMany.body.errors?.[0]?.extensions).toMatchObject({ code: 'PAGE_SIZE_OUT_OF_RANGE', argument: 'limit', max: 1000 });
    const tooDeep = await mesh.query('{ orderList(offset: 100001) { id } }');
    expect(tooDeep.body.errors?.[0]?.extensions).toMatchObject({ code: 'INVALID_ARGUMENT', argument: 'offset' });
    const negative = await mesh.query('{ customerList(offset: -1) { id } }');
    expect(negative.body.errors?.[0]?.extensions?.code).toBe('INVALID_ARGUMENT');
    // Malformed windows and buckets never reach SQL.
    const badTime = await mesh.query('{ orderList(from: "yesterday") { id } }');
    expect(badTime.status).toBe(400);
    expect(badTime.body.data?.orderList ?? null).toBeNull();
    expect(badTime.body.errors?.[0]?.message).toMatch(/DateTime/);
    const badDate = await mesh.query('{ customerList(to: "2024-02-30") { id } }');
    expect(badDate.status).toBe(400);
    expect(badDate.body.errors?.[0]?.message).toMatch(/LocalDate|date/i);
    const badBucket = await mesh.query('{ salesAggregate(bucket: YEAR) { revenue } }');
    expect(badBucket.status).toBe(400);
    expect(badBucket.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    const { body } = await mesh.query('{ customerList(limit: 1000) { id region } }', undefined, { authorization: analyst });
    const emea = await mesh.sql<{ id: string }>('customers', "select id from customers where region = 'EMEA' order by id limit 1000");
    expect(body.data!.customerList.map((c: { id: string }) => c.id)).toEqual(emea.map((c) => c.id));
  });
});
