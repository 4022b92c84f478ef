/**
 * Typed clients for apps: GraphQL Code Generator runs from the composed API schema file (as on a
 * clean checkout), the example app compiles against what it generated and a misspelling does not;
 * the app registers its persisted-documents manifest and then runs by hash only, while analysts keep
 * ad-hoc queries; the manifest protects the fields it uses from breaking publishes.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { generate } from '@graphql-codegen/cli';
import { parse, print, visit } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runRegistryCli } from '../gateway/registry/cli.js';
import { fetchSubgraphSdl } from '../gateway/supergraph/supergraph.js';
import { signChangeEvent } from '../policy/events/change-event.js';
import { openFileFeed } from '../policy/events/file-feed.js';
import { DEV_SIGNING_KEY } from '../policy/subgraph-signature.js';
import { postGraphQL, startTestMesh, tokenFor, type TestMesh } from './harness/mesh.js';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '..');
const app = join(root, 'test', 'example-app');
const manifestPath = join(app, 'src', 'gql', 'persisted-documents.json');
let mesh: TestMesh;
let scratch: string;

beforeAll(async () => {
  mesh = await startTestMesh();
  scratch = await mkdtemp(join(tmpdir(), 'typed-clients-'));
  // What a clean checkout has: no generated code until codegen runs.
  await rm(join(app, 'src', 'gql'), { recursive: true, force: true });
});

afterAll(async () => {
  await mesh?.stop();
  await rm(scratch, { recursive: true, force: true });
});

/** `tsc --noEmit` on a project; resolves to its exit code and output. */
async function typeCheck(project: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout } = await run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '-p', project]);
    return { code: 0, output: stdout };
  } catch (error) {
    const failed = error as { code: number; stdout: string };
    return { code: failed.code, output: failed.stdout };
  }
}

// The app's service account: a steward (every row), with a token issued to the app (`azp`).
const appToken = tokenFor({ subject: 'example-app-service', roles: ['steward'], purpose: 'customer-support', client: 'example-app' });
const analystToken = tokenFor({ subject: 'ana', roles: ['analyst'], regions: ['EMEA', 'AMERICAS', 'APAC'] });

