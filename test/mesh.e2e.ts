/**
 * The mesh end to end: generated data, real DuckDB warehouses, three subgraphs and the gateway over
 * real HTTP. Every value the gateway returns is compared with an answer the test computes itself,
 * in SQL, on the domains' warehouses.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestMesh, tokenFor, type GraphQLResponse, type HttpAnswer, type TestMesh, postSubgraph } from './harness/mesh.js';

let mesh: TestMesh;

beforeAll(async () => {
  mesh = await startTestMesh();
});

afterAll(async () => {
  await mesh?.stop();
});

/** The test's own definition of a revenue order line amount, independent of ingestion's columns. */
const LINE_NET = 'round(l.quantity * l.unit_price * (1 - l.discount), 2)';
const REVENUE_STATUSES = "('PAID', 'SHIPPED', 'DELIVERED')";

function withoutRequestIds<T>(body: GraphQLResponse<T>): GraphQLResponse<T> {
  return {
    ...body,
    ...(body.errors
      ? { errors: body.errors.map(({ extensions, ...error }) => ({ ...error, extensions: { ...extensions, requestId: '<id>' } })) }
      : {}),
  };
}

describe('composition', () => {
  it('writes the supergraph and API schema files with all three subgraphs', async () => {
    const supergraph = await readFile(mesh.supergraphPath, 'utf8');
    for (const name of ['CUSTOMERS', 'PRODUCTS', 'FINANCE']) expect(supergraph).toMatch(new RegExp(`${name} @join__graph`));
    // The policy directives are composed into the supergraph, under their versioned spec.
    expect(supergraph).toContain('@link(url: "https://specs.datamesh.dev/policy/v1.3", import: ["@classify", "@requireRoles", "@requireScopes", "@requirePurpose", "@rowPolicy", "@mask", "@dataProduct"])');
    expect(supergraph).toMatch(/birthDate: LocalDate @join__field\(graph: CUSTOMERS\) @classify\(level: "RESTRICTED", tags: \["pii"\]\)/);
    const api = await readFile(mesh.apiSchemaPath, 'utf8');
    expect(api).toMatch(/type Customer \{[^}]*lifetimeValue: Float\n/s);
    expect(api).toMatch(/type Product \{[^}]*revenue: Float\n/s);
    expect(api).not.toMatch(/join__|_entities|_service/);
  });

  it('reports liveness and readiness with the supergraph version', async () => {
    const base = new URL(mesh.gateway.url);
    const live = await fetch(new URL('/health/live', base));
    expect(live.status).toBe(200);
    const ready = await fetch(new URL('/health/ready', base));
    expect(ready.status).toBe(200);
    const body = (await ready.json()) as { status: string; supergraph: { version: string; subgraphs: string[]; origin: string } };
    expect(body.status).toBe('ready');
    expect(body.supergraph.subgraphs).toEqual(['customers', 'finance', 'products']);
    expect(body.supergraph.origin).toBe('registry revision 3');
    expect(body.supergraph.version).toMatch(/^[0-9a-f]{12}$/);
  });
});

