/**
 * The analysts' IDE, in a real browser (Debian's Chromium, driven by playwright-core) with every
 * address but loopback unreachable: it loads from the gateway alone, signs in, runs a cross-domain
 * query and shows the answer. A screenshot is kept in test/artifacts/.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Browser } from 'playwright-core';
import { colourOf, copyFrom, EDITORS, launchChromium, luminance, pasteInto, shownInEditors } from './harness/browser.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identityConfigFromEnv } from '../policy/identity-config.js';
import { signChangeEvent } from '../policy/events/change-event.js';
import { openFileFeed } from '../policy/events/file-feed.js';
import { DEV_SIGNING_KEY } from '../policy/subgraph-signature.js';
import { finance } from '../subgraphs/finance/index.js';
import type { PipelineRunner } from '../subgraphs/kit/pipelines/runner.js';
import { deliverIncrement } from '../subgraphs/synthetic-sources/live.js';
import { postGraphQL, startTestGateway, startTestMesh, testGatewayConfig, tokenFor, type TestMesh } from './harness/mesh.js';
import { serveTestPipelines } from './harness/pipelines.js';

// What the page functions below touch in the browser (they run there, not in Node).
declare const document: { querySelector(selector: string): ({ textContent: string | null } & Record<string, any>) | null };

const artifacts = resolve(import.meta.dirname, 'artifacts');
let mesh: TestMesh;
let browser: Browser;
let base: string;

let pipelines: PipelineRunner | undefined;

beforeAll(async () => {
  mesh = await startTestMesh();
  base = new URL('/', mesh.gateway.url).toString();
  browser = await launchChromium();
  // The finance subgraph runs its pipelines (the runner in the process), and one run merges a live delivery, before the catalog is first read.
  pipelines = await serveTestPipelines(mesh, finance);
  await deliverIncrement({ rawDir: join(mesh.dataDir, 'raw'), orders: 12 });
  await pipelines.run('finance.orders');
  const merged = async () => /"load":"swapped"/.test(await readFile(join(mesh.dataDir, 'pipelines', 'finance.jsonl'), 'utf8').catch(() => ''));
  for (const deadline = Date.now() + 30_000; !(await merged()); ) {
    if (Date.now() > deadline) throw new Error('the pipeline run did not merge the delivery within 30 s');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
});

afterAll(async () => {
  await pipelines?.stop();
  await browser?.close();
  await mesh?.stop();
});

const CROSS_DOMAIN = `query CustomerWithOrders {
  customers(first: 5, orderBy: { field: ID }) {
    nodes { id country lifetimeValue orders(first: 1) { nodes { id total lines { product { name } } } } }
  }
}`;

describe('the IDE in a browser', () => {
  it('loads with no address but the gateway\'s, signs in, runs a cross-domain query and shows the answer', async () => {
    await mkdir(artifacts, { recursive: true });
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 }, permissions: ['clipboard-read', 'clipboard-write'] });
    const elsewhere: string[] = [];
    const problems: string[] = [];
    await page.route('**/*', (route) => {
      const { hostname } = new URL(route.request().url());
      if (hostname === '127.0.0.1' || hostname === 'localhost') return route.continue();
      elsewhere.push(route.request().url());
      return route.abort();
    });
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    page.on('pageerror', (error) => problems.push(error.message));
    const workers: string[] = [];
    page.on('worker', (worker) => workers.push(new URL(worker.url()).pathname));
    await page.goto(base);
    expect(page.url()).toBe(`${base}ide/`); // `/` redirects to the IDE

    // Signed out: a sign-in prompt, not an editor failing to read a schema it may not read.
    await expect.poll(() => page.locator('text=Sign in to explore the data mesh').count()).toBe(1);
    expect(await page.locator('.graphiql-container').count()).toBe(0);
    expect(problems.join('\n')).not.toMatch(/introspection/i);
    await page.screenshot({ path: join(artifacts, 'ide-signed-out.png') });

    // The development sign-in offers every region (several at once) and the purposes.
    await page.selectOption('select[aria-label="role"]', 'analyst');
    await page.check('input[aria-label="region EMEA"]');
    expect(await page.locator('select[aria-label="purpose"] option').allTextContents()).toEqual(['none', 'customer-support', 'fraud-prevention', 'legal-obligation']);
    // The signed-out page raised no error of its own (listened for from before the first load).
    expect(problems).toEqual([]);
    await page.click('button:has-text("Sign in")');
    // Who is signed in is said, with the roles and regions the token carries.
    await expect.poll(() => page.locator('[aria-label="signed in"]').textContent()).toMatch(/Signed in as ide-analyst · roles analyst · regions AMERICAS, EMEA/);
    await page.waitForSelector('.graphiql-container');
    // One tab per data product, each with an example operation.
    await expect.poll(() => page.locator('.graphiql-tab').count()).toBe(5);
    // The token is never shown: not in the headers editor, not in the page's text; requests carry it.
    const token = await page.evaluate(() => JSON.parse((globalThis as any).sessionStorage.getItem('datamesh:session')).token as string);
    expect(token).toMatch(/^ey[\w-]+\.[\w-]+\.[\w-]+$/);
    expect((await shownInEditors(page)).filter((value) => value.includes(token.split('.')[2]!))).toEqual([]);
    expect(await page.evaluate(() => (document as any).body.innerText as string)).not.toContain(token.split('.')[2]!);
    // When it was signed in, with its date.
    expect(await page.locator('[aria-label="session"]').textContent()).toMatch(/^since .*\d{4}.*\d{1,2}:\d{2}/);
    const sent: string[] = [];
    page.on('request', (request) => {
      if (request.url().endsWith('/graphql')) sent.push(request.headers().authorization ?? '');
    });

    await pasteInto(page, EDITORS.query, CROSS_DOMAIN);
    // GraphiQL reads the operation name from the edited text (debounced): run once the tab says so.
    await page.waitForSelector('.graphiql-tab-active >> text=CustomerWithOrders');
    await page.click('.graphiql-execute-button');
    await page.waitForFunction(() => (document.querySelector('.result-window')?.textContent ?? '').includes('"lifetimeValue"'), undefined, { timeout: 15_000 });
    const result = JSON.parse(await copyFrom(page, EDITORS.response));
    expect(sent.at(-1)).toBe(`Bearer ${token}`);
    // The editor's language services ran in their workers, loaded from the gateway.
    expect(workers).toEqual(expect.arrayContaining(['/ide/editor.worker.js', '/ide/graphql.worker.js']));

    // The same query and token, sent directly: the IDE showed exactly the gateway's answer.
    const direct = await postGraphQL(mesh.gateway.url, CROSS_DOMAIN, undefined, { authorization: `Bearer ${token}` });
    expect(direct.body.errors).toBeUndefined();
    expect(result).toEqual(direct.body);
    const withOrders = result.data.customers.nodes.find((customer: any) => customer.orders.nodes.length > 0);
    expect(withOrders.orders.nodes[0].lines[0].product.name).toEqual(expect.any(String));

    await page.screenshot({ path: join(artifacts, 'ide.png') });

    // Signing out returns to the prompt; support with a declared purpose then reads a RESTRICTED field.
    await page.click('button:has-text("Sign out")');
    await expect.poll(() => page.locator('text=Sign in to explore the data mesh').count()).toBe(1);
    await page.selectOption('select[aria-label="role"]', 'support');
    await page.check('input[aria-label="region EMEA"]');
    await page.selectOption('select[aria-label="purpose"]', 'customer-support');
    await page.click('button:has-text("Sign in")');
    await expect.poll(() => page.locator('[aria-label="signed in"]').textContent()).toMatch(/roles support · regions AMERICAS, EMEA · purpose customer-support/);
    const supportToken = await page.evaluate(() => JSON.parse((globalThis as any).sessionStorage.getItem('datamesh:session')).token as string);
    const restricted = await postGraphQL<any>(mesh.gateway.url, '{ customers(first: 1) { nodes { birthDate } } }', undefined, { authorization: `Bearer ${supportToken}` });
    expect(restricted.body.errors).toBeUndefined();
    expect(restricted.body.data.customers.nodes[0].birthDate).toMatch(/^\d{4}-\d{2}-\d{2}$/);

    expect(elsewhere).toEqual([]);
    expect(problems).toEqual([]);
    await page.close();
  });
});