describe('typed clients', () => {
  it('codegen runs from the API schema file, and the example app compiles against what it generated', async () => {
    // `npm run codegen` with no option: the example app, from the schema file the environment names.
    await run('npm', ['run', '-s', 'codegen'], { cwd: root, env: { ...process.env, API_SCHEMA_PATH: mesh.apiSchemaPath } });
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as Record<string, string>;
    expect(Object.values(manifest).map((document) => document.split(/[ (]/)[1])).toEqual(['CustomerOverview', 'TopProducts', 'OrderUpdates']);
    expect(await typeCheck(join(app, 'tsconfig.json'))).toEqual({ code: 0, output: '' });
  });

  it('generates a client for any app\'s folder of documents: by its layout, by its codegen.json, or as the command line names it', async () => {
    const codegen = (...args: string[]) =>
      run('npm', ['run', '-s', 'codegen', '--', '--schema', mesh.apiSchemaPath, ...args], { cwd: root }).then(
        ({ stdout }) => ({ code: 0, output: stdout }),
        (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, output: `${error.stdout}${error.stderr}` }),
      );
    const operation = 'query Shelf { categories { id name products(first: 2) { nodes { sku listPrice } } } }';
    const manifestOf = async (dir: string) => Object.values(JSON.parse(await readFile(join(dir, 'persisted-documents.json'), 'utf8')) as Record<string, string>);
    // An app with the usual layout: operations under src/, the client in src/gql/.
    const plain = join(scratch, 'plain-app');
    await mkdir(join(plain, 'src'), { recursive: true });
    await writeFile(join(plain, 'src', 'shelf.ts'), `import { graphql } from './gql/index.js';\nexport const Shelf = graphql(\`${operation}\`);\n`);
    expect((await codegen('--app', plain)).code).toBe(0);
    expect((await manifestOf(join(plain, 'src', 'gql'))).map((text) => text.split(/[ (]/)[1])).toEqual(['Shelf']);
    expect(await readFile(join(plain, 'src', 'gql', 'graphql.ts'), 'utf8')).toMatch(/export type ShelfQuery = /);
    // An app that says where its .graphql files are and where the client goes.
    const configured = join(scratch, 'configured-app');
    await mkdir(join(configured, 'operations'), { recursive: true });
    await writeFile(join(configured, 'operations', 'shelf.graphql'), operation);
    await writeFile(join(configured, 'codegen.json'), JSON.stringify({ documents: ['operations/**/*.graphql'], out: 'lib/client' }));
    expect((await codegen('--app', configured)).code).toBe(0);
    expect(await manifestOf(join(configured, 'lib', 'client'))).toHaveLength(1);
    // Or named on the command line.
    expect((await codegen('--documents', join(configured, 'operations', '*.graphql'), '--out', join(scratch, 'named-out'))).code).toBe(0);
    expect(await manifestOf(join(scratch, 'named-out'))).toEqual(await manifestOf(join(configured, 'lib', 'client')));
    // An operation that does not fit the schema: exit 1, naming the field; nothing to generate from, or no schema: exit 2.
    await writeFile(join(configured, 'operations', 'typo.graphql'), 'query Typo { categories { nmae } }');
    expect(await codegen('--app', configured)).toEqual({ code: 1, output: expect.stringMatching(/Cannot query field "nmae" on type "Category"/) });
    expect(await codegen('--documents', join(scratch, 'nowhere', '*.ts'), '--out', join(scratch, 'nowhere-out'))).toEqual({ code: 2, output: expect.stringMatching(/No operations found in/) });
    expect(await codegen('--app', plain, '--schema', join(scratch, 'missing.graphql'))).toEqual({ code: 2, output: expect.stringMatching(/No API schema at .*missing\.graphql/) });
    expect(await codegen('--documents', 'x')).toEqual({ code: 2, output: expect.stringMatching(/--documents and --out go together/) });
  });

  it('a misspelled field fails: in app code, the type check; in an operation, codegen itself', async () => {
    await writeFile(
      join(scratch, 'typo.ts'),
      `import { execute } from '${join(app, 'src', 'client.js')}';
       import { CustomerOverview } from '${join(app, 'src', 'operations.js')}';
       const answer = await execute({ url: 'http://gateway/graphql', token: 't' }, CustomerOverview, { id: 'C0000001' });
       export const name: string | null | undefined = answer.data?.customer?.nmae;`,
    );
    await writeFile(
      join(scratch, 'tsconfig.json'),
      JSON.stringify({ extends: join(app, 'tsconfig.json'), include: [join(app, 'src'), join(scratch, 'typo.ts')] }),
    );
    const typo = await typeCheck(join(scratch, 'tsconfig.json'));
    expect(typo.code).not.toBe(0);
    expect(typo.output).toMatch(/typo\.ts\(\d+,\d+\): error TS2339: Property 'nmae' does not exist on type/);

    await writeFile(join(scratch, 'bad-operation.ts'), 'export const q = /* GraphQL */ `query Bad { customer(id: "1") { nmae } }`;');
    await expect(
      generate(
        {
          schema: mesh.apiSchemaPath,
          documents: [join(scratch, 'bad-operation.ts')],
          generates: { [join(scratch, 'gql') + '/']: { preset: 'client' } },
          silent: true,
        },
        false,
      ),
    ).rejects.toThrow(/Cannot query field "nmae" on type "Customer"/);
  });
});

describe('trusted documents', () => {
  const registry = (...args: string[]) => runRegistryCli([...args, '--registry', mesh.registryUrl]);
  const post = (body: Record<string, unknown>, token: string, headers: Record<string, string> = {}) =>
    fetch(mesh.gateway.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, ...headers },
      body: JSON.stringify(body),
    }).then(async (response) => ({ status: response.status, body: (await response.json()) as any }));
  let manifest: Record<string, string>;
  let overviewId: string;

  beforeAll(async () => {
    manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as Record<string, string>;
    overviewId = Object.keys(manifest).find((id) => manifest[id]!.startsWith('query CustomerOverview'))!;
    const registered = await registry('clients', 'register', 'example-app', '--manifest', manifestPath);
    expect(registered).toEqual({
      exitCode: 0,
      output: 'Registered 3 trusted document(s) for example-app: tokens issued to example-app may now send only these; checks protect the coordinates they use.',
    });
    // The gateway rereads registered documents every 500 ms here: wait until it holds the app to them.
    for (const deadline = Date.now() + 10_000; (await post({ query: '{ products(first: 1) { nodes { sku } } }' }, appToken)).status !== 400; ) {
      if (Date.now() > deadline) throw new Error('the gateway did not pick up the registered manifest');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });

  it('the example app runs through its typed client, by hash only', async () => {
    const [customer] = await mesh.sql<{ id: string; country: string; segment: string }>('customers', 'select id, country, segment from customers order by id limit 1');
    const orders = (await mesh.sql<{ orders: number }>('finance', 'select count(*)::int as orders from orders where customer_id = ?', [customer!.id]))[0]!.orders;
    const main = join(app, 'src', 'main.ts');
    const { overview } = (await import(main)) as { overview: (options: { url: string; token: string }, id: string) => Promise<string[]> };
    const lines = await overview({ url: mesh.gateway.url, token: appToken }, customer!.id);
    expect(lines[0]).toMatch(new RegExp(`^${customer!.id} ${customer!.country} ${customer!.segment}: lifetime value [\\d.]+, ${orders} orders$`));
    const top = await mesh.sql<{ sku: string }>('products', 'select sku from products order by list_price desc, sku desc limit 3');
    expect(lines.slice(-3).map((line) => line.split(' ')[0])).toEqual(top.map((p) => p.sku));
  });

  it('the example app follows order changes through its typed client, by hash only, over SSE', async () => {
    const ids = (await postGraphQL<any>(mesh.gateway.url, '{ orderList(limit: 2) { id status total } }', undefined, { authorization: `Bearer ${tokenFor()}` })).body.data.orderList as { id: string; status: string; total: number }[];
    const { watchOrders } = (await import(join(app, 'src', 'main.ts'))) as { watchOrders: (options: { url: string; token: string }, count: number) => Promise<string[]> };
    const watching = watchOrders({ url: mesh.gateway.url, token: appToken }, 2);
    // Published once the subscription is open (the gateway counts it), as the finance subgraph would.
    const open = async () => /mesh_subscriptions\{transport="sse"[^}]*\} [1-9]/.test(await (await fetch(mesh.gateway.url.replace('/graphql', '/metrics'))).text());
    await expect.poll(open, { timeout: 10_000 }).toBe(true);
    const feed = openFileFeed({ dir: join(mesh.dataDir, 'events'), signingKey: DEV_SIGNING_KEY });
    await feed.declare('finance.orders');
    const { position } = await feed.publish(signChangeEvent({ id: 'finance.orders@typed-1', key: DEV_SIGNING_KEY, change: { product: 'finance.orders', operation: 'upsert', keys: ids.map((o) => o.id), version: new Date().toISOString(), changedFields: ['status'] } }));
    await feed.close();
    expect(await watching).toEqual(ids.map((o, i) => `${position}:${i} UPSERT ${o.id} ${o.status} ${o.total.toFixed(2)}`));
    // The ad-hoc subscription is refused to the app, as its ad-hoc queries are.
    const adHoc = await fetch(mesh.gateway.url.replace(/\/graphql$/, '/graphql/stream'), { method: 'POST', headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${appToken}` }, body: JSON.stringify({ query: 'subscription { orderChanged { key } }' }) });
    expect(adHoc.status).toBe(400);
    expect(((await adHoc.json()) as any).errors[0].extensions.code).toBe('TRUSTED_DOCUMENT_REQUIRED');
  });

  it('refuses the app an ad-hoc query, an unknown hash, or a hash with another text', async () => {
    const adHoc = await post({ query: '{ customers(first: 1) { nodes { email } } }' }, appToken);
    expect(adHoc.status).toBe(400);
    expect(adHoc.body.errors[0]).toMatchObject({
      message: 'The app "example-app" may send only its registered documents, by documentId; ad-hoc queries are refused.',
      extensions: { code: 'TRUSTED_DOCUMENT_REQUIRED' },
    });
    const unknown = await post({ documentId: `sha256:${'0'.repeat(64)}` }, appToken);
    expect(unknown).toMatchObject({ status: 400, body: { errors: [{ extensions: { code: 'PERSISTED_DOCUMENT_NOT_FOUND' } }] } });
    const swapped = await post({ documentId: overviewId, query: '{ customers(first: 500) { nodes { email } } }', variables: { id: 'C0000001' } }, appToken);
    expect(swapped).toMatchObject({ status: 400, body: { errors: [{ message: expect.stringMatching(/is not the registered document/) }] } });
    for (const documentId of ['sha256:../../etc/passwd', 'md5:abc', 42]) {
      const odd = await post({ documentId }, appToken);
      expect(odd.status, String(documentId)).toBe(400);
    }
  });

  it('serves a registered hash by POST (documentId or Apollo\'s extension) and by GET, alike', async () => {
    const variables = { id: 'C0000003' };
    const byId = await post({ documentId: overviewId, variables }, appToken);
    expect(byId.status).toBe(200);
    expect(byId.body.data.customer.id).toBe('C0000003');
    const byExtension = await post({ extensions: { persistedQuery: { version: 1, sha256Hash: overviewId.slice(7) } }, variables }, appToken);
    expect(byExtension.body).toEqual(byId.body);
    const search = new URLSearchParams({ documentId: overviewId, variables: JSON.stringify(variables) });
    const byGet = await fetch(`${mesh.gateway.url}?${search}`, { headers: { authorization: `Bearer ${appToken}`, 'apollo-require-preflight': 'true' } });
    expect(byGet.status).toBe(200);
    expect(await byGet.json()).toEqual(byId.body);
  });

  it('leaves analysts their ad-hoc queries, and refuses them unregistered hashes', async () => {
    const adHoc = await postGraphQL(mesh.gateway.url, '{ products(first: 1) { nodes { sku } } }', undefined, { authorization: `Bearer ${analystToken}` });
    expect(adHoc.body.errors).toBeUndefined();
    const registered = await post({ documentId: overviewId, variables: { id: 'C0000003' } }, analystToken);
    expect(registered.status).toBe(200);
    // Apollo's automatic persisted queries would register any hash: here only the registry does.
    const query = '{ products(first: 1) { nodes { sku } } }';
    const apq = await post({ query, extensions: { persistedQuery: { version: 1, sha256Hash: 'f'.repeat(64) } } }, analystToken);
    expect(apq).toMatchObject({ status: 400, body: { errors: [{ extensions: { code: 'PERSISTED_DOCUMENT_NOT_FOUND' } }] } });
  });

  it('makes the manifest\'s fields count in the registry\'s breaking-change check', async () => {
    const sdl = await fetchSubgraphSdl({ name: 'products', url: mesh.subgraphs.products!.url });
    const withoutListPrice = join(scratch, 'products.graphql');
    const removed = visit(parse(sdl), {
      ObjectTypeDefinition: (node) => (node.name.value === 'Product' ? { ...node, fields: node.fields?.filter((f) => f.name.value !== 'listPrice') } : undefined),
    });
    await writeFile(withoutListPrice, print(removed));
    const check = await registry('check', 'products', '--schema', withoutListPrice);
    expect(check.exitCode).toBe(1);
    const topProductsId = Object.keys(manifest).find((id) => manifest[id]!.startsWith('query TopProducts'))!;
    // Named twice: by the usage the gateway recorded when the app ran, and by its registered manifest.
    // The gateway writes usage to the registry in batches (every 200 ms here): a loaded machine may check before the batch lands.
    await expect
      .poll(async () => (await registry('check', 'products', '--schema', withoutListPrice)).output, { timeout: 15_000, interval: 250 })
      .toContain(`BREAKING_CHANGE_IN_USE Product.listPrice: Field 'listPrice' was removed from object type 'Product' Used by example-app, example-app (registered: ${topProductsId}).`);
  });

  it('refuses a manifest whose hashes are not its documents\', or that is not a manifest', async () => {
    const forged = join(scratch, 'forged.json');
    await writeFile(forged, JSON.stringify({ [overviewId]: '{ customers(first: 500) { nodes { email birthDate } } }' }));
    expect(await registry('clients', 'register', 'example-app', '--manifest', forged)).toMatchObject({
      exitCode: 2,
      output: expect.stringMatching(/^error REGISTRY_INVALID_DOCUMENT: .*is not the SHA-256 of its document/),
    });
    const notJson = join(scratch, 'not.json');
    await writeFile(notJson, 'sha256:abc query');
    expect((await registry('clients', 'register', 'example-app', '--manifest', notJson)).output).toMatch(/^error REGISTRY_INVALID_DOCUMENT: .*is not JSON/);
    const list = join(scratch, 'list.json');
    await writeFile(list, '["query A { a }"]');
    expect((await registry('clients', 'register', 'example-app', '--manifest', list)).output).toMatch(/is not a manifest/);
  });
});