describe('cross-domain answers equal SQL on the warehouses', () => {
  it("a customer's lifetime value, orders and addresses", async () => {
    const [busiest] = await mesh.sql<{ customer_id: string; n: number }>(
      'finance',
      'select customer_id, count(*) as n from orders group by customer_id order by n desc, customer_id limit 1',
    );
    const id = busiest!.customer_id;
    const { body } = await mesh.query<any>(
      `query ($id: ID!) { customer(id: $id) { id name email country lifetimeValue
          addresses { kind city }
          orders(first: 500) { totalCount nodes { id total status } } } }`,
      { id },
    );
    expect(body.errors).toBeUndefined();
    const customer = body.data.customer;

    const [crm] = await mesh.sql('customers', 'select name, email, country from customers where id = ?', [id]);
    expect({ name: customer.name, email: customer.email, country: customer.country }).toEqual(crm);
    const addresses = await mesh.sql('customers', 'select kind, city from addresses where customer_id = ? order by kind, id', [id]);
    expect(customer.addresses).toEqual(addresses);

    const [ltv] = await mesh.sql<{ value: number }>(
      'finance',
      `select coalesce(sum(${LINE_NET}), 0) as value from orders o join order_lines l on l.order_id = o.id
       where o.customer_id = ? and o.status in ${REVENUE_STATUSES}`,
      [id],
    );
    expect(customer.lifetimeValue).toBeCloseTo(ltv!.value, 2);
    expect(customer.lifetimeValue).toBeGreaterThan(0);

    const orders = await mesh.sql<{ id: string; total: number; status: string }>(
      'finance',
      `select o.id, sum(${LINE_NET}) as total, o.status from orders o join order_lines l on l.order_id = o.id
       where o.customer_id = ? group by o.id, o.status, o.ordered_at order by o.ordered_at desc, o.id desc`,
      [id],
    );
    expect(customer.orders.totalCount).toBe(orders.length);
    expect(customer.orders.nodes).toEqual(orders);
  });

  it("products' units sold and revenue, with their catalogue data", async () => {
    const { body } = await mesh.query<any>(
      '{ products(first: 500, orderBy: {field: SKU}) { totalCount nodes { sku name listPrice category { id department } unitsSold revenue } } }',
    );
    expect(body.errors).toBeUndefined();
    const catalogue = await mesh.sql(
      'products',
      'select p.sku, p.name, p.list_price, c.id, c.department from products p join categories c on c.id = p.category_id order by p.sku',
    );
    const sales = await mesh.sql<{ sku: string; units: number; revenue: number }>(
      'finance',
      `select l.sku, sum(l.quantity) as units, sum(${LINE_NET}) as revenue from order_lines l
       join orders o on o.id = l.order_id where o.status in ${REVENUE_STATUSES} group by l.sku`,
    );
    const salesBySku = new Map(sales.map((row) => [row.sku, row]));
    expect(body.data.products.totalCount).toBe(catalogue.length);
    const expected = catalogue.map((row: any) => ({
      sku: row.sku,
      name: row.name,
      listPrice: row.list_price,
      category: { id: row.id, department: row.department },
      unitsSold: salesBySku.get(row.sku)?.units ?? 0,
      revenue: salesBySku.get(row.sku)?.revenue ?? 0,
    }));
    expect(body.data.products.nodes).toEqual(expected);
    expect(expected.some((product: any) => product.revenue > 0)).toBe(true);
  });

  it("an order's lines, products and invoice, joined across domains", async () => {
    const [order] = await mesh.sql<{ id: string }>(
      'finance',
      "select o.id from orders o join invoices i on i.order_id = o.id where o.status = 'DELIVERED' order by o.id limit 1",
    );
    const { body } = await mesh.query<any>(
      `query ($id: ID!) { order(id: $id) { id total customer { id name }
          lines { lineNumber quantity unitPrice discount netAmount product { sku name } }
          invoice { amount status payments { amount method } } } }`,
      { id: order!.id },
    );
    expect(body.errors).toBeUndefined();
    const lines = await mesh.sql<any>(
      'finance',
      `select l.line_number, l.quantity, l.unit_price, l.discount, ${LINE_NET} as net, l.sku
       from order_lines l where l.order_id = ? order by l.line_number`,
      [order!.id],
    );
    const names = await mesh.sql<{ sku: string; name: string }>(
      'products',
      `select sku, name from products where sku in (${lines.map(() => '?').join(', ')})`,
      lines.map((line) => line.sku),
    );
    const nameOf = new Map(names.map((row) => [row.sku, row.name]));
    expect(body.data.order.lines).toEqual(
      lines.map((line) => ({
        lineNumber: line.line_number,
        quantity: line.quantity,
        unitPrice: line.unit_price,
        discount: line.discount,
        netAmount: line.net,
        product: { sku: line.sku, name: nameOf.get(line.sku) },
      })),
    );
    const total = lines.reduce((sum, line) => sum + line.net, 0);
    expect(body.data.order.total).toBeCloseTo(total, 2);
    // The billing system invoiced exactly what the order lines add up to.
    expect(body.data.order.invoice.amount).toBeCloseTo(total, 2);
    const [orderRow] = await mesh.sql<{ customer_id: string }>('finance', 'select customer_id from orders where id = ?', [order!.id]);
    const [customer] = await mesh.sql<{ name: string }>('customers', 'select name from customers where id = ?', [orderRow!.customer_id]);
    expect(body.data.order.customer).toEqual({ id: orderRow!.customer_id, name: customer!.name });
  });

  it('the totalCount of filtered connections', async () => {
    const { body } = await mesh.query<any>(
      `{ customers(filter: {region: [EMEA, APAC], segment: [CONSUMER], signedUpFrom: "2021-01-01"}) { totalCount }
         orders(filter: {status: [DELIVERED, RETURNED], channel: [WEB], orderedFrom: "2023-01-01T00:00:00Z", orderedTo: "2024-06-30T23:59:59Z", minTotal: 50}) { totalCount }
         products(filter: {department: ["Electronics"], maxListPrice: 500}) { totalCount }
         invoices(filter: {status: [OVERDUE, OPEN]}) { totalCount } }`,
    );
    expect(body.errors).toBeUndefined();
    const [customers] = await mesh.sql<{ n: number }>(
      'customers',
      "select count(*) as n from customers where region in ('EMEA', 'APAC') and segment = 'CONSUMER' and signup_date >= date '2021-01-01'",
    );
    const [orders] = await mesh.sql<{ n: number }>(
      'finance',
      `select count(*) as n from (select o.id from orders o join order_lines l on l.order_id = o.id
         where o.status in ('DELIVERED', 'RETURNED') and o.channel = 'WEB'
           and o.ordered_at between timestamp '2023-01-01 00:00:00' and timestamp '2024-06-30 23:59:59'
         group by o.id having sum(${LINE_NET}) >= 50)`,
    );
    const [products] = await mesh.sql<{ n: number }>(
      'products',
      "select count(*) as n from products p join categories c on c.id = p.category_id where c.department = 'Electronics' and p.list_price <= 500",
    );
    const [invoices] = await mesh.sql<{ n: number }>('finance', "select count(*) as n from invoices where status in ('OVERDUE', 'OPEN')");
    expect(body.data).toEqual({
      customers: { totalCount: customers!.n },
      orders: { totalCount: orders!.n },
      products: { totalCount: products!.n },
      invoices: { totalCount: invoices!.n },
    });
    expect(Object.values(body.data).every((c: any) => c.totalCount > 0)).toBe(true);
  });
});

