/**
 * The registry as a service with team identity (issue 25, part 4): a gateway serving from its
 * registry answers `/registry/v1` with real signed tokens. A team owns what it first publishes; a
 * subgraph the platform's operators published is the governance group's to assign; another team's
 * token cannot publish, roll back or remove it; no token, an expired one, a forged one are refused;
 * the publisher recorded is the verified token's; every write, refused ones included, is in the
 * gateway's audit chain; the command line talks to the API by URL.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openFileRegistry } from '../gateway/registry/file-registry.js';
import { publishSubgraph } from '../gateway/registry/publish.js';
import { verifyAuditLog } from '../policy/audit.js';
import { DEV_AUDIENCE, DEV_ISSUER, DEV_SECRET, mintDevToken, type DevTokenClaims } from '../policy/identity-config.js';
import { domains } from '../subgraphs/domains.js';
import { printDomainSdl } from '../subgraphs/kit/domain-schema.js';
import { readAuditRecords, startTestGateway, testGatewayConfig } from './harness/mesh.js';
import { runProcess } from './harness/run-process.js';

const root = resolve(import.meta.dirname, '..');
const sdlOf = (name: string) => printDomainSdl(domains.find((domain) => domain.name === name)!);
const CUSTOMERS_URL = 'http://127.0.0.1:4901/graphql';
const PRODUCTS_URL = 'http://127.0.0.1:4902/graphql';

const token = (claims: Partial<DevTokenClaims> & { subject: string }) => mintDevToken({ roles: [], ...claims });
const CATALOG = token({ subject: 'pat', teams: ['catalog'] });
const CRM = token({ subject: 'cy', teams: ['crm'] });
const GOVERNANCE = token({ subject: 'gov', roles: ['admin'] });

describe('the registry API', () => {
  let dataDir: string;
  let base: string;
  let gateway: Awaited<ReturnType<typeof startTestGateway>>;
  let auditPath: string;

  const call = async (method: string, path: string, bearer: string | null, body?: unknown) => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: { ...(bearer ? { authorization: `Bearer ${bearer}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, body: (await response.json()) as any };
  };
  const revision = async () => (await call('GET', '/subgraphs', GOVERNANCE)).body.revision as number;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'registry-api-'));
    // The platform's operators published customers on the store itself: it has no owning team.
    const registryDir = join(dataDir, 'registry');
    const store = await openFileRegistry(registryDir);
    const operator = await publishSubgraph(store, { name: 'customers', url: CUSTOMERS_URL, sdl: sdlOf('customers'), publishedBy: 'platform-operator' });
    expect(operator.report.accepted).toBe(true);
    await store.close();
    const config = testGatewayConfig({ dataDir, supergraph: { kind: 'registry', registryUrl: registryDir, pollMs: 100 }, overrides: { registryApi: { governanceRoles: ['admin'] } } });
    auditPath = config.auditPath;
    gateway = await startTestGateway(config);
    base = gateway.url.replace(/\/graphql$/, '/registry/v1');
  });

  afterAll(async () => {
    await gateway?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('lets a team claim a new subgraph by publishing it, recording the verified publisher, not a name it sends', async () => {
    const published = await call('POST', '/subgraphs/products/publish', CATALOG, { sdl: sdlOf('products'), url: PRODUCTS_URL, publishedBy: 'mallory', by: 'mallory' });
    expect(published.status).toBe(200);
    expect(published.body.published).toMatchObject({ name: 'products', version: 1, publishedBy: 'pat (team catalog)' });
    const history = await call('GET', '/subgraphs/products/history', CRM);
    expect(history.body.owner).toMatchObject({ team: 'catalog', setBy: 'pat (team catalog)' });
    expect(history.body.versions.map((v: any) => v.publishedBy)).toEqual(['pat (team catalog)']);
    // The registry's state, which the gateway watches, serves it (the gateway's reload itself waits for the subgraph to answer: tested with running domains in domain-scaffold.e2e.ts).
    expect((await call('GET', '/subgraphs', CATALOG)).body.subgraphs.map((s: any) => [s.name, s.owner?.team ?? null])).toEqual([['customers', null], ['products', 'catalog']]);
  });

  it("refuses another team's publish, rollback and removal, naming the owner, and changes nothing", async () => {
    const before = await revision();
    const publish = await call('POST', '/subgraphs/products/publish', CRM, { sdl: sdlOf('products'), url: 'http://127.0.0.1:4999/graphql' });
    expect(publish).toEqual({ status: 403, body: { error: { code: 'REGISTRY_FORBIDDEN', message: '"products" belongs to team "catalog"; the token acts for team crm.' }, requestId: expect.any(String) } });
    expect((await call('POST', '/subgraphs/products/rollback', CRM, {})).body.error.code).toBe('REGISTRY_FORBIDDEN');
    expect((await call('DELETE', '/subgraphs/products', CRM)).body.error.code).toBe('REGISTRY_FORBIDDEN');
    // Claiming to act for the owner's team does not make it so.
    expect((await call('POST', '/subgraphs/products/publish', CRM, { sdl: sdlOf('products'), team: 'catalog' })).body.error).toMatchObject({ code: 'REGISTRY_FORBIDDEN', message: expect.stringMatching(/does not act for team "catalog"/) });
    expect(await revision()).toBe(before);
  });

  it('refuses no token, an expired token, a forged team claim, an unsigned one and a foreign issuer', async () => {
    const before = await revision();
    const claims = { teams: ['catalog'], roles: [] };
    const refusals = {
      none: null,
      expired: token({ subject: 'pat', teams: ['catalog'], expiresInSeconds: -120 }),
      forged: jwt.sign(claims, 'a-secret-the-mesh-does-not-know-0123456789', { algorithm: 'HS256', issuer: DEV_ISSUER, audience: DEV_AUDIENCE, subject: 'pat', expiresIn: 600 }),
      unsigned: jwt.sign(claims, '', { algorithm: 'none', issuer: DEV_ISSUER, audience: DEV_AUDIENCE, subject: 'pat', expiresIn: 600 }),
      foreign: jwt.sign(claims, DEV_SECRET, { algorithm: 'HS256', issuer: 'https://elsewhere.example', audience: DEV_AUDIENCE, subject: 'pat', expiresIn: 600 }),
    };
    const answers: Record<string, [number, string, string]> = {};
    for (const [name, bearer] of Object.entries(refusals)) {
      const { status, body } = await call('POST', '/subgraphs/products/publish', bearer, { sdl: sdlOf('products') });
      answers[name] = [status, body.error.code, body.error.message.replace(/^The token is refused: (\w+).*$/, '$1')];
    }
    expect(answers).toEqual({
      none: [401, 'REGISTRY_UNAUTHENTICATED', 'The registry API needs a bearer token that names its subject.'],
      expired: [401, 'REGISTRY_UNAUTHENTICATED', 'TOKEN_EXPIRED'],
      forged: [401, 'REGISTRY_UNAUTHENTICATED', 'INVALID_SIGNATURE'],
      unsigned: [401, 'REGISTRY_UNAUTHENTICATED', 'ALGORITHM_NOT_ALLOWED'],
      foreign: [401, 'REGISTRY_UNAUTHENTICATED', 'UNKNOWN_ISSUER'],
    });
    // Reads need a token too.
    expect((await call('GET', '/subgraphs', null)).status).toBe(401);
    expect(await revision()).toBe(before);
  });

  it("leaves a subgraph the operators published to the governance group to assign; then its team writes it, and only it", async () => {
    expect((await call('POST', '/subgraphs/customers/publish', CRM, { sdl: sdlOf('customers'), url: 'http://127.0.0.1:4903/graphql' })).body.error).toMatchObject({ code: 'REGISTRY_FORBIDDEN', message: expect.stringMatching(/has no owning team yet: the governance group assigns it/) });
    expect((await call('PUT', '/subgraphs/customers/owner', CRM, { team: 'crm' })).body.error.code).toBe('REGISTRY_FORBIDDEN');
    const assigned = await call('PUT', '/subgraphs/customers/owner', GOVERNANCE, { team: 'crm' });
    expect(assigned.body.owner).toMatchObject({ team: 'crm', setBy: 'gov (governance)' });
    const moved = await call('POST', '/subgraphs/customers/publish', CRM, { sdl: sdlOf('customers'), url: 'http://127.0.0.1:4903/graphql' });
    expect(moved.body.published).toMatchObject({ version: 2, publishedBy: 'cy (team crm)' });
    const back = await call('POST', '/subgraphs/customers/rollback', CRM, {});
    expect(back.body.published).toMatchObject({ version: 3, publishedBy: 'cy (team crm)', note: 'rollback to version 1', url: CUSTOMERS_URL });
    expect((await call('POST', '/subgraphs/customers/rollback', CATALOG, {})).status).toBe(403);
  });

  it('asks a token of several teams which one claims a new subgraph, and refuses a token of none', async () => {
    const both = token({ subject: 'sam', teams: ['crm', 'catalog'] });
    expect((await call('POST', '/subgraphs/ledger/publish', both, { sdl: 'type Query { x: Int }', url: 'http://127.0.0.1:4904/graphql' })).body.error.message).toMatch(/acts for several teams \(crm, catalog\): say which claims "ledger"/);
    expect((await call('POST', '/subgraphs/ledger/publish', token({ subject: 'nobody' }), { sdl: 'type Query { x: Int }', url: 'http://127.0.0.1:4904/graphql' })).body.error.message).toMatch(/names no team/);
  });

  it('answers a malformed body with a code, and writes nothing', async () => {
    const before = await revision();
    const raw = await fetch(`${base}/subgraphs/products/publish`, { method: 'POST', headers: { authorization: `Bearer ${CATALOG}`, 'content-type': 'application/json' }, body: '{"sdl": ' });
    expect(raw.status).toBe(400);
    expect(((await raw.json()) as any).error).toEqual({ code: 'REGISTRY_USAGE', message: 'The body is not valid JSON.' });
    expect((await call('POST', '/subgraphs/products/publish', CATALOG, ['sdl'])).body.error.code).toBe('REGISTRY_USAGE');
    expect((await call('POST', '/subgraphs/products/publish', CATALOG, { sdl: 42 })).body.error).toEqual({ code: 'REGISTRY_USAGE', message: 'sdl must be a non-empty string.' });
    const traversal = await call('POST', '/subgraphs/..%2F..%2Fetc/publish', CATALOG, { sdl: 'type Query { a: Int }' });
    expect(traversal.body.error.code).toBe('REGISTRY_INVALID_NAME');
    expect((await call('POST', '/subgraphs/products/publish', CATALOG, { sdl: 'type Query { a: Int }', url: 'file:///etc/passwd' })).body.error.code).toBe('REGISTRY_INVALID_URL');
    expect((await call('POST', `/subgraphs/${'x'.repeat(3_000)}/publish`, CATALOG, { sdl: 'type Query { a: Int }' })).body.error.code).toBe('REGISTRY_INVALID_NAME');
    expect(await revision()).toBe(before);
  });

  it('registers a client\'s documents with its own token only', async () => {
    const document = { name: 'list.graphql', body: '{ customers(first: 1) { nodes { id } } }' };
    expect((await call('POST', '/clients/web-app/documents', token({ subject: 'ci', client: 'other-app' }), { documents: [document] })).status).toBe(403);
    expect((await call('POST', '/clients/web-app/documents', token({ subject: 'ci', client: 'web-app' }), { documents: [document] })).body).toEqual({ client: 'web-app', registered: 1 });
  });

  it("removes the owner's subgraph, never the last one", async () => {
    const removed = await call('DELETE', '/subgraphs/products', CATALOG);
    expect(removed.body).toMatchObject({ removed: true });
    expect((await call('GET', '/subgraphs', CRM)).body.subgraphs.map((s: any) => [s.name, s.owner?.team])).toEqual([['customers', 'crm']]);
    const last = await call('DELETE', '/subgraphs/customers', CRM);
    expect([last.status, last.body.error.code]).toEqual([400, 'REGISTRY_LAST_SUBGRAPH']);
  });

  it('talks to the command line by URL, with the token of REGISTRY_TOKEN, and refuses a --by', async () => {
    const sdlFile = join(dataDir, 'products.graphql');
    await writeFile(sdlFile, sdlOf('products'));
    const cli = (args: readonly string[], bearer: string) => runProcess('npm', ['run', '-s', 'registry', '--', ...args, '--registry', base.replace(/\/v1$/, '')], { cwd: root, env: { ...process.env, REGISTRY_TOKEN: bearer } });
    const published = await cli(['publish', 'products', '--schema', sdlFile, '--url', PRODUCTS_URL], CATALOG);
    expect(published.code, published.output).toBe(0);
    expect(published.stdout).toMatch(/^ACCEPTED: publish products to http:\/\/127\.0\.0\.1:\d+\/registry\/v1/m);
    expect(published.stdout).toMatch(/Published products version 2/);
    const forbidden = await cli(['remove', 'products'], CRM);
    expect({ code: forbidden.code, stderr: forbidden.stderr.trim() }).toEqual({ code: 2, stderr: 'error REGISTRY_FORBIDDEN: "products" belongs to team "catalog"; the token acts for team crm.' });
    const by = await cli(['publish', 'products', '--schema', sdlFile, '--by', 'mallory'], CATALOG);
    expect(by.code).toBe(2);
    expect(by.stderr).toMatch(/REGISTRY_USAGE: --by names the publisher on the store/);
    const status = await cli(['status'], CRM);
    expect(status.stdout).toMatch(/products\s+v2 .* by pat \(team catalog\) .* owner team catalog/);
  });

  it('audits every write, refused ones included, by the verified identity, in a chain that verifies', async () => {
    const records = (await readAuditRecords(auditPath)).filter((r) => r.kind === 'registry-write') as any[];
    const summary = records.map((r) => `${r.action} ${r.subgraph ?? r.client} ${r.outcome} ${r.subject ?? '-'}`);
    expect(summary).toEqual(
      expect.arrayContaining([
        'publish products accepted pat',
        'publish products forbidden cy',
        'rollback products forbidden cy',
        'remove products forbidden cy',
        'publish products unauthenticated -',
        'set-owner customers forbidden cy',
        'set-owner customers accepted gov',
        'publish customers accepted cy',
        'rollback customers accepted cy',
        'register-documents web-app forbidden ci',
        'register-documents web-app accepted ci',
        'remove products accepted pat',
        'remove customers failed cy',
      ]),
    );
    // Five refused tokens, each recorded with why.
    expect(records.filter((r) => r.outcome === 'unauthenticated').map((r) => r.reason.split(' ')[0])).toHaveLength(5);
    expect(records.find((r) => r.outcome === 'forbidden')).toMatchObject({ teams: ['crm'], reason: expect.stringMatching(/^REGISTRY_FORBIDDEN: /) });
    // A name the caller made up is kept bounded (its first 64 characters and a hash).
    expect(records.find((r) => r.subgraph?.startsWith('xxxx'))?.subgraph).toMatch(/^x{64}…sha256:[0-9a-f]{16}$/);
    expect(verifyAuditLog(await readFile(auditPath, 'utf8')).ok).toBe(true);
  });
});
