/**
 * Analysts sign in to the IDE with the organisation's identity provider, in a real browser
 * (Debian's Chromium) against a real OpenID Connect provider started here (test/harness/
 * identity-provider.ts): the authorization code flow with PKCE, the access token verified by the
 * gateway like any other, renewed before it expires, never shown, and a sign-out that ends the
 * provider's session too. The sign-in page takes GraphiQL's look, dark mode included. Screenshots
 * are kept in test/artifacts/.
 */
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { colourOf, copyFrom, EDITORS, launchChromium, luminance, pasteInto, shownInEditors } from './harness/browser.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identityConfigFromEnv } from '../policy/identity-config.js';
import { startIdentityProvider, type TestIdentityProvider } from './harness/identity-provider.js';
import { freePort, postGraphQL, startTestGateway, startTestMesh, testGatewayConfig, type TestMesh } from './harness/mesh.js';

declare const document: { querySelector(selector: string): ({ textContent: string | null } & Record<string, any>) | null; body: { innerText: string } };

const artifacts = resolve(import.meta.dirname, 'artifacts');
const CLIENT_ID = 'datamesh-ide';
let mesh: TestMesh;
let idp: TestIdentityProvider;
let gateway: Awaited<ReturnType<typeof startTestGateway>>;
let browser: Browser;
let ide: string;

beforeAll(async () => {
  const port = await freePort();
  ide = `http://127.0.0.1:${port}/ide/`;
  idp = await startIdentityProvider({ clientId: CLIENT_ID, redirectUri: ide, accounts: { ana: { roles: ['analyst'], regions: ['EMEA'] } }, accessTokenSeconds: 8 });
  // Production-like: the organisation's provider is the only issuer the gateway and the subgraphs trust (zero trust: each verifies).
  const identity = identityConfigFromEnv({ AUTH_ISSUERS: JSON.stringify([{ issuer: idp.issuer, audience: 'data-mesh', algorithms: ['RS256'], jwksUri: idp.jwksUri }]) });
  mesh = await startTestMesh({ identity });
  gateway = await startTestGateway(
    testGatewayConfig({
      dataDir: mesh.dataDir,
      name: 'oidc',
      supergraph: { kind: 'registry', registryUrl: mesh.registryUrl, pollMs: 100 },
      overrides: { port, identity, ideSignIn: { issuer: idp.issuer, clientId: CLIENT_ID, scope: 'openid profile offline_access', resource: 'urn:datamesh:api' } },
    }),
  );
  await gateway.ready;
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await gateway?.stop();
  await idp?.stop();
  await mesh?.stop();
});

/** Signs in at the provider's own pages (the package's development login and consent). */
async function signInAtProvider(page: Page, login: string): Promise<void> {
  await page.click('button:has-text("Sign in with your organisation")');
  await page.waitForURL((url) => url.origin === idp.issuer);
  await page.fill('input[name="login"]', login);
  await page.fill('input[name="password"]', 'any');
  await page.click('button[type="submit"]');
  await page.click('button[type="submit"]:has-text("Continue")');
  await page.waitForURL((url) => url.href.startsWith(ide));
}

const sessionOf = (page: Page) => page.evaluate(() => JSON.parse((globalThis as any).sessionStorage.getItem('datamesh:session') ?? 'null') as { token: string; refreshToken: string | null } | null);