describe('a subscription in the IDE', () => {
  it('runs over WebSocket as the signed-in analyst and shows each change as the gateway resolves it for them', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 }, permissions: ['clipboard-read', 'clipboard-write'] });
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    const sockets: string[] = [];
    page.on('websocket', (socket) => sockets.push(new URL(socket.url()).pathname));
    await page.goto(`${base}ide/`);
    await page.selectOption('select[aria-label="role"]', 'analyst');
    await page.check('input[aria-label="region EMEA"]');
    await page.click('button:has-text("Sign in")');
    await page.waitForSelector('.graphiql-container');
    const token = await page.evaluate(() => JSON.parse((globalThis as any).sessionStorage.getItem('datamesh:session')).token as string);
    const orders = (await postGraphQL<any>(mesh.gateway.url, '{ orderList(limit: 50) { id } }', undefined, { authorization: `Bearer ${token}` })).body.data.orderList as { id: string }[];
    const others = (await postGraphQL<any>(mesh.gateway.url, '{ orderList(limit: 400) { id } }', undefined, { authorization: `Bearer ${tokenFor()}` })).body.data.orderList as { id: string }[];
    const mine = orders[0]!.id;
    // An order of a region the analyst may not read (AMERICAS and EMEA were ticked at sign-in: APAC).
    const hidden = others.find((order) => !orders.some((o) => o.id === order.id))?.id;
    await pasteInto(page, EDITORS.query, 'subscription OrderFeed { orderChanged { operation key order { id total customer { email } } } }');
    await page.waitForSelector('.graphiql-tab-active >> text=OrderFeed');
    await page.click('.graphiql-execute-button');
    await expect.poll(() => sockets, { timeout: 10_000 }).toEqual(['/graphql']);
    // The gateway counts the subscription once it is open: then the change is published.
    const open = async () => /mesh_subscriptions\{transport="ws"[^}]*\} [1-9]/.test(await (await fetch(new URL('/metrics', base))).text());
    await expect.poll(open, { timeout: 10_000 }).toBe(true);
    const feed = openFileFeed({ dir: join(mesh.dataDir, 'events'), signingKey: DEV_SIGNING_KEY });
    await feed.declare('finance.orders');
    await feed.publish(signChangeEvent({ id: 'finance.orders@ide-1', key: DEV_SIGNING_KEY, change: { product: 'finance.orders', operation: 'upsert', keys: [...(hidden ? [hidden] : []), mine], version: new Date().toISOString(), changedFields: ['status'] } }));
    await feed.close();
    await page.waitForFunction((key) => (document.querySelector('.result-window')?.textContent ?? '').includes(key), mine, { timeout: 15_000 });
    const shown = JSON.parse(await copyFrom(page, EDITORS.response));
    const direct = await postGraphQL<any>(mesh.gateway.url, `{ order(id: "${mine}") { id total customer { email } } }`, undefined, { authorization: `Bearer ${token}` });
    expect(shown.data.orderChanged).toEqual({ operation: 'UPSERT', key: mine, order: direct.body.data.order });
    // The other region's order never reached the page.
    if (hidden) expect(await page.evaluate(() => (document as any).body.innerText as string)).not.toContain(hidden);
    expect(problems).toEqual([]);
    await page.close();
  });
});