describe('paging', () => {
  async function walk(field: string, args: string, pageSize: number, select = 'id'): Promise<any[]> {
    const seen: any[] = [];
    let after: string | null = null;
    for (let pages = 0; pages < 1000; pages++) {
      const { body }: HttpAnswer<any> = await mesh.query<any>(
        `query ($after: String) { ${field}(first: ${pageSize}, after: $after${args}) { edges { cursor node { ${select} } } pageInfo { hasNextPage hasPreviousPage endCursor } } }`,
        { after },
      );
      expect(body.errors).toBeUndefined();
      const page: any = body.data[field];
      expect(page.pageInfo.hasPreviousPage).toBe(after !== null);
      seen.push(...page.edges.map((edge: any) => edge.node));
      if (!page.pageInfo.hasNextPage) return seen;
      expect(page.edges).toHaveLength(pageSize);
      expect(page.pageInfo.endCursor).toBe(page.edges.at(-1).cursor);
      after = page.pageInfo.endCursor;
    }
    throw new Error('paging did not end');
  }

  it('walks customers by name page by page: every row once, in order', async () => {
    const walked = await walk('customers', ', orderBy: {field: NAME}', 37);
    const expected = await mesh.sql<{ id: string }>('customers', 'select id from customers order by name, id');
    expect(walked.map((c) => c.id)).toEqual(expected.map((row) => row.id));
  });

  it('walks orders by total, descending, with a filter', async () => {
    const walked = await walk('orders', ', orderBy: {field: TOTAL, direction: DESC}, filter: {status: [DELIVERED]}', 150, 'id total');
    const expected = await mesh.sql<{ id: string; total: number }>(
      'finance',
      `select o.id, sum(${LINE_NET}) as total from orders o join order_lines l on l.order_id = o.id
       where o.status = 'DELIVERED' group by o.id order by total desc, o.id desc`,
    );
    expect(walked).toEqual(expected);
  });

  it('walks invoices by issue date, and products by launch date', async () => {
    const invoices = await walk('invoices', ', orderBy: {field: ISSUED_ON}', 111);
    const expectedInvoices = await mesh.sql<{ id: string }>('finance', 'select id from invoices order by issued_on, id');
    expect(invoices.map((i) => i.id)).toEqual(expectedInvoices.map((row) => row.id));
    const products = await walk('products', ', orderBy: {field: LAUNCH_DATE, direction: DESC}', 3, 'sku');
    const expectedProducts = await mesh.sql<{ sku: string }>('products', 'select sku from products order by launch_date desc, sku desc');
    expect(products.map((p) => p.sku)).toEqual(expectedProducts.map((row) => row.sku));
  });

  it("walks one customer's orders (a child list) page by page", async () => {
    const [busiest] = await mesh.sql<{ customer_id: string }>(
      'finance',
      'select customer_id from orders group by customer_id order by count(*) desc, customer_id limit 1',
    );
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const { body }: HttpAnswer<any> = await mesh.query<any>(
        'query ($id: ID!, $after: String) { customer(id: $id) { orders(first: 10, after: $after, orderBy: {field: ORDERED_AT}) { nodes { id } pageInfo { hasNextPage endCursor } } } }',
        { id: busiest!.customer_id, after },
      );
      expect(body.errors).toBeUndefined();
      const orders: any = body.data.customer.orders;
      seen.push(...orders.nodes.map((o: any) => o.id));
      if (!orders.pageInfo.hasNextPage) break;
      after = orders.pageInfo.endCursor;
    }
    const expected = await mesh.sql<{ id: string }>('finance', 'select id from orders where customer_id = ? order by ordered_at, id', [
      busiest!.customer_id,
    ]);
    expect(seen).toEqual(expected.map((row) => row.id));
    expect(seen.length).toBeGreaterThan(30);
  });

  it('first: 0 gives an empty page with the full count', async () => {
    const { body } = await mesh.query<any>('{ customers(first: 0) { totalCount edges { cursor } pageInfo { hasNextPage endCursor } } }');
    const [count] = await mesh.sql<{ n: number }>('customers', 'select count(*) as n from customers');
    expect(body).toEqual({
      data: { customers: { totalCount: count!.n, edges: [], pageInfo: { hasNextPage: true, endCursor: null } } },
    });
  });
});

