/**
 * A corpus of hostile operations against the real mesh: each is refused before planning with its
 * code, the gateway's heap stays bounded, and a well-behaved client querying all along sees no
 * error, during and after the corpus (what they cost it in time is `npm run bench`'s to measure).
 * Refusals are audited and counted in /metrics.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postGraphQL, startTestMesh, tokenFor, type TestMesh } from './harness/mesh.js';

const ANALYST = tokenFor({ subject: 'analyst-hostile', roles: ['analyst'], regions: ['EMEA', 'AMERICAS', 'APAC'] });

/** `orders { nodes { customer { orders { nodes { customer { … } } } } } }`, `levels` pairs deep. */
function nestedOrders(levels: number): string {
  let inner = 'id';
  for (let i = 0; i < levels; i++) inner = `orders(first: 2) { nodes { id customer { id ${inner} } } }`;
  return `{ customer(id: "C-000001") { ${inner} } }`;
}

/** Category → products → category, `levels` times: anonymous callers may read all of it. */
function categoryCycle(levels: number): string {
  let inner = 'name';
  for (let i = 0; i < levels; i++) inner = `name products(first: 50) { nodes { sku category { ${inner} } } }`;
  return `{ categories { ${inner} } }`;
}

function aliasedOrders(count: number): string {
  const one = (i: number) => `o${i}: orders(first: 500) { nodes { id customer { name } lines { quantity product { name } } } }`;
  return `{ ${Array.from({ length: count }, (_, i) => one(i)).join(' ')} }`;
}

interface Hostile {
  readonly name: string;
  readonly body: string;
  readonly status: number;
  readonly code: string;
  readonly message?: RegExp;
  /** Sent without a token (the anonymous budget: cost 2000). */
  readonly anonymous?: boolean;
}

/** `{"a":{"a":…1…}}`, `levels` deep, as JSON text (no recursion builds it). */
const deepJson = (levels: number) => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;