describe('the IDE signed in with the organisation\'s identity provider', () => {
  it('signs in by authorization code with PKCE, queries as that person, renews the token before it expires, never shows it, and signs out at the provider', async () => {
    await mkdir(artifacts, { recursive: true });
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 }, permissions: ['clipboard-read', 'clipboard-write'] });
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    const sent: string[] = [];
    const tokenRequests: string[] = [];
    page.on('request', (request) => {
      if (request.url().startsWith(`${new URL(ide).origin}/graphql`)) sent.push(request.headers().authorization ?? '');
      if (request.url().startsWith(`${idp.issuer}/token`)) tokenRequests.push(request.postData() ?? '');
    });
    await page.goto(ide);
    // No development sign-in here (the gateway does not trust the development issuer): the organisation's.
    await expect.poll(() => page.locator('button:has-text("Sign in with your organisation")').count()).toBe(1);
    expect(await page.locator('select[aria-label="role"]').count()).toBe(0);
    await page.screenshot({ path: join(artifacts, 'ide-oidc-signed-out.png') });

    await signInAtProvider(page, 'ana');
    await expect.poll(() => page.locator('[aria-label="signed in"]').textContent(), { timeout: 15_000 }).toMatch(/Signed in as ana · roles analyst · regions EMEA/);
    // The code was exchanged with the PKCE verifier, and the address bar no longer holds it.
    expect(tokenRequests[0]).toMatch(/grant_type=authorization_code/);
    expect(tokenRequests[0]).toMatch(/code_verifier=[\w-]{43,}/);
    expect(page.url()).toBe(ide);
    const first = (await sessionOf(page))!;
    expect(first.refreshToken).toEqual(expect.any(String));
    const claims = JSON.parse(Buffer.from(first.token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    expect(claims).toMatchObject({ iss: idp.issuer, aud: 'data-mesh', sub: 'ana', roles: ['analyst'], regions: ['EMEA'], client_id: CLIENT_ID });

    // A query as ana: the gateway verified the provider's token (row policy: EMEA only).
    await page.waitForSelector('.graphiql-container');
    let shown = '';
    const run = async (query: string) => {
      await pasteInto(page, EDITORS.query, query);
      await page.waitForSelector(`.graphiql-tab-active >> text=${/query (\w+)/.exec(query)![1]}`);
      const requests = sent.length;
      await page.click('.graphiql-execute-button');
      await expect.poll(() => sent.length, { timeout: 10_000 }).toBeGreaterThan(requests);
      // The answer shown, once it replaced the one before.
      const before = shown;
      await expect.poll(async () => (shown = await copyFrom(page, EDITORS.response)) !== before && shown.includes('"region"'), { timeout: 15_000 }).toBe(true);
      return JSON.parse(shown);
    };
    const answer = await run('query Regions { customers(first: 5) { nodes { id region } } }');
    expect(answer.errors).toBeUndefined();
    expect(answer.data.customers.nodes.map((c: { region: string }) => c.region)).toEqual(Array(5).fill('EMEA'));
    expect(sent.at(-1)).toBe(`Bearer ${first.token}`);
    // Never shown: not in the headers editor, not in the page's text.
    const editors = await shownInEditors(page);
    for (const secret of [first.token.split('.')[2]!, first.refreshToken!]) {
      expect(editors.some((value) => value.includes(secret))).toBe(false);
      expect(await page.evaluate(() => document.body.innerText)).not.toContain(secret);
    }
    await page.screenshot({ path: join(artifacts, 'ide-oidc-signed-in.png') });

    // Renewed before it expires (8 s here): a refresh grant, and the next query carries the new token.
    await expect.poll(() => idp.grants.filter((grant) => grant === 'refresh_token').length, { timeout: 15_000, interval: 200 }).toBeGreaterThan(0);
    await expect.poll(async () => (await sessionOf(page))!.token, { timeout: 5_000 }).not.toBe(first.token);
    const renewed = (await sessionOf(page))!;
    const again = await run('query RegionsAgain { customers(first: 2) { nodes { id region } } }');
    expect(again.errors).toBeUndefined();
    expect(sent.at(-1)).toBe(`Bearer ${renewed.token}`);

    // Signing out ends the provider's session too, and comes back signed out.
    await page.click('button:has-text("Sign out")');
    await page.waitForURL((url) => url.origin === idp.issuer);
    await page.click('button:has-text("Yes, sign me out")');
    await page.waitForURL((url) => url.href.startsWith(ide));
    await expect.poll(() => page.locator('button:has-text("Sign in with your organisation")').count(), { timeout: 10_000 }).toBe(1);
    expect(await sessionOf(page)).toBeNull();
    // Signed out at the provider: signing in again asks for the login again.
    await page.click('button:has-text("Sign in with your organisation")');
    await page.waitForURL((url) => url.origin === idp.issuer);
    expect(await page.locator('input[name="login"]').count()).toBe(1);
    expect(problems).toEqual([]);
    await page.close();
  }, 120_000);

  it('refuses an answer it did not ask for: a code without its state, or a forged state', async () => {
    const page = await browser.newPage();
    await page.goto(ide);
    // Started by this tab, answered with another state: the exchange is refused, nothing is signed in.
    await page.evaluate(() => (globalThis as any).sessionStorage.setItem('datamesh:oidc-pending', JSON.stringify({ verifier: 'v'.repeat(43), state: 'expected-state' })));
    await page.goto(`${ide}?code=stolen-code&state=forged-state&iss=${encodeURIComponent(idp.issuer)}`);
    await expect.poll(() => page.locator('[role="alert"]').textContent(), { timeout: 10_000 }).toMatch(/state/i);
    expect(await sessionOf(page)).toBeNull();
    expect(page.url()).toBe(ide);
    // A code arriving with no sign-in started here is not exchanged at all.
    const before = idp.grants.length;
    await page.goto(`${ide}?code=stolen-code&state=whatever`);
    await expect.poll(() => page.locator('button:has-text("Sign in with your organisation")').count()).toBe(1);
    expect(idp.grants.length).toBe(before);
    await page.close();
  });

  it('looks like GraphiQL, light or dark as the system or GraphiQL\'s own setting says', async () => {
    const background = (page: Page) => colourOf(page, '#ide', 'backgroundColor');
    const light = await browser.newPage({ colorScheme: 'light' });
    await light.goto(ide);
    await light.waitForSelector('button:has-text("Sign in with your organisation")');
    expect(luminance(await background(light))).toBeGreaterThan(0.9);
    const dark = await browser.newPage({ colorScheme: 'dark' });
    await dark.goto(ide);
    await dark.waitForSelector('button:has-text("Sign in with your organisation")');
    expect(luminance(await background(dark))).toBeLessThan(0.25);
    await dark.screenshot({ path: join(artifacts, 'ide-oidc-signed-out-dark.png') });
    // GraphiQL's stored choice wins over the system's.
    await light.evaluate(() => (globalThis as any).localStorage.setItem('graphiql:theme', 'dark'));
    await light.reload();
    await light.waitForSelector('button:has-text("Sign in with your organisation")');
    expect(luminance(await background(light))).toBeLessThan(0.25);
    await light.close();
    await dark.close();
  });

  it('lets the page connect to its own origin and the provider\'s alone, and says only what a browser needs to sign in', async () => {
    const page = await fetch(ide);
    expect(page.headers.get('content-security-policy')).toMatch(new RegExp(`connect-src 'self' ${idp.issuer.replace(/[.]/g, '\\.')};`));
    const config = (await (await fetch(new URL('config.json', ide))).json()) as Record<string, unknown>;
    expect(config).toEqual({ endpoint: '/graphql', devSignIn: null, oidc: { issuer: idp.issuer, clientId: CLIENT_ID, scope: 'openid profile offline_access', resource: 'urn:datamesh:api' } });
  });

  it('lets the gateway trust the provider\'s tokens only: a token the provider did not sign is refused', async () => {
    const forged = `${Buffer.from(JSON.stringify({ alg: 'RS256', kid: 'test-idp-1' })).toString('base64url')}.${Buffer.from(JSON.stringify({ iss: idp.issuer, aud: 'data-mesh', sub: 'mallory', roles: ['steward'], exp: Math.floor(Date.now() / 1000) + 60 })).toString('base64url')}.${'A'.repeat(342)}`;
    const refused = await postGraphQL(gateway.url, '{ customers(first: 1) { nodes { id } } }', undefined, { authorization: `Bearer ${forged}` });
    expect(refused.status).toBe(401);
    expect(refused.body.errors?.[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'INVALID_SIGNATURE' });
  });
});