describe('batching: one statement per entity type per request', () => {
  it('100 orders with their customers, lines and products cost four statements in all', async () => {
    const statements = await mesh.statementsDuring(async () => {
      const { body } = await mesh.query<any>(
        '{ orders(first: 100) { edges { node { id customer { id name segment } lines { quantity product { sku name brand } } } } } }',
      );
      expect(body.errors).toBeUndefined();
      const orders = body.data.orders.edges.map((edge: any) => edge.node);
      expect(orders).toHaveLength(100);
      expect(new Set(orders.map((o: any) => o.customer.id)).size).toBeGreaterThan(20);
      expect(orders.every((o: any) => o.customer.name && o.lines.every((l: any) => l.product.name))).toBe(true);
    });
    // finance: the page of orders, then every order's lines at once; customers and products: one
    // batched lookup each for all the keys the gateway sends in its single _entities request.
    expect(statements.finance).toHaveLength(2);
    expect(statements.finance[0]).toMatch(/from "orders"/);
    expect(statements.finance[1]).toMatch(/from "order_lines" where "order_id" in/);
    expect(statements.customers).toHaveLength(1);
    expect(statements.customers[0]).toMatch(/from "customers" where "id" in/);
    expect(statements.products).toHaveLength(1);
    expect(statements.products[0]).toMatch(/from "products" where "sku" in/);
  });

  it("customers' paged orders and lifetime values: one statement per field, whatever the number of customers", async () => {
    const statements = await mesh.statementsDuring(async () => {
      const { body } = await mesh.query<any>(
        '{ customers(first: 50) { nodes { lifetimeValue orders(first: 3) { totalCount nodes { id } } } } }',
      );
      expect(body.errors).toBeUndefined();
      expect(body.data.customers.nodes).toHaveLength(50);
    });
    // The customers with their lifetime values (a column the customers domain keeps from finance's orders: no sum per request)
    expect(statements.customers).toHaveLength(1);
    expect(statements.customers[0]).not.toMatch(/sum\(/);
    // the per-customer pages (a window function), and the per-customer counts
    expect(statements.finance).toHaveLength(2);
    expect(statements.finance.some((s) => /row_number\(\) over \(partition by "customer_id"/.test(s))).toBe(true);
    expect(statements.products).toHaveLength(0);
  });
});

describe('bad input', () => {
  it('unknown ids resolve to null without an error', async () => {
    const { status, body } = await mesh.query(
      '{ customer(id: "C9999999") { name } product(sku: "nope") { name } order(id: "x") { id } invoice(id: "y") { id } category(id: "z") { id } }',
    );
    expect(status).toBe(200);
    expect(body).toEqual({ data: { customer: null, product: null, order: null, invoice: null, category: null } });
  });

  it('first outside 0..500 is a coded error with the field path', async () => {
    for (const first of [-1, 501]) {
      const { body } = await mesh.query(`{ customers(first: ${first}) { totalCount } }`);
      expect(withoutRequestIds(body)).toEqual({
        data: { customers: null },
        errors: [
          {
            message: `"first" must be between 0 and 500, got ${first}.`,
            // No locations: those of a subgraph error point into the gateway's subgraph operation.
            path: ['customers'],
            extensions: { code: 'PAGE_SIZE_OUT_OF_RANGE', argument: 'first', min: 0, max: 500, serviceName: 'customers', requestId: '<id>' },
          },
        ],
      });
    }
  });

  it('a malformed or foreign cursor is INVALID_CURSOR', async () => {
    const { body: first } = await mesh.query<any>('{ customers(first: 1, orderBy: {field: NAME}) { pageInfo { endCursor } } }');
    const nameCursor = first.data.customers.pageInfo.endCursor;
    const forged = Buffer.from(JSON.stringify(['customers.ID.ASC', "x' or 1=1 --"])).toString('base64url');
    const wrongType = Buffer.from(JSON.stringify(['customers.SIGNUP_DATE.ASC', 'not a date', 'C1'])).toString('base64url');
    for (const after of ['abc', '!!!', '', nameCursor, wrongType, 'A'.repeat(2000)]) {
      const { body } = await mesh.query('query ($after: String) { customers(after: $after) { totalCount } }', { after });
      expect(body.errors?.[0]?.extensions?.code, `cursor ${after.slice(0, 20)}`).toBe('INVALID_CURSOR');
      expect(body.data).toEqual({ customers: null });
    }
    // A well-formed cursor holding hostile text is only ever a bound value: it pages, it does not inject.
    const { body } = await mesh.query<any>('query ($after: String) { customers(after: $after) { totalCount nodes { id } } }', {
      after: forged,
    });
    expect(body.errors).toBeUndefined();
    expect(body.data.customers.nodes).toEqual([]);
  });

  it('an unknown enum value is a 400 with a code, as a literal and as a variable', async () => {
    const literal = await mesh.query('{ customers(filter: {region: MARS}) { totalCount } }');
    expect(literal.status).toBe(400);
    expect(literal.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(literal.body.errors?.[0]?.message).toMatch(/MARS/);
    const variable = await mesh.query('query ($r: [Region!]) { customers(filter: {region: $r}) { totalCount } }', { r: ['MARS'] });
    expect(variable.status).toBe(400);
    expect(variable.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('an operationName the document does not hold is a 400 with OPERATION_RESOLUTION_FAILURE, not an internal error', async () => {
    const post = (body: Record<string, unknown>) =>
      fetch(mesh.gateway.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const unknown = await post({ query: 'query A { products(first: 1) { nodes { sku } } }', operationName: 'B' });
    expect(unknown.status).toBe(400);
    expect(withoutRequestIds((await unknown.json()) as any)).toEqual({
      errors: [{ message: 'Unknown operation named "B".', extensions: { code: 'OPERATION_RESOLUTION_FAILURE', requestId: '<id>' } }],
    });
    const unnamed = await post({ query: 'query A { products(first: 1) { nodes { sku } } } query B { categories { id } }' });
    expect(unnamed.status).toBe(400);
    expect(((await unnamed.json()) as any).errors[0].extensions.code).toBe('OPERATION_RESOLUTION_FAILURE');
  });

  it('a syntax error is a 400 with GRAPHQL_PARSE_FAILED', async () => {
    const { status, body } = await mesh.query('{ customers(first: ) }');
    expect(status).toBe(400);
    expect(withoutRequestIds(body)).toEqual({
      errors: [
        {
          message: 'Syntax Error: Unexpected ")".',
          locations: [{ line: 1, column: 20 }],
          extensions: { code: 'GRAPHQL_PARSE_FAILED', requestId: '<id>' },
        },
      ],
    });
  });

  it('a body that is not JSON is a 400 BAD_REQUEST, and an unknown route a JSON 404', async () => {
    const response = await fetch(mesh.gateway.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query": ' });
    expect(response.status).toBe(400);
    expect(((await response.json()) as GraphQLResponse).errors?.[0]?.extensions?.code).toBe('BAD_REQUEST');
    const missing = await fetch(new URL('/admin', mesh.gateway.url));
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as GraphQLResponse).errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });

  it('search text is matched literally, never as SQL or as a LIKE pattern', async () => {
    const { body } = await mesh.query<any>(
      'query ($t: String) { all: customers(filter: {nameContains: $t}) { totalCount } }',
      { t: "' or 1=1 --" },
    );
    expect(body.data.all.totalCount).toBe(0);
    const wildcard = await mesh.query<any>('{ customers(filter: {nameContains: "%"}) { totalCount } }');
    expect(wildcard.body.data.customers.totalCount).toBe(0);
    const [someone] = await mesh.sql<{ name: string }>('customers', 'select name from customers order by id limit 1');
    const part = someone!.name.slice(1, 4).toUpperCase();
    const found = await mesh.query<any>('query ($t: String) { customers(filter: {nameContains: $t}) { totalCount } }', { t: part });
    const [expected] = await mesh.sql<{ n: number }>('customers', 'select count(*) as n from customers where lower(name) like ?', [
      `%${part.toLowerCase()}%`,
    ]);
    expect(found.body.data.customers.totalCount).toBe(expected!.n);
  });

  it('oversized filters are refused: long search text, long value lists', async () => {
    const longText = await mesh.query('query ($t: String) { customers(filter: {nameContains: $t}) { totalCount } }', { t: 'x'.repeat(101) });
    expect(longText.body.errors?.[0]?.extensions).toMatchObject({ code: 'INVALID_ARGUMENT', argument: 'filter.nameContains' });
    const manyIds = await mesh.query('query ($ids: [ID!]) { orders(filter: {customerId: $ids}) { totalCount } }', {
      ids: Array.from({ length: 101 }, (_, i) => `C${i}`),
    });
    expect(manyIds.body.errors?.[0]?.extensions).toMatchObject({ code: 'INVALID_ARGUMENT', argument: 'filter.customerId' });
    const empty = await mesh.query<any>('{ orders(filter: {customerId: []}) { totalCount } }');
    expect(empty.body).toEqual({ data: { orders: { totalCount: 0 } } });
  });
});

describe('request ids', () => {
  it('a well-formed x-request-id is echoed and forwarded to the subgraphs', async () => {
    const { headers, body } = await mesh.query('{ customers(first: -1) { totalCount } }', undefined, { 'x-request-id': 'e2e-request-0001' });
    expect(headers.get('x-request-id')).toBe('e2e-request-0001');
    // The error was raised in the customers subgraph, and carries the id that subgraph received.
    expect(body.errors?.[0]?.extensions).toMatchObject({ serviceName: 'customers', requestId: 'e2e-request-0001' });
  });

  it('a malformed x-request-id is replaced, never echoed', async () => {
    for (const hostile of ['short', 'a'.repeat(200), 'evil id with spaces', '<script>alert(1)</script>']) {
      const { headers } = await mesh.query('{ categories { id } }', undefined, { 'x-request-id': hostile });
      const id = headers.get('x-request-id');
      expect(id).not.toBe(hostile);
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});

describe('other ways in', () => {
  it('a body over the limit is refused with 413 REQUEST_TOO_LARGE', async () => {
    const response = await fetch(mesh.gateway.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: `{ categories { id } } # ${'x'.repeat(1_100_000)}` }),
    });
    expect(response.status).toBe(413);
    expect(((await response.json()) as GraphQLResponse).errors?.[0]?.extensions?.code).toBe('REQUEST_TOO_LARGE');
  });

  it('an impossible date is refused by the gateway with 400, with the scalar\'s message, before any subgraph is called', async () => {
    // LocalDate and DateTime declare their specification (@specifiedBy); the gateway checks their
    // inputs as the subgraphs do, so a bad value is the caller's error and nothing is planned.
    const statements = await mesh.statementsDuring(async () => {
      const literal = await mesh.query<any>('{ customers(filter: {signedUpFrom: "2024-02-30"}) { totalCount } categories { id } }');
      expect(literal.status).toBe(400);
      expect(literal.body.data).toBeUndefined();
      expect(literal.body.errors).toHaveLength(1);
      expect(literal.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
      expect(literal.body.errors?.[0]?.message).toContain('Value is not a valid LocalDate: 2024-02-30');
      const variable = await mesh.query<any>('query ($from: DateTime) { orders(filter: {orderedFrom: $from}) { totalCount } }', {
        from: "2024-01-01'; drop table orders; --",
      });
      expect(variable.status).toBe(400);
      expect(variable.body.data).toBeUndefined();
      expect(variable.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      expect(variable.body.errors?.[0]?.message).toMatch(/DateTime/);
    });
    expect(statements).toEqual({ customers: [], products: [], finance: [] });
    // A valid date still passes on, as written, and is answered.
    const valid = await mesh.query<any>('{ customers(filter: {signedUpFrom: "2024-02-29"}) { totalCount } }');
    expect(valid.body.errors).toBeUndefined();
    const [expected] = await mesh.sql<{ n: number }>('customers', "select count(*) as n from customers where signup_date >= date '2024-02-29'");
    expect(valid.body.data.customers.totalCount).toBe(Number(expected!.n));
  });

  it('GET queries work with a preflight header and are refused without one (CSRF prevention)', async () => {
    const url = new URL(mesh.gateway.url);
    url.searchParams.set('query', '{ categories { id } }');
    const refused = await fetch(url);
    expect(refused.status).toBe(400);
    expect(await refused.text()).toMatch(/CSRF/);
    const allowed = await fetch(url, { headers: { 'apollo-require-preflight': 'true' } });
    expect(allowed.status).toBe(200);
    const post = await mesh.query('{ categories { id } }');
    expect(await allowed.json()).toEqual(post.body);
  });

  it('a subgraph asked directly for unknown or hostile entity keys answers nulls', async () => {
    const { body } = await postSubgraph<any>(
      mesh.subgraphs.customers!.url,
      'query ($r: [_Any!]!) { _entities(representations: $r) { ... on Customer { id name } } }',
      { r: [{ __typename: 'Customer', id: 'C9999999' }, { __typename: 'Customer', id: "' or 1=1 --" }] },
      { authorization: `Bearer ${tokenFor()}` },
    );
    expect(body).toEqual({ data: { _entities: [null, null] } });
  });
});