const corpus: Hostile[] = [
  { name: 'orders and customers nested 600 deep (29 KB)', body: JSON.stringify({ query: nestedOrders(600) }), status: 400, code: 'MAX_TOKENS_EXCEEDED', message: /tokens \(more than 2000\) exceeds the limit of 2000/ },
  { name: 'orders and customers nested 40 deep', body: JSON.stringify({ query: nestedOrders(40) }), status: 400, code: 'MAX_DEPTH_EXCEEDED', message: /depth \(122\) exceeds the limit of 15/ },
  { name: 'a category cycle 13 levels deep, anonymous', body: JSON.stringify({ query: categoryCycle(13) }), status: 400, code: 'MAX_DEPTH_EXCEEDED', message: /depth \(41\) exceeds the limit of 15/ },
  { name: '60 aliases of 500 orders each, at the root', body: JSON.stringify({ query: aliasedOrders(60) }), status: 400, code: 'MAX_ROOT_FIELDS_EXCEEDED', message: /root fields \(60\) exceeds the limit of 15/ },
  {
    name: '60 aliases of a customer\'s 500 orders',
    body: JSON.stringify({ query: `{ customers(first: 500) { nodes { ${Array.from({ length: 60 }, (_, i) => `o${i}: orders(first: 500) { nodes { id } }`).join(' ')} } } }` }),
    status: 400,
    code: 'MAX_ALIASES_EXCEEDED',
    message: /aliases \(60\) exceeds the limit of 30/,
  },
  {
    name: '40 fragments',
    body: JSON.stringify({ query: `{ ...F0 } ${Array.from({ length: 40 }, (_, i) => `fragment F${i} on Query { ${i < 39 ? `...F${i + 1}` : 'categories { id }'} }`).join(' ')}` }),
    status: 400,
    code: 'MAX_FRAGMENTS_EXCEEDED',
    message: /fragments \(40\) exceeds the limit of 30/,
  },
  {
    name: 'fragments that spread each other twice (exponential expansion)',
    body: JSON.stringify({
      query: `{ categories { ...F0 } } ${Array.from({ length: 25 }, (_, i) => `fragment F${i} on Category { id ${i < 24 ? `products(first: 500) { nodes { category { ...F${i + 1} ...F${i + 1} } } }` : 'name'} }`).join(' ')}`,
    }),
    status: 400,
    code: 'MAX_DEPTH_EXCEEDED',
  },
  { name: '20 root fields', body: JSON.stringify({ query: `{ ${Array.from({ length: 20 }, (_, i) => `c${i}: categories { id }`).join(' ')} }` }), status: 400, code: 'MAX_ROOT_FIELDS_EXCEEDED', message: /root fields \(20\) exceeds the limit of 15/ },
  { name: '1,000 directives', body: JSON.stringify({ query: `{ categories { id ${'@include(if: true) '.repeat(1000)} } }` }), status: 400, code: 'MAX_TOKENS_EXCEEDED' },
  { name: '80 directives', body: JSON.stringify({ query: `{ categories { id ${'@include(if: true) '.repeat(80)} } }` }), status: 400, code: 'MAX_DIRECTIVES_EXCEEDED', message: /directives \(80\) exceeds the limit of 50/ },
  {
    name: '15 aliases of 500 orders with their lines (within the shape limits)',
    body: JSON.stringify({ query: aliasedOrders(15) }),
    status: 400,
    code: 'COST_LIMIT_EXCEEDED',
    message: /estimated cost \(135015\) exceeds the budget of 100000/,
  },
  {
    name: 'customers × their orders × lines, 500 each',
    body: JSON.stringify({ query: '{ customers(first: 500) { nodes { orders(first: 500) { nodes { lines { product { name } } } } } } }' }),
    status: 400,
    code: 'COST_LIMIT_EXCEEDED',
  },
  {
    name: 'huge page sizes in variables',
    body: JSON.stringify({ query: 'query($n: Int) { productList(limit: $n) { revenue } }', variables: { n: 100000 } }),
    status: 400,
    code: 'COST_LIMIT_EXCEEDED',
  },
  {
    name: 'a page size hidden in a variable\'s default value, anonymous',
    body: JSON.stringify({ query: 'query($a: Int = 500) { orders(first: $a) { nodes { id customer { name } lines { quantity product { name } } } } }' }),
    status: 400,
    code: 'COST_LIMIT_EXCEEDED',
    message: /estimated cost \(9001\) exceeds the budget of 2000/,
    anonymous: true,
  },
  {
    name: 'a default page size and a default skip condition, anonymous',
    body: JSON.stringify({ query: 'query($n: Int = 300, $skip: Boolean = false) { productList(limit: $n) { sku revenue @skip(if: $skip) } }' }),
    status: 400,
    code: 'COST_LIMIT_EXCEEDED',
    message: /estimated cost \(3300\) exceeds the budget of 2000/,
    anonymous: true,
  },
  {
    name: '15 aliased copies of the schema\'s introspection (2 MB of answer), anonymous',
    body: JSON.stringify({ query: `{ ${Array.from({ length: 15 }, (_, i) => `s${i}: __schema { types { name kind description fields { name description args { name type { name } } type { name kind ofType { name kind ofType { name } } } } } }`).join(' ')} }` }),
    status: 400,
    code: 'COST_LIMIT_EXCEEDED',
    anonymous: true,
  },
  {
    name: 'a variable nested 10,000 levels deep',
    body: `{"query":"query($f: OrderFilter) { orders(first: 1, filter: $f) { nodes { id } } }","variables":{"f":${deepJson(10_000)}}}`,
    status: 400,
    code: 'MAX_DEPTH_EXCEEDED',
    message: /variables nest deeper than the limit of 15/,
  },
  { name: 'a body of 2 MB', body: JSON.stringify({ query: `{ categories { id } }`, variables: { pad: 'x'.repeat(2_000_000) } }), status: 413, code: 'REQUEST_TOO_LARGE' },
  { name: '500 operations in one HTTP batch', body: JSON.stringify(Array.from({ length: 500 }, () => ({ query: '{ categories { id } }' }))), status: 400, code: 'BAD_REQUEST' },
  { name: 'a 900 KB string literal', body: JSON.stringify({ query: `{ products(filter: { nameContains: "${'a'.repeat(900_000)}" }) { nodes { sku } } }` }), status: 200, code: 'INVALID_ARGUMENT' },
];