describe('the IDE page', () => {
  it("takes the editor's cancelled work (Monaco's `Canceled`, on sign-out) as expected, and any other rejection as the error it is", async () => {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(base);
    await expect.poll(() => page.locator('text=Sign in to explore the data mesh').count()).toBe(1);
    await page.evaluate(() => {
      const cancelled = new Error('Canceled');
      cancelled.name = 'Canceled';
      void Promise.reject(cancelled);
      void Promise.reject(new Error('a real failure'));
    });
    await expect.poll(() => problems).toEqual(['a real failure']);
    await page.close();
  });
});

describe('the catalog view in dark mode', () => {
  it('takes GraphiQL\'s dark palette, as the system asks', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 }, colorScheme: 'dark' });
    await page.goto(base);
    await page.selectOption('select[aria-label="role"]', 'analyst');
    await page.check('input[aria-label="region EMEA"]');
    await page.click('button:has-text("Sign in")');
    await page.waitForSelector('.graphiql-container');
    await page.click('button[role="tab"]:has-text("Catalog")');
    await expect.poll(() => page.locator('[aria-label="result count"]').textContent()).toBe('5 data products');
    const colours = { page: await colourOf(page, '#ide', 'backgroundColor'), text: await colourOf(page, '.datamesh-catalog', 'color'), card: await colourOf(page, '.datamesh-result', 'backgroundColor') };
    expect(luminance(colours.page)).toBeLessThan(0.25);
    expect(luminance(colours.card)).toBeLessThan(0.25);
    expect(luminance(colours.text)).toBeGreaterThan(0.6);
    await page.screenshot({ path: join(artifacts, 'ide-catalog-dark.png') });
    await page.close();
  });
});

