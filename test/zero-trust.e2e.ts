/**
 * Zero trust, tried as an attacker would (issue 12's findings, each a test): no development identity
 * in production, and no answer to a page that reached the mesh by DNS rebinding.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { request } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import jwt from 'jsonwebtoken';
import { DEV_AUDIENCE, DEV_ISSUER, DEV_SECRET } from '../policy/identity-config.js';
import { fetchSubgraphSdl } from '../gateway/supergraph/supergraph.js';
import { openFileAuditSink } from '../policy/audit.js';
import { DEV_HASH_KEY } from '../policy/masking.js';
import { DEV_SIGNING_KEY, SIGNATURE_HEADER, signSubgraphRequest } from '../policy/subgraph-signature.js';
import { domains } from '../subgraphs/domains.js';
import { startSubgraphServer } from '../subgraphs/kit/subgraph-server.js';
import { freePort, logLines, postGraphQL, postSubgraph, startTestGateway, startTestMesh, testGatewayConfig, testIdentity, testLog, tokenFor, type TestMesh } from './harness/mesh.js';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Runs a service's entry point as `npm start` does; resolves with its exit code and output. */
async function runService(script: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, script), ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, output };
}

/** An HTTP request with the Host and Origin an attacker's page would make a browser send. */
function rawRequest(url: string, options: { method: string; host: string; origin?: string; body?: string }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const req = request(
      { hostname: target.hostname, port: target.port, path: target.pathname, method: options.method, headers: { host: options.host, 'content-type': 'application/json', ...(options.origin ? { origin: options.origin } : {}) } },
      (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

describe('a development identity in production', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'mesh-production-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  const devIssuerListed = JSON.stringify([{ issuer: DEV_ISSUER, audience: 'data-mesh', algorithms: ['HS256'], secret: 'y'.repeat(40) }]);
  const realIssuer = JSON.stringify([{ issuer: 'https://idp.example/', audience: 'data-mesh', algorithms: ['RS256'], jwksUri: 'https://idp.example/jwks.json' }]);

  it.each([
    ['a custom DEV_JWT_SECRET of 40 characters (the finding)', { DEV_JWT_SECRET: 'x'.repeat(40) }, /Production needs AUTH_ISSUERS/],
    ['the development issuer listed in AUTH_ISSUERS with a secret of its own', { AUTH_ISSUERS: devIssuerListed }, /lists the local-development issuer .* refused in production, whatever its secret/],
    ['a real issuer, with DEV_JWT_SECRET still set', { AUTH_ISSUERS: realIssuer, DEV_JWT_SECRET: 'x'.repeat(40) }, /DEV_JWT_SECRET is set: development tokens are refused in production/],
  ])('stops the gateway at start: %s', async (_name, env, message) => {
    const port = await freePort();
    const { code, output } = await runService('gateway/main.ts', [], { NODE_ENV: 'production', PORT: String(port), DATA_DIR: dataDir, SUPERGRAPH_SOURCE: 'subgraphs', AUTH_ISSUERS: '', DEV_JWT_SECRET: '', ...env });
    expect(code).toBe(1);
    expect(output).toMatch(message);
    // It never listened: no /ide/dev-token to mint an admin token from.
    await expect(fetch(`http://127.0.0.1:${port}/ide/dev-token`, { method: 'POST' })).rejects.toThrow();
  });

  it('stops a subgraph at start too, before it builds anything', async () => {
    const { code, output } = await runService('subgraphs/main.ts', ['serve', 'customers'], {
      NODE_ENV: 'production',
      PORT: String(await freePort()),
      DATA_DIR: dataDir,
      MASK_HASH_KEY: 'k'.repeat(40),
      AUTH_ISSUERS: '',
      DEV_JWT_SECRET: 'x'.repeat(40),
    });
    expect(code).toBe(1);
    expect(output).toMatch(/Production needs AUTH_ISSUERS/);
    expect(output).not.toMatch(/raw data generated|warehouse built/);
  });

  it('stops a subgraph whose direct-access setting is neither allow nor deny', async () => {
    const { code, output } = await runService('subgraphs/main.ts', ['serve', 'customers'], { PORT: String(await freePort()), DATA_DIR: dataDir, SUBGRAPH_DIRECT_ACCESS: 'yes' });
    expect(code).toBe(1);
    expect(output).toMatch(/SUBGRAPH_DIRECT_ACCESS must be allow or deny, got "yes"/);
    expect(output).not.toMatch(/raw data generated|warehouse built/);
  });

  it('refuses to mint a development token in production, even from code', async () => {
    const { code, output } = await runService('policy/dev-token.ts', ['--role', 'admin', '--region', 'EMEA'], { NODE_ENV: 'production' });
    expect(code).not.toBe(0);
    expect(output).toMatch(/refused in production/);
    expect(output).not.toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/m);
  });
});

describe('DNS rebinding in development', () => {
  let mesh: TestMesh;
  beforeAll(async () => {
    mesh = await startTestMesh();
  });
  afterAll(async () => {
    await mesh?.stop();
  });

  const signIn = JSON.stringify({ role: 'admin', regions: ['AMERICAS'], purpose: 'legal-obligation' });

  it('refuses a foreign Host on every route of the gateway, dev sign-in and GraphQL included', async () => {
    const port = new URL(mesh.gateway.url).port;
    const attacks = [
      { method: 'POST', path: '/ide/dev-token', body: signIn },
      { method: 'POST', path: '/graphql', body: JSON.stringify({ query: '{ customers(first: 1) { nodes { birthDate } } }' }) },
      { method: 'GET', path: '/ide/' },
      { method: 'GET', path: '/health/ready' },
    ];
    for (const attack of attacks) {
      const answer = await rawRequest(new URL(attack.path, mesh.gateway.url).toString(), { method: attack.method, host: `attacker.example:${port}`, ...(attack.body ? { body: attack.body } : {}) });
      expect({ path: attack.path, status: answer.status }).toEqual({ path: attack.path, status: 403 });
      expect(JSON.parse(answer.body).errors[0].extensions.code).toBe('HOST_NOT_ALLOWED');
      expect(answer.body).not.toMatch(/token"|birthDate"|\d{4}-\d{2}-\d{2}/);
    }
  });

  it('refuses a loopback Host sent with a foreign Origin, and a null Origin', async () => {
    for (const origin of ['http://attacker.example', 'null']) {
      const answer = await rawRequest(new URL('/ide/dev-token', mesh.gateway.url).toString(), { method: 'POST', host: new URL(mesh.gateway.url).host, origin, body: signIn });
      expect(answer.status).toBe(403);
      expect(JSON.parse(answer.body).errors[0].extensions.code).toBe('HOST_NOT_ALLOWED');
    }
  });

  it('refuses a foreign Host on a subgraph too, and answers the loopback names', async () => {
    const subgraph = mesh.subgraphs.customers!.url;
    const foreign = await rawRequest(subgraph, { method: 'POST', host: 'attacker.example', body: JSON.stringify({ query: '{ _service { sdl } }' }) });
    expect(foreign.status).toBe(403);
    for (const host of ['localhost', '127.0.0.1', 'dev.localhost']) {
      const answer = await rawRequest(new URL('/health/live', subgraph).toString(), { method: 'GET', host: `${host}:${new URL(subgraph).port}` });
      expect({ host, status: answer.status }).toEqual({ host, status: 200 });
    }
    const local = await rawRequest(new URL('/ide/dev-token', mesh.gateway.url).toString(), { method: 'POST', host: `localhost:${new URL(mesh.gateway.url).port}`, origin: `http://localhost:${new URL(mesh.gateway.url).port}`, body: signIn });
    expect(local.status).toBe(200);
    expect(JSON.parse(local.body).token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
  });
});

describe('the token command', () => {
  it('prints its usage on --help, and refuses unknown options, roles, regions and bounds, naming the option, without a stack trace', async () => {
    const help = await runService('policy/dev-token.ts', ['--help'], {});
    expect(help.code).toBe(0);
    expect(help.output).toMatch(/--role <role>\s+a role \(repeatable\): analyst, finance, support, steward,\s+admin/);
    expect(help.output).toMatch(/--region <region>\s+a region whose rows the token may read \(repeatable\):\s+AMERICAS, EMEA, APAC/);
    for (const [args, message] of [
      [['--role', 'wizard', '--region', 'EMEA'], /option '--role <role>' argument 'wizard' is invalid\. expected one of analyst, finance, support, steward, admin\./],
      [['--role', 'analyst', '--region', 'emea'], /option '--region <region>' argument 'emea' is invalid\. expected one of AMERICAS, EMEA, APAC\./],
      [['--bogus'], /unknown option '--bogus'/],
      [['--role', 'analyst', '--region', 'EMEA', '--purpose', 'curiosity'], /option '--purpose <purpose>' argument 'curiosity' is invalid/],
      // 0 hours was refused with a message saying 0 was allowed.
      [['--role', 'analyst', '--region', 'EMEA', '--hours', '0'], /option '--hours <hours>' argument '0' is invalid\. expected a whole number from 1 to 720\./],
      [['--role', 'analyst', '--region', 'EMEA', '--hours', '1.5'], /option '--hours <hours>' argument '1\.5' is invalid/],
      // Without a region a token sees no row where a row policy holds: said, not minted silently.
      [['--role', 'analyst'], /Give --region \(AMERICAS, EMEA, APAC; repeatable\) for the rows of a region, or --no-region/],
    ] as const) {
      const { code, output } = await runService('policy/dev-token.ts', [...args], {});
      expect({ args, code }).toEqual({ args, code: 2 });
      expect(output).toMatch(message);
      expect(output).not.toMatch(/\n\s+at |^[\w-]+\.[\w-]+\.[\w-]+$/m);
    }
    // Meant: a token with no region, and one with two.
    for (const args of [['--role', 'steward', '--no-region'], ['--role', 'analyst', '--region', 'EMEA', '--region', 'APAC', '--hours', '720']]) {
      const { code, output } = await runService('policy/dev-token.ts', args, {});
      expect({ args, code }).toEqual({ args, code: 0 });
      const claims = JSON.parse(Buffer.from(output.trim().split('.')[1]!, 'base64url').toString()) as { regions: string[] };
      expect(claims.regions).toEqual(args.includes('APAC') ? ['EMEA', 'APAC'] : []);
    }
  });
});

describe('bad input is a client error with a code', () => {
  let mesh: TestMesh;
  beforeAll(async () => {
    mesh = await startTestMesh();
  });
  afterAll(async () => {
    await mesh?.stop();
  });

  const forge = (cursor: string, change: (values: unknown[]) => unknown[]) => {
    const [key, ...values] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [string, ...unknown[]];
    return Buffer.from(JSON.stringify([key, ...change(values)]), 'utf8').toString('base64url');
  };

  it('does not deny what @skip and @include leave out, in filter and in reject mode, and still denies what they keep', async () => {
    const analyst = { authorization: `Bearer ${tokenFor({ subject: 'skip-analyst', roles: ['analyst'], regions: ['EMEA'] })}` };
    const reject = await startTestGateway(testGatewayConfig({ dataDir: mesh.dataDir, name: 'reject', supergraph: { kind: 'registry', registryUrl: mesh.registryUrl, pollMs: 100 }, overrides: { policyMode: 'reject' } }));
    try {
      await reject.ready;
      const leftOut = [
        ['{ customers(first: 1) { nodes { id birthDate @skip(if: true) } } }', {}],
        ['query($x: Boolean!) { customers(first: 1) { nodes { id birthDate @include(if: $x) } } }', { x: false }],
        ['query($x: Boolean!) { customers(first: 1) { nodes { id ...Private @skip(if: $x) } } } fragment Private on Customer { birthDate }', { x: true }],
        ['{ customers(first: 1) { nodes { id ... on Customer @include(if: false) { birthDate } } } }', {}],
      ] as const;
      for (const [query, variables] of leftOut) {
        for (const url of [mesh.gateway.url, reject.url]) {
          const { status, body } = await postGraphQL<any>(url, query, variables, analyst);
          expect({ query, url, status, errors: body.errors }).toEqual({ query, url, status: 200, errors: undefined });
          expect(body.data.customers.nodes[0]).toEqual({ id: expect.any(String) });
        }
      }
      // Kept by its condition: denied as ever.
      const kept = await postGraphQL<any>(mesh.gateway.url, 'query($x: Boolean!) { customers(first: 1) { nodes { id birthDate @include(if: $x) } } }', { x: true }, analyst);
      expect(kept.body.data.customers.nodes[0].birthDate).toBeNull();
      expect(kept.body.errors?.[0]?.extensions).toMatchObject({ code: 'FORBIDDEN', coordinate: 'Customer.birthDate' });
      const refused = await postGraphQL<any>(reject.url, '{ customers(first: 1) { nodes { id birthDate @skip(if: false) } } }', undefined, analyst);
      expect(refused.body.data ?? null).toBeNull();
      expect(refused.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    } finally {
      await reject.stop();
    }
  });

  it('masks a pii enum: an analyst gets no address kind, support of the region gets it', async () => {
    const query = '{ customers(first: 20) { nodes { addresses { kind } } } }';
    const analyst = await mesh.query<any>(query, undefined, { authorization: `Bearer ${tokenFor({ subject: 'enum-analyst', roles: ['analyst'], regions: ['EMEA', 'AMERICAS', 'APAC'] })}` });
    const kinds = analyst.body.data.customers.nodes.flatMap((c: any) => (c.addresses ?? []).map((a: any) => a.kind));
    expect(kinds.length).toBeGreaterThan(5);
    expect(new Set(kinds)).toEqual(new Set([null]));
    expect(analyst.body.extensions?.policy?.masked).toEqual(expect.arrayContaining([expect.objectContaining({ coordinate: 'Address.kind', strategy: 'REDACT' })]));
    const support = await mesh.query<any>(query, undefined, { authorization: `Bearer ${tokenFor({ subject: 'enum-support', roles: ['support'], regions: ['EMEA', 'AMERICAS', 'APAC'] })}` });
    const raw = support.body.data.customers.nodes.flatMap((c: any) => (c.addresses ?? []).map((a: any) => a.kind));
    expect(raw).toContain('BILLING');
  });

  it('refuses operations of a type the schema has no root for, and subscriptions over POST, with 400', async () => {
    const mutation = await mesh.query('mutation { __typename }');
    expect(mutation.status).toBe(400);
    expect(mutation.body.errors?.[0]).toMatchObject({ message: expect.stringMatching(/no mutation operations/), extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } });
    // Subscriptions have their endpoints (gateway/subscriptions/): never planned and failed here.
    const subscription = await mesh.query('subscription { orderChanged { key } }');
    expect(subscription.status).toBe(400);
    expect(subscription.body.errors?.[0]).toMatchObject({ message: expect.stringMatching(/\/graphql\/stream/), extensions: { code: 'SUBSCRIPTION_INVALID' } });
  });

  it.each([
    ['a number for a text column', '{ customers(first: 1, orderBy: { field: NAME }) { pageInfo { endCursor } } }', 'customers', (v: unknown[]) => [42, v[1]]],
    ['text for a number column', '{ orders(first: 1, orderBy: { field: TOTAL }) { pageInfo { endCursor } } }', 'orders', (v: unknown[]) => ['a lot', v[1]]],
    ['a date that does not exist', '{ customers(first: 1, orderBy: { field: SIGNUP_DATE }) { pageInfo { endCursor } } }', 'customers', (v: unknown[]) => ['2024-02-30', v[1]]],
    ['a time that does not exist', '{ orders(first: 1, orderBy: { field: ORDERED_AT }) { pageInfo { endCursor } } }', 'orders', (v: unknown[]) => ['2024-01-01T25:61:00Z', v[1]]],
    ['a list for an id', '{ orders(first: 1) { pageInfo { endCursor } } }', 'orders', () => [['O-1']]],
  ])('refuses a forged cursor with %s as INVALID_CURSOR', async (_name, first, root, change) => {
    const page = await mesh.query<any>(first);
    const cursor = page.body.data[root].pageInfo.endCursor as string;
    const withAfter = first.replace('first: 1', 'first: 1, after: $after').replace('{ ', 'query($after: String) { ');
    const { body } = await mesh.query(withAfter, { after: forge(cursor, change) });
    expect(body.errors?.[0]?.extensions).toMatchObject({ code: 'INVALID_CURSOR', argument: 'after' });
    expect(JSON.stringify(body)).not.toMatch(/INTERNAL_SERVER_ERROR|Conversion|duckdb/i);
  });

  it.each([
    ['an id that is a list', { __typename: 'Customer', id: ['C0000001'] }, /has a "id" that is not an id/],
    ['an id that is a number', { __typename: 'Customer', id: 42 }, /has a "id" that is not an id/],
    ['a missing key', { __typename: 'Customer' }, /lacks its key field "id"/],
    ['a type that is no entity', { __typename: 'Address', id: 'x' }, /names "Address", which is not an entity of this subgraph/],
    ['no object at all', 'C0000001', /is not an object/],
  ])('refuses a malformed _entities representation with %s, as 400 INVALID_ARGUMENT', async (_name, representation, message) => {
    const { status, body } = await postSubgraph(
      mesh.subgraphs.customers!.url,
      'query($r: [_Any!]!) { _entities(representations: $r) { ... on Customer { id name } } }',
      { r: [{ __typename: 'Customer', id: 'C0000001' }, representation] },
      { authorization: `Bearer ${tokenFor()}` },
    );
    expect(status).toBe(400);
    expect(body.errors?.[0]).toMatchObject({ message: expect.stringMatching(message), extensions: { code: 'INVALID_ARGUMENT', argument: 'representations' } });
    expect(body.errors?.[0]?.message).toMatch(/^Representation 1 of _entities/);
  });

  it('answers PUT, DELETE and PATCH with 405 and Allow, on the export and on /graphql', async () => {
    for (const path of ['/export/csv', '/graphql']) {
      for (const method of ['PUT', 'DELETE', 'PATCH']) {
        const response = await fetch(new URL(path, mesh.gateway.url), { method, headers: { 'content-type': 'application/json', authorization: `Bearer ${tokenFor()}` }, body: JSON.stringify({ query: '{ orders { nodes { id } } }' }) });
        const text = await response.text();
        expect({ path, method, status: response.status, allow: response.headers.get('allow') }).toEqual({ path, method, status: 405, allow: 'GET, POST' });
        expect(JSON.parse(text).errors[0].extensions.code).toBe('METHOD_NOT_ALLOWED');
        expect(text).not.toMatch(/O-\d|^id$/m);
      }
    }
  });
});

describe('signed gateway-to-subgraph calls', () => {
  let mesh: TestMesh;
  beforeAll(async () => {
    mesh = await startTestMesh();
  });
  afterAll(async () => {
    await mesh?.stop();
  });

  const steward = `Bearer ${tokenFor()}`;
  const send = (url: string, body: string, headers: Record<string, string>) =>
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));

  it('refuses a valid token without the gateway signature, and answers the same call signed', async () => {
    const body = JSON.stringify({ query: '{ customers(first: 1) { nodes { id birthDate } } }' });
    const unsigned = await send(mesh.subgraphs.customers!.url, body, { authorization: steward });
    expect(unsigned.status).toBe(401);
    expect(unsigned.body.errors[0].extensions).toMatchObject({ code: 'SIGNATURE_REQUIRED', reason: 'missing' });
    expect(JSON.stringify(unsigned.body)).not.toMatch(/\d{4}-\d{2}-\d{2}/);
    const signed = await send(mesh.subgraphs.customers!.url, body, { authorization: steward, [SIGNATURE_HEADER]: signSubgraphRequest({ key: DEV_SIGNING_KEY, body, authorization: steward }) });
    expect(signed.status).toBe(200);
    expect(signed.body.data.customers.nodes).toHaveLength(1);
  });

  it('refuses a signed request whose body or token was changed, a replay after its window, and a wrong key', async () => {
    const body = JSON.stringify({ query: '{ customers(first: 1) { nodes { id } } }' });
    const signature = signSubgraphRequest({ key: DEV_SIGNING_KEY, body, authorization: steward });
    const tampered = body.replace('first: 1', 'first: 500');
    const attempts = [
      ['a tampered body', tampered, { authorization: steward, [SIGNATURE_HEADER]: signature }, 'mismatch'],
      ['another token', body, { authorization: `Bearer ${tokenFor({ subject: 'other', roles: ['admin'] })}`, [SIGNATURE_HEADER]: signature }, 'mismatch'],
      ['a replay after 61 s', body, { authorization: steward, [SIGNATURE_HEADER]: signSubgraphRequest({ key: DEV_SIGNING_KEY, body, authorization: steward, now: Date.now() - 61_000 }) }, 'expired'],
      ['another key', body, { authorization: steward, [SIGNATURE_HEADER]: signSubgraphRequest({ key: 'k'.repeat(40), body, authorization: steward }) }, 'mismatch'],
      ['a malformed signature', body, { authorization: steward, [SIGNATURE_HEADER]: 't=1,v1=zz' }, 'malformed'],
    ] as const;
    for (const [name, sent, headers, reason] of attempts) {
      const answer = await send(mesh.subgraphs.customers!.url, sent, headers);
      expect({ name, status: answer.status, reason: answer.body.errors?.[0]?.extensions?.reason }).toEqual({ name, status: 401, reason });
      expect(answer.body.data).toBeUndefined();
    }
  });

  it('closes the way around the gateway: no anonymous introspection or _service, and no ad-hoc query of an app held to trusted documents', async () => {
    for (const query of ['{ __schema { types { name } } }', '{ _service { sdl } }', '{ __type(name: "Customer") { fields { name } } }']) {
      const answer = await send(mesh.subgraphs.customers!.url, JSON.stringify({ query }), {});
      expect({ query, status: answer.status }).toEqual({ query, status: 401 });
    }
    // An app held to trusted documents at the gateway cannot send its ad-hoc query to the subgraph either.
    const app = `Bearer ${tokenFor({ subject: 'app-user', roles: ['analyst'], regions: ['EMEA'], client: 'crm-app' })}`;
    const adHoc = await send(mesh.subgraphs.customers!.url, JSON.stringify({ query: '{ customers(first: 5) { nodes { id name } } }' }), { authorization: app });
    expect(adHoc.status).toBe(401);
    expect(adHoc.body.errors[0].extensions.code).toBe('SIGNATURE_REQUIRED');
    // The platform's own tool (the registry's --introspect) signs, and reads the SDL.
    expect(await fetchSubgraphSdl({ name: 'customers', url: mesh.subgraphs.customers!.url })).toMatch(/type Customer/);
  });

  it('with direct access switched on, answers unsigned ordinary queries but never _service, _entities or introspection, and says so at start', async () => {
    const audit = await openFileAuditSink({ path: join(mesh.dataDir, 'audit', 'direct.jsonl') });
    const before = logLines.length;
    const direct = await startSubgraphServer({
      domain: domains.find((d) => d.name === 'products')!,
      warehouse: mesh.warehouses.products!,
      log: testLog,
      identity: testIdentity,
      hashKey: DEV_HASH_KEY,
      audit,
      port: 0,
      signature: { key: DEV_SIGNING_KEY, directAccess: true },
    });
    try {
      expect(logLines.slice(before).some((line) => line.includes('SUBGRAPH_DIRECT_ACCESS=allow'))).toBe(true);
      const ordinary = await send(direct.url, JSON.stringify({ query: '{ products(first: 1) { nodes { sku } } }' }), {});
      expect(ordinary.status).toBe(200);
      // A document that does not fit the subgraph's schema is the caller's error, answered 400.
      const invalid = await send(direct.url, JSON.stringify({ query: '{ products(first: 1) { nodes { nope } } }' }), {});
      expect(invalid.status).toBe(400);
      expect(invalid.body.errors[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
      for (const query of ['{ _service { sdl } }', 'query { ...F } fragment F on Query { __schema { types { name } } }', '{ _entities(representations: [{ __typename: "Product", sku: "SKU-000001" }]) { __typename } }']) {
        const answer = await send(direct.url, JSON.stringify({ query }), {});
        expect({ query, status: answer.status }).toEqual({ query, status: 401 });
      }
      // A forged signature is never taken for "unsigned".
      const forged = await send(direct.url, JSON.stringify({ query: '{ products(first: 1) { nodes { sku } } }' }), { [SIGNATURE_HEADER]: 't=1,v1=' + '0'.repeat(64) });
      expect(forged.status).toBe(401);
    } finally {
      await direct.stop();
      await audit.close();
    }
  });
});

describe('the signature check', () => {
  it('accepts the previous key during a rotation, and only then', async () => {
    const { default: express } = await import('express');
    const { requireGatewaySignature, keepRawBody } = await import('../policy/subgraph-signature.js');
    const serve = async (previousKey?: string) => {
      const app = express().use(express.json({ verify: keepRawBody }), requireGatewaySignature({ key: 'n'.repeat(40), previousKey, directAccess: false }), (_req, res) => {
        res.json({ data: { ok: true } });
      });
      const server = app.listen(0, '127.0.0.1');
      await once(server, 'listening');
      return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/`, close: () => server.close() };
    };
    const body = JSON.stringify({ query: '{ ok }' });
    const signedWith = (key: string) => ({ 'content-type': 'application/json', [SIGNATURE_HEADER]: signSubgraphRequest({ key, body }) });
    const rotating = await serve('o'.repeat(40));
    const rotated = await serve();
    try {
      expect((await fetch(rotating.url, { method: 'POST', headers: signedWith('n'.repeat(40)), body })).status).toBe(200);
      expect((await fetch(rotating.url, { method: 'POST', headers: signedWith('o'.repeat(40)), body })).status).toBe(200);
      expect((await fetch(rotating.url, { method: 'POST', headers: signedWith('x'.repeat(40)), body })).status).toBe(401);
      expect((await fetch(rotated.url, { method: 'POST', headers: signedWith('o'.repeat(40)), body })).status).toBe(401);
    } finally {
      rotating.close();
      rotated.close();
    }
  });
});

describe('the audit trail under hostile input', () => {
  let mesh: TestMesh;
  beforeAll(async () => {
    mesh = await startTestMesh();
  });
  afterAll(async () => {
    await mesh?.stop();
  });

  const read = async (service: string) => ((await readFile(mesh.auditPath(service), 'utf8').catch(() => '')).trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, any>));
  /** The service's records once `ready` holds of them (audit writes may land after the answer): polled, never slept on. */
  const records = async (service: string, ready: (records: Record<string, any>[]) => boolean) => {
    await expect.poll(async () => ready(await read(service)), { timeout: 10_000, interval: 50 }).toBe(true);
    return read(service);
  };

  it('keeps a 300 KB operation name from an anonymous caller to a bounded, identifiable name', async () => {
    const name = `Op${'x'.repeat(300_000)}`;
    const requestId = `long-name-${Date.now()}`;
    await fetch(mesh.gateway.url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': requestId, 'apollographql-client-name': 'c'.repeat(5_000) }, body: JSON.stringify({ query: '{ categories { id } }', operationName: name }) });
    const record = (await records('gateway', (all) => all.some((r) => r.requestId === requestId))).find((r) => r.requestId === requestId)!;
    expect(record.operationName).toMatch(/^Opx{62}…sha256:[0-9a-f]{16}$/);
    expect(record.clientName).toMatch(/^c{64}…sha256:[0-9a-f]{16}$/);
    expect(JSON.stringify(record).length).toBeLessThan(2_000);
  });

  it('refuses a RESTRICTED or CONFIDENTIAL read to a token that names no subject, and audits no read as nobody', async () => {
    const noSubject = `Bearer ${jwt.sign({ roles: ['steward'], purpose: 'customer-support', regions: ['EMEA'] }, DEV_SECRET, { algorithm: 'HS256', issuer: DEV_ISSUER, audience: DEV_AUDIENCE, expiresIn: 600 })}`;
    // Positive control: the same read by a steward with a subject writes a strict record naming it.
    const named = `nobody-control-${Date.now()}`;
    const steward = `Bearer ${jwt.sign({ sub: 'stu', roles: ['steward'], purpose: 'customer-support', regions: ['EMEA'] }, DEV_SECRET, { algorithm: 'HS256', issuer: DEV_ISSUER, audience: DEV_AUDIENCE, expiresIn: 600 })}`;
    await mesh.query<any>('{ customers(first: 1) { nodes { id birthDate email } } }', undefined, { authorization: steward, 'x-request-id': named });
    const nobody = `nobody-${Date.now()}`;
    const { body } = await mesh.query<any>('{ customers(first: 1) { nodes { id birthDate email } } }', undefined, { authorization: noSubject, 'x-request-id': nobody });
    expect(body.data.customers.nodes[0]).toEqual({ id: expect.any(String), birthDate: null, email: null });
    const codes = (body.errors ?? []).map((e: any) => `${e.extensions.code} ${e.extensions.coordinate} ${JSON.stringify(e.extensions.missing)}`).sort();
    expect(codes).toEqual(['FORBIDDEN Customer.birthDate {"subject":true}', 'FORBIDDEN Customer.email {"subject":true}']);
    const written = await records('customers', (all) => [named, nobody].every((id) => all.some((r) => r.requestId === id)));
    const control = written.find((r) => r.requestId === named)!;
    expect(control).toMatchObject({ subject: 'stu', strict: true });
    const readsOf = (record: Record<string, any>) => record.facts.filter((f: any) => ['Customer.birthDate', 'Customer.email'].includes(f.coordinate) && f.decision === 'allow').map((f: any) => f.coordinate).sort();
    expect(readsOf(control)).toEqual(['Customer.birthDate', 'Customer.email']);
    // The subject-less request's own record (the gateway dropped both fields before planning): no read of them, nothing strict.
    const own = written.find((r) => r.requestId === nobody)!;
    expect(own).toMatchObject({ subject: null, strict: false });
    expect(readsOf(own)).toEqual([]);
    expect(written.filter((r) => r.strict === true && r.subject === null)).toEqual([]);
  });

  it('audits refused tokens with their reason, at most 20 a second, counting the rest into the next record', async () => {
    const before = (await read('gateway')).filter((r) => r.refusal === 'UNAUTHENTICATED').length;
    const expired = `Bearer ${jwt.sign({ sub: 'late' }, DEV_SECRET, { algorithm: 'HS256', issuer: DEV_ISSUER, audience: DEV_AUDIENCE, expiresIn: -120 })}`;
    for (let i = 0; i < 30; i++) expect((await fetch(mesh.gateway.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: expired }, body: '{"query":"{ __typename }"}' })).status).toBe(401);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await fetch(mesh.gateway.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer not.a.token' }, body: '{"query":"{ __typename }"}' });
    const refused = (await records('gateway', (all) => all.some((r) => r.reason === 'MALFORMED_TOKEN'))).filter((r) => r.refusal === 'UNAUTHENTICATED').slice(before);
    expect(refused.length).toBeLessThanOrEqual(21);
    expect(refused[0]).toMatchObject({ kind: 'gateway-operation', outcome: 'refused', reason: 'TOKEN_EXPIRED', subject: null });
    const last = refused.at(-1)!;
    expect(last.reason).toBe('MALFORMED_TOKEN');
    expect(refused.length - 1 + (last.suppressed ?? 0)).toBe(30);
    const metrics = await (await fetch(new URL('/metrics', mesh.gateway.url))).text();
    expect(metrics).toMatch(/mesh_token_rejections_total\{reason="TOKEN_EXPIRED",service="gateway"\} 30/);
  });
});