describe('hostile operations', () => {
  let mesh: TestMesh;

  beforeAll(async () => {
    mesh = await startTestMesh();
  });

  afterAll(async () => {
    await mesh?.stop();
  });

  it('are each refused with their code, while a well-behaved client sees no error and no long stall', async () => {
    const wellBehaved = '{ customers(first: 5) { nodes { id name } } products(first: 5) { nodes { sku name } } }';
    const headers = { authorization: `Bearer ${ANALYST}`, 'apollographql-client-name': 'hostile-test' };
    let running = true;
    const latencies: number[] = [];
    const failures: unknown[] = [];
    const client = (async () => {
      while (running) {
        const started = performance.now();
        const answer = await mesh.query(wellBehaved).catch((error: unknown) => ({ status: 0, body: { errors: [String(error)] } }));
        latencies.push(performance.now() - started);
        if (answer.status !== 200 || answer.body.errors) failures.push(answer.body);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();

    global.gc?.();
    const heapBefore = process.memoryUsage().heapUsed;
    let heapPeak = heapBefore;
    const answers: { name: string; status: number; code: unknown; message: unknown; ms: number }[] = [];
    for (const hostile of corpus) {
      const started = performance.now();
      const response = await fetch(mesh.gateway.url, { method: 'POST', headers: { 'content-type': 'application/json', ...(hostile.anonymous ? {} : headers) }, body: hostile.body });
      const body = (await response.json()) as { errors?: { message: string; extensions: { code: string } }[] };
      answers.push({ name: hostile.name, status: response.status, code: body.errors?.[0]?.extensions.code, message: body.errors?.[0]?.message, ms: performance.now() - started });
      heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
    }
    // After the corpus, the well-behaved client keeps going for a while.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    running = false;
    await client;

    for (const [i, hostile] of corpus.entries()) {
      const answer = answers[i]!;
      expect({ name: answer.name, status: answer.status, code: answer.code }).toEqual({ name: hostile.name, status: hostile.status, code: hostile.code });
      if (hostile.message) expect(answer.message).toMatch(hostile.message);
    }
    // The gateway runs in this process: its heap grew by far less than one hostile answer would need.
    expect(heapPeak - heapBefore).toBeLessThan(150 * 1024 * 1024);
    expect(failures).toEqual([]);
    // It kept being answered all along (how fast is measured by `npm run bench`, never asserted here).
    expect(latencies.length).toBeGreaterThan(5);
  });

  it('counts refusals in /metrics and audits them with their code', async () => {
    const { status } = await postGraphQL(mesh.gateway.url, nestedOrders(20), undefined, { authorization: `Bearer ${ANALYST}` });
    expect(status).toBe(400);
    const metrics = await (await fetch(new URL('/metrics', mesh.gateway.url))).text();
    expect(metrics).toMatch(/mesh_operations_refused_total\{code="MAX_DEPTH_EXCEEDED",service="gateway"\} [1-9]/);
    expect(metrics).toMatch(/mesh_operations_refused_total\{code="MAX_TOKENS_EXCEEDED",service="gateway"\} [1-9]/);
    // Refusals are recorded as they are answered: poll for the last one, never sleep on it.
    const refusedRecords = async () => (await readFile(mesh.auditPath('gateway'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line)).filter((record) => record.outcome === 'refused');
    await expect.poll(async () => (await refusedRecords()).at(-1)?.refusal, { timeout: 10_000, interval: 50 }).toBe('MAX_DEPTH_EXCEEDED');
    const refused = await refusedRecords();
    expect(refused.at(-1)).toMatchObject({ kind: 'gateway-operation', subject: 'analyst-hostile', outcome: 'refused', refusal: 'MAX_DEPTH_EXCEEDED', documentHash: expect.any(String) });
    expect(refused.map((record) => record.refusal)).toEqual(expect.arrayContaining(['MAX_TOKENS_EXCEEDED', 'MAX_ALIASES_EXCEEDED', 'MAX_FRAGMENTS_EXCEEDED', 'MAX_ROOT_FIELDS_EXCEEDED', 'MAX_DIRECTIVES_EXCEEDED']));
  });

  it('admits an operation at its budget, refuses one just over, and reports the estimate and the actual rows when asked', async () => {
    // Anonymous budget 2000: every category (assumed 20) × (1 + products 1 + K × (node 1 + category 1)).
    const categories = (k: number) => `{ categories { products(first: ${k}) { nodes { sku category { name } } } } }`;
    const at = await postGraphQL<any>(mesh.gateway.url, categories(49), undefined, { 'x-include-cost': 'true', 'apollographql-client-name': 'cost-test' });
    expect(at.status).toBe(200);
    expect(at.body.errors).toBeUndefined();
    const rows = at.body.data!.categories.reduce((sum: number, c: any) => sum + 1 + c.products.nodes.length * 2, 0);
    expect(at.body.extensions).toEqual({ cost: { estimated: 2000, budget: 2000, actualRows: expect.any(Number) } });
    // Each category and each product node is a row; categories are resolved by the products subgraph.
    expect(at.body.extensions!.cost.actualRows).toBeGreaterThanOrEqual(rows - at.body.data!.categories.length);
    const over = await postGraphQL(mesh.gateway.url, categories(50));
    expect(over.status).toBe(400);
    expect(over.body.errors).toEqual([
      {
        message: "The operation's estimated cost (2040) exceeds the budget of 2000; ask for smaller pages or fewer fields.",
        extensions: { code: 'COST_LIMIT_EXCEEDED', cost: 2040, budget: 2000, requestId: expect.any(String) },
      },
    ]);
    // Not asked, or asked with anything but `true`: no cost in the answer.
    expect((await postGraphQL(mesh.gateway.url, categories(1))).body.extensions).toBeUndefined();
    for (const value of ['1', 'TRUE', 'true, true', ''.padEnd(5_000, 'x')]) {
      const asked = await postGraphQL(mesh.gateway.url, categories(1), undefined, { 'x-include-cost': value });
      expect({ value: value.slice(0, 10), status: asked.status, extensions: asked.body.extensions }).toEqual({ value: value.slice(0, 10), status: 200, extensions: undefined });
    }
    // A signed-in caller has a larger budget (100000).
    expect((await mesh.query(categories(50))).status).toBe(200);
    const metrics = await (await fetch(new URL('/metrics', mesh.gateway.url))).text();
    expect(metrics).toMatch(/mesh_estimated_cost_total\{client="ip:127.0.0.1",service="gateway"\} [1-9]/);
    expect(metrics).toMatch(/mesh_subgraph_rows_total\{subgraph="products",client="ip:127.0.0.1",service="gateway"\} [1-9]/);
  });

  it('costs the same document anew for other variables: a cheap call first lends its estimate to no expensive one', async () => {
    const query = 'query ($n: Int) { productList(limit: $n) { revenue } }';
    const asked = (n: number) => postGraphQL<any>(mesh.gateway.url, query, { n }, { 'x-include-cost': 'true' });
    for (let round = 0; round < 2; round++) {
      const cheap = await asked(10);
      expect(cheap.body.extensions?.cost?.estimated).toBeLessThan(1_000);
      const expensive = await asked(100_000);
      expect([expensive.status, expensive.body.errors?.[0]?.extensions?.code]).toEqual([400, 'COST_LIMIT_EXCEEDED']);
      expect((await asked(11)).body.extensions?.cost?.estimated).toBeGreaterThan(cheap.body.extensions!.cost.estimated);
    }
  });

  it('keeps introspection (GraphiQL, codegen) and a limit just at its bound working', async () => {
    const { getIntrospectionQuery } = await import('graphql');
    const introspection = await mesh.query(getIntrospectionQuery({ descriptions: true, specifiedByUrl: true, directiveIsRepeatable: true, schemaDescription: true, inputValueDeprecation: true }));
    expect(introspection.status).toBe(200);
    expect(introspection.body.errors).toBeUndefined();
    expect(introspection.body.data?.__schema.types.length).toBeGreaterThan(20);
    // 15 root fields pass; the 16th is refused.
    const fields = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `c${i}: categories { id }`).join(' ')} }`;
    expect((await mesh.query(fields(15))).status).toBe(200);
    expect((await mesh.query(fields(16))).body.errors?.[0]?.extensions?.code).toBe('MAX_ROOT_FIELDS_EXCEEDED');
  });

  it('answers numbers and nesting at the edge of what JSON and GraphQL allow as the caller\'s input, never as a server error', async () => {
    // A Float filter far beyond any total matches no order (it was an internal "bigint out of int64 range").
    for (const bound of ['1e20', '1.7976931348623157e308', '-1e20']) {
      const answer = await mesh.query<any>(`{ orders(first: 2, filter: { minTotal: ${bound} }) { nodes { id } } }`);
      expect({ bound, status: answer.status, errors: answer.body.errors, found: answer.body.data?.orders.nodes.length }).toEqual({ bound, status: 200, errors: undefined, found: bound === '-1e20' ? 2 : 0 });
    }
    const viaVariable = await mesh.query<any>('query($m: Float) { orders(first: 2, filter: { maxTotal: $m }) { nodes { id } } }', { m: 1e300 });
    expect([viaVariable.status, viaVariable.body.errors, viaVariable.body.data?.orders.nodes.length]).toEqual([200, undefined, 2]);
    // Deep variables by GET too, and the refusal is audited like any other.
    const url = new URL(mesh.gateway.url);
    url.searchParams.set('query', 'query($f: OrderFilter) { orders(first: 1, filter: $f) { nodes { id } } }');
    url.searchParams.set('variables', `{"f":${deepJson(800)}}`);
    const get = await fetch(url, { headers: { 'apollo-require-preflight': 'true', 'x-request-id': 'hostile-deep-get-1' } });
    expect([get.status, ((await get.json()) as any).errors[0].extensions.code]).toEqual([400, 'MAX_DEPTH_EXCEEDED']);
    await expect.poll(async () => (await readFile(mesh.auditPath('gateway'), 'utf8')).includes('"requestId":"hostile-deep-get-1"')).toBe(true);
    // The CSV export takes variables as a JSON string too: measured as what they parse to.
    const exported = await fetch(new URL('/export/csv', mesh.gateway.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ANALYST}` },
      body: JSON.stringify({ query: 'query($f: OrderFilter) { orders(filter: $f) { nodes { id } } }', variables: `{"f":${deepJson(10_000)}}` }),
    });
    expect([exported.status, ((await exported.json()) as any).errors[0].extensions.code]).toEqual([400, 'MAX_DEPTH_EXCEEDED']);
    // Within the limit, the variables reach execution (and are refused there as not fitting the type).
    const shallow = await mesh.query<any>('query($f: OrderFilter) { orders(first: 1, filter: $f) { nodes { id } } }', { f: { a: { a: 1 } } });
    expect([shallow.status, shallow.body.errors?.[0]?.extensions?.code]).toEqual([400, 'BAD_USER_INPUT']);
  });

  it('refuses the same shapes on GET and in CSV exports', async () => {
    const url = new URL(mesh.gateway.url);
    url.searchParams.set('query', categoryCycle(8));
    const get = await fetch(url, { headers: { 'apollo-require-preflight': 'true' } });
    expect(get.status).toBe(400);
    expect(((await get.json()) as any).errors[0].extensions.code).toBe('MAX_DEPTH_EXCEEDED');
    const exported = await fetch(new URL('/export/csv', mesh.gateway.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ANALYST}` },
      body: JSON.stringify({ query: `{ orders(first: 10) { nodes { ${'id '.repeat(2100)} } } }` }),
    });
    expect(exported.status).toBe(400);
    expect(((await exported.json()) as any).errors[0].extensions.code).toBe('MAX_TOKENS_EXCEEDED');
  });
});