describe('the GraphQL endpoint opened in a browser', () => {
  it('leads to the IDE (it showed a CSRF error in JSON), and leaves every GraphQL request as it was', async () => {
    const page = await browser.newPage();
    await page.goto(new URL('/graphql', base).toString());
    expect(page.url()).toBe(`${base}ide/`);
    await expect.poll(() => page.locator('text=Sign in to explore the data mesh').count()).toBe(1);
    await page.close();
    // A GET naming an operation is GraphQL, whatever it accepts (here without the preflight header: the CSRF refusal stands).
    const url = new URL(mesh.gateway.url);
    url.searchParams.set('query', '{ __typename }');
    const named = await fetch(url, { headers: { accept: 'text/html' }, redirect: 'manual' });
    expect([named.status, await named.text()]).toEqual([400, expect.stringMatching(/Cross-Site Request Forgery/)]);
    // A client asking for JSON, with no operation, gets GraphQL's answer, not a redirect.
    const json = await fetch(mesh.gateway.url, { headers: { accept: 'application/json' }, redirect: 'manual' });
    expect(json.status).toBe(400);
    expect(json.headers.get('content-type')).toMatch(/json/);
  });
});

describe('the catalog view in a browser', () => {
  it('searches, filters by a facet, opens a product with the policy for the signed-in analyst, and runs its example in GraphiQL', async () => {
    await mkdir(artifacts, { recursive: true });
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 }, permissions: ['clipboard-read', 'clipboard-write'] });
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(base);
    await page.selectOption('select[aria-label="role"]', 'analyst');
    await page.check('input[aria-label="region EMEA"]');
    await page.click('button:has-text("Sign in")');
    await page.waitForSelector('.graphiql-container');
    const token = await page.evaluate(() => JSON.parse((globalThis as any).sessionStorage.getItem('datamesh:session')).token as string);
    const asAnalyst = { authorization: `Bearer ${token}` };
    const idsFor = async (filter: Record<string, string>) => {
      const { body } = await postGraphQL<any>(mesh.gateway.url, 'query ($filter: DataProductFilter) { dataProducts(filter: $filter, first: 100) { nodes { id } } }', { filter }, asAnalyst);
      expect(body.errors).toBeUndefined();
      return body.data.dataProducts.nodes.map((node: any) => node.id as string);
    };
    const shown = () => page.locator('[data-product]').evaluateAll((buttons) => buttons.map((button) => button.getAttribute('data-product')));

    // The catalog beside GraphiQL: every product, with facets.
    await page.click('button[role="tab"]:has-text("Catalog")');
    await expect.poll(() => page.locator('[aria-label="result count"]').textContent()).toBe('5 data products');
    expect(await shown()).toEqual(await idsFor({}));
    await page.screenshot({ path: join(artifacts, 'ide-catalog.png') });

    // Search: what the gateway answers for the same words and token.
    await page.fill('input[aria-label="search data products"]', 'invoice');
    await page.click('button:has-text("Search")');
    const searched = await idsFor({ text: 'invoice' });
    expect(searched.length).toBeGreaterThan(0);
    expect(searched.length).toBeLessThan(5);
    await expect.poll(shown).toEqual(searched);

    // A facet narrows the search, and its count is what is listed.
    await page.fill('input[aria-label="search data products"]', '');
    await page.click('button:has-text("Search")');
    await expect.poll(() => page.locator('[aria-label="result count"]').textContent()).toBe('5 data products');
    const financeFacet = page.locator('button[aria-label="Domain finance"]');
    const facetCount = Number(/\((\d+)\)/.exec((await financeFacet.textContent()) ?? '')?.[1]);
    await financeFacet.click();
    await expect.poll(shown).toEqual(await idsFor({ domain: 'finance' }));
    expect((await shown()).length).toBe(facetCount);
    await financeFacet.click(); // off again
    await expect.poll(() => page.locator('[aria-label="result count"]').textContent()).toBe('5 data products');

    // A product: description, owners, SLA, and each field with what this analyst gets of it.
    await page.click('[data-product="customers.customers"]');
    await page.waitForSelector('[aria-label="data product customers.customers"]');
    expect(await page.locator('tr[data-field="email"]').getAttribute('data-access')).toBe('MASKED');
    expect(await page.locator('tr[data-field="birthDate"]').getAttribute('data-access')).toBe('DENIED');
    expect(await page.locator('tr[data-field="country"]').getAttribute('data-access')).toBe('READABLE');
    expect(await page.locator('[aria-label="data product customers.customers"]').textContent()).toMatch(/Service level.*latency/s);
    // How fresh it is, and its data quality checks, with their outcomes.
    expect(await page.locator('[aria-label="freshness"]').getAttribute('data-status')).toBe('FRESH');
    expect(await page.locator('[aria-label="quality status"]').getAttribute('data-status')).toBe('PASS');
    expect(await page.locator('tr[data-check="id_unique"]').getAttribute('data-outcome')).toBe('pass');
    expect(await page.locator('tr[data-check="email_format"] td').nth(1).textContent()).toBe('conformity');
    // Each column's profile, for the fields this analyst may read as they are; none for a masked one.
    expect(await page.locator('tr[data-field="country"] td[data-profile]').textContent()).toMatch(/^\d+ distinct; 0% null; 2 to 2 characters$/);
    expect(await page.locator('tr[data-field="email"] td[data-profile]').getAttribute('data-profile')).toBe('none');
    // Its domain runs no pipeline on this mesh; finance's does, and its page lists the run that merged a delivery.
    expect(await page.locator('[aria-label="pipeline"]').textContent()).toBe('Its domain runs no pipelines here.');
    await page.screenshot({ path: join(artifacts, 'ide-catalog-product.png'), fullPage: true });
    await page.click('button:has-text("← All products")');
    await page.click('[data-product="finance.orders"]');
    await page.waitForSelector('[aria-label="data product finance.orders"]');
    expect(await page.locator('[aria-label="pipeline"]').textContent()).toMatch(/^runs every 1 d · next .+ · next run within its SLA$/);
    const merged = page.locator('tr[data-load="swapped"]');
    expect(await merged.getAttribute('data-outcome')).toBe('succeeded');
    expect(await merged.locator('td[data-cell="load"]').textContent()).toMatch(/^swapped: \+\d+ ~\d+ -\d+ to \d{8}T\d{6}Z-000001 \(\d+ rows\)$/);
    expect(await merged.locator('td').nth(1).textContent()).toBe('manual');
    await page.screenshot({ path: join(artifacts, 'ide-catalog-pipeline.png'), fullPage: true });
    await page.click('button:has-text("← All products")');
    await page.click('[data-product="customers.customers"]');
    await page.waitForSelector('[aria-label="data product customers.customers"]');

    // Its example, opened in GraphiQL with one click, runs as the analyst.
    await page.click('button:has-text("Open example in GraphiQL")');
    await page.waitForSelector('.graphiql-tab-active >> text=CustomersExample');
    await page.click('.graphiql-execute-button');
    await page.waitForFunction(() => (document.querySelector('.result-window')?.textContent ?? '').includes('"totalCount"'), undefined, { timeout: 15_000 });
    const result = JSON.parse(await copyFrom(page, EDITORS.response));
    // The example leaves out what the analyst may not read (birthDate), so it runs without an error.
    expect(result.errors).toBeUndefined();
    expect(result.data.customers.totalCount).toBeGreaterThan(0);
    expect(result.data.customers.nodes[0]).not.toHaveProperty('birthDate');
    // Masked for the analyst, as the catalog said: a pseudonym, never the address.
    expect(result.data.customers.nodes[0].email).not.toContain('@');
    await page.screenshot({ path: join(artifacts, 'ide-catalog-example.png') });
    expect(problems).toEqual([]);
    await page.close();
  });
});

describe('the IDE\'s server side', () => {
  it('serves the page with a same-origin Content-Security-Policy, and a bundle built locally', async () => {
    const page = await fetch(new URL('/ide/', base));
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'self'.*connect-src 'self'/);
    const html = await page.text();
    expect(html).not.toMatch(/https?:\/\//);
    // The page's script and the editor's workers (GraphiQL 5 edits in Monaco), from this origin.
    for (const file of ['main.js', 'editor.worker.js', 'json.worker.js', 'graphql.worker.js']) {
      const script = await fetch(new URL(`/ide/${file}`, base));
      expect(script.status, file).toBe(200);
      expect(script.headers.get('content-type'), file).toMatch(/javascript/);
    }
    for (const path of ['/ide/..%2f..%2fpackage.json', '/ide/../package.json', '/ide/main.js.map', '/ide/build.json']) {
      expect((await fetch(new URL(path, base))).status, path).toBe(404);
    }
  });

  it('documents each field\'s classification, access and masking in the schema', async () => {
    const { body } = await postGraphQL<{ __type: { fields: { name: string; description: string }[] } }>(
      mesh.gateway.url,
      '{ __type(name: "Customer") { fields { name description } } }',
      undefined,
      { authorization: `Bearer ${tokenFor({ subject: 'a', roles: ['analyst'] })}` },
    );
    const description = (name: string) => body.data!.__type.fields.find((f) => f.name === name)!.description;
    expect(description('email')).toBe(
      'Contact email address.\n\nPolicy: CONFIDENTIAL (pii), readable by roles analyst, finance, support, steward, admin. Masked (HASH) except for steward, support, admin. Rule: CONFIDENTIAL default.',
    );
    expect(description('birthDate')).toMatch(/Policy: RESTRICTED \(pii\), readable by roles steward, support, admin; a declared purpose among customer-support, fraud-prevention, legal-obligation\./);
    expect(description('signupDate')).toMatch(/Rolling out \(shadow, not yet applied\): DATE_YEAR mask\./);
  });

  it('tells anyone its configuration and nothing of the schema; each caller\'s examples come from the catalog, without the fields denied to it', async () => {
    const text = await (await fetch(new URL('/ide/config.json', base))).text();
    const config = JSON.parse(text) as Record<string, unknown>;
    expect(Object.keys(config).sort()).toEqual(['devSignIn', 'endpoint', 'oidc']);
    expect(config.oidc).toBeNull(); // no identity provider configured here
    // Positive control: these names are in the served schema (a steward's examples hold them).
    const steward = { authorization: `Bearer ${tokenFor()}` };
    const examplesOf = async (headers: Record<string, string>) => {
      const { body } = await postGraphQL<any>(mesh.gateway.url, '{ dataProducts(first: 100) { nodes { name exampleOperation } } }', undefined, headers);
      expect(body.errors).toBeUndefined();
      return body.data.dataProducts.nodes as { name: string; exampleOperation: string }[];
    };
    const stewards = await examplesOf(steward);
    expect(stewards.map((e) => e.name).sort()).toEqual(['categories', 'customers', 'invoices', 'orders', 'products']);
    const everything = stewards.map((e) => e.exampleOperation).join('\n');
    for (const name of ['birthDate', 'unitCost', 'email']) {
      expect(everything).toContain(name);
      expect(text).not.toContain(name);
    }
    for (const example of stewards) {
      const { body } = await postGraphQL(mesh.gateway.url, example.exampleOperation, undefined, steward);
      expect(body.errors, example.name).toBeUndefined();
    }
    // An analyst's examples select no field denied to it (their comments say which were left out, as
    // the catalog shows a signed-in caller every field with its policy); an anonymous caller gets none at all.
    const analysts = (await examplesOf({ authorization: `Bearer ${tokenFor({ subject: 'a', roles: ['analyst'], regions: ['EMEA'] })}` })).map((e) => e.exampleOperation).join('\n');
    const selected = analysts.split('\n').filter((line) => !line.startsWith('#')).join('\n');
    expect(selected).toContain('customers');
    expect(selected).not.toContain('birthDate');
    const anonymous = await postGraphQL<any>(mesh.gateway.url, '{ dataProducts(first: 100) { nodes { exampleOperation } } }');
    expect(anonymous.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(config.devSignIn).toEqual({
      roles: ['analyst', 'finance', 'support', 'steward', 'admin'],
      regions: ['AMERICAS', 'EMEA', 'APAC'],
      purposes: ['customer-support', 'fraud-prevention', 'legal-obligation'],
    });
  });

  it('mints development tokens only for known roles, regions and purposes, and only while the development issuer is trusted', async () => {
    const signIn = (body: unknown) =>
      fetch(new URL('/ide/dev-token', base), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    for (const bad of [{ role: 'root', regions: ['EMEA'] }, { role: 'analyst', regions: ['MARS'] }, { role: 'analyst', regions: 'EMEA' }, { role: 'steward', regions: [], purpose: 'curiosity' }, {}]) {
      const response = await signIn(bad);
      expect(response.status, JSON.stringify(bad)).toBe(400);
      expect(((await response.json()) as any).errors[0].extensions.code).toBe('BAD_REQUEST');
    }
    const ok = (await (await signIn({ role: 'support', regions: [], purpose: 'customer-support' })).json()) as { token: string };
    const payload = JSON.parse(Buffer.from(ok.token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    expect(payload).toMatchObject({ roles: ['support'], purpose: 'customer-support', sub: 'ide-support' });

    // A gateway that trusts another issuer only: no sign-in, no token.
    const production = await startTestGateway(
      testGatewayConfig({
        dataDir: mesh.dataDir,
        name: 'no-dev',
        supergraph: { kind: 'registry', registryUrl: mesh.registryUrl, pollMs: 100 },
        overrides: {
          identity: identityConfigFromEnv({
            AUTH_ISSUERS: JSON.stringify([{ issuer: 'https://idp.example', audience: 'data-mesh', algorithms: ['RS256'], jwksUri: 'http://127.0.0.1:9/jwks.json' }]),
          }),
        },
      }),
    );
    try {
      await production.ready;
      const root = new URL('/', production.url);
      expect((await fetch(new URL('/ide/dev-token', root), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"role":"admin","regions":[]}' })).status).toBe(404);
      expect(((await (await fetch(new URL('/ide/config.json', root))).json()) as { devSignIn: unknown }).devSignIn).toBeNull();
    } finally {
      await production.stop();
    }
  });
});
