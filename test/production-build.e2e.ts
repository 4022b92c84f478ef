/**
 * The production build, as an operator runs it: `npm run build`, then `NODE_ENV=production npm start`
 * with a production configuration (an identity provider of its own, its own keys). Every service
 * runs its compiled JavaScript with plain node, loading production dependencies only (a hook
 * refuses any other package, as the image, which installs no others, would), and the mesh answers
 * the README's first query as `npm start` does (test/start.e2e.ts): the same answer, its pseudonym
 * made with this deployment's key.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintDevToken, type DevTokenClaims } from '../policy/identity-config.js';
import type { IssuerConfig } from '../policy/identity.js';
import { DEV_HASH_KEY } from '../policy/masking.js';
import { KIT_VERSION } from '../subgraphs/kit/index.js';
import { freePort } from './harness/mesh.js';
import { npmStart, readmeExample, readmeSupportExample, stop, type Started } from './harness/npm-start.js';
import { expectedPseudonym } from './harness/pseudonym.js';
import { runProcess, type Finished } from './harness/run-process.js';

const root = resolve(import.meta.dirname, '..');
const guard = pathToFileURL(join(root, 'test/harness/production-dependencies.mjs')).href;

/** The claims `npm run token -- <args>` puts in a token (--role and --region, repeatable). */
function claimsOf(args: readonly string[]): DevTokenClaims {
  const values = (flag: string) => args.flatMap((arg, i) => (args[i - 1] === flag ? [arg] : []));
  return { subject: 'dev-user', roles: values('--role'), regions: values('--region') };
}

const runIn = (cwd: string, command: string, args: readonly string[], env: NodeJS.ProcessEnv = {}) => runProcess(command, args, { cwd, env });
const run = (command: string, args: readonly string[], env: NodeJS.ProcessEnv = {}) => runIn(root, command, args, env);

describe('the production build', () => {
  let work: string;
  let built: Finished;
  let mesh: Started | undefined;
  let port: number;
  let guardEnv: NodeJS.ProcessEnv;
  const issuer: IssuerConfig = { issuer: 'https://idp.production.test/', audience: 'data-mesh', algorithms: ['HS256'], secret: 'production-test-issuer-secret-0123456789' };
  const maskKey = 'production-test-mask-key-0123456789abcdef';

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'mesh-production-build-'));
    built = await run('npm', ['run', 'build']);
    // The packages a production install has, for the guard.
    const listed = await run('npm', ['ls', '--omit=dev', '--all', '--parseable']);
    if (listed.code !== 0) throw new Error(`npm ls failed:\n${listed.output}`);
    await writeFile(join(work, 'packages.json'), JSON.stringify({ root, packages: listed.output.trim().split('\n') }));
    guardEnv = { NODE_OPTIONS: `--import=${guard}`, PRODUCTION_PACKAGES: join(work, 'packages.json') };
    const [gateway, ...subgraphs] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    port = gateway;
    // The customers domain reads finance's orders (its input) under a token of its own, from the identity provider.
    const tokenFile = join(work, 'customers-inputs.token');
    await writeFile(tokenFile, jwt.sign({ roles: ['steward'], regions: [], azp: 'customers-inputs' }, issuer.secret!, { algorithm: 'HS256', issuer: issuer.issuer, audience: 'data-mesh', subject: 'customers-inputs', expiresIn: 3600 }));
    mesh = await npmStart({
      MESH_TOKEN_FILE: tokenFile,
      ...guardEnv,
      NODE_ENV: 'production',
      DATA_DIR: join(work, 'data'),
      PORT: String(gateway),
      SUBGRAPHS: ['customers', 'products', 'finance'].map((name, i) => `${name}=http://127.0.0.1:${subgraphs[i]}/graphql`).join(','),
      AUTH_ISSUERS: JSON.stringify([issuer]),
      DEV_JWT_SECRET: '',
      MASK_HASH_KEY: maskKey,
      SUBGRAPH_SIGNING_KEY: 'production-test-subgraph-signing-key-0123456789',
      AUDIT_SIGNING_KEY: 'production-test-audit-signing-key-0123456789',
      GATEWAY_WORKERS: '2',
      SCALE: '',
      SEED: '',
      LOG_LEVEL: 'info',
    });
  });

  afterAll(async () => {
    await stop(mesh);
    await rm(work, { recursive: true, force: true });
  });

  it('`npm run build` compiles the gateway, subgraphs, policy and command lines, with the IDE bundled', async () => {
    expect(built.code, built.output).toBe(0);
    expect(built.output).toMatch(/Built \d+ modules and \d+ files they read into dist\/ \(the IDE bundled\)/);
    for (const program of ['gateway/main', 'gateway/launcher/mesh-launcher', 'subgraphs/main', 'gateway/registry/cli', 'policy/audit-verify', 'subgraphs/quality', 'subgraphs/catalog']) {
      await expect(readFile(join(root, 'dist', `${program}.js`), 'utf8'), program).resolves.toMatch(/^import /m);
    }
    await expect(readFile(join(root, 'dist/subgraphs/customers/schema.graphql'), 'utf8')).resolves.toContain('type Customer');
    await expect(readFile(join(root, 'dist/subgraphs/mesh.json'), 'utf8')).resolves.toContain('./customers/index.js');
  });

  it('runs every service compiled, with plain node', async () => {
    const pids = [...mesh!.output().matchAll(/\[launcher\] (\w+) started \(pid (\d+)\)/g)];
    expect(pids.map((m) => m[1]).sort()).toEqual(['customers', 'finance', 'gateway', 'products']);
    for (const [, label, pid] of pids) {
      const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter(Boolean);
      const script = label === 'gateway' ? 'dist/gateway/main.js' : 'dist/subgraphs/main.js';
      expect(argv.slice(1, 2), label).toEqual([join(root, script)]);
      expect(argv.join(' '), label).not.toMatch(/tsx|\.ts\b/);
    }
  });

  it("answers the README's first query as `npm start` does, with this deployment's pseudonyms", async () => {
    const { tokenArgs, body, answer } = await readmeExample();
    const support = await readmeSupportExample();
    const readmeName = (answer as { data: { customer: { name: string } } }).data.customer.name;
    // The README's pseudonym is the development key's: the derivation here is the one the code uses.
    expect(expectedPseudonym(DEV_HASH_KEY, 'Customer.name', support.sees)).toBe(readmeName);
    const post = async (claims: DevTokenClaims) => {
      const response = await fetch(`http://127.0.0.1:${port}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${mintDevToken(claims, issuer)}` },
        body,
      });
      expect(response.status).toBe(200);
      return (await response.json()) as { data: { customer: { name: string } } };
    };
    const expected = structuredClone(answer) as { data: { customer: { name: string } } };
    expected.data.customer.name = expectedPseudonym(maskKey, 'Customer.name', support.sees);
    expect(await post(claimsOf(tokenArgs))).toEqual(expected);
    expect((await post(claimsOf(support.tokenArgs))).data.customer.name).toBe(support.sees);
  });

  it('serves the IDE from the bundle the build shipped', async () => {
    const served = await fetch(`http://127.0.0.1:${port}/ide/main.js`);
    expect(served.status).toBe(200);
    expect(await served.text()).toBe(await readFile(join(root, 'dist/gateway/ide/bundle/main.js'), 'utf8'));
  });

  it('loads production dependencies only, as the image does: the guard refuses a development package', async () => {
    const devOnly = await run('node', ['--input-type=module', '-e', "await import('tsx')"], guardEnv);
    expect(devOnly.code).not.toBe(0);
    expect(devOnly.output).toMatch(/Cannot find package 'tsx': not a production dependency/);
    const production = await run('node', ['--input-type=module', '-e', "await import('graphql'); await import('@duckdb/node-api'); console.log('loaded')"], guardEnv);
    expect(production.output.trim()).toBe('loaded');
  });

  it('packs the kit as a package a domain outside this repository installs: its types check the domain, its code runs on its own dependencies', async () => {
    const outside = join(work, 'acme-shipping');
    await cp(join(root, 'test/fixtures/outside-domain'), outside, { recursive: true });
    const packed = await run('npm', ['pack', join(root, 'dist/kit-package'), '--pack-destination', work]);
    expect(packed.code, packed.output).toBe(0);
    const tarball = join(work, `data-mesh-kit-${KIT_VERSION}.tgz`);
    await writeFile(join(outside, 'package.json'), JSON.stringify({ name: '@acme/shipping', private: true, type: 'module', peerDependencies: { '@data-mesh/kit': `^${KIT_VERSION}` }, devDependencies: { '@data-mesh/kit': `file:${tarball}`, '@types/node': '^24.0.0' } }));
    await writeFile(join(outside, 'tsconfig.json'), JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: ['node'] }, include: ['index.ts'] }));
    const installed = await runIn(outside, 'npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts']);
    expect(installed.code, installed.output).toBe(0);
    // The domain type-checks against the package's types (a wrong use would not).
    const checked = await runIn(outside, process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json']);
    expect(checked.code, checked.output).toBe(0);
    await writeFile(join(outside, 'wrong.ts'), "import { defineTable } from '@data-mesh/kit';\nexport const t = defineTable('t', { primaryKey: ['id'], columns: { id: 'no-such-type' } });\n");
    const wrong = await runIn(outside, process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '--noEmit', '--strict', '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--skipLibCheck', '--types', 'node', 'wrong.ts']);
    expect(wrong.code).not.toBe(0);
    expect(wrong.output).toMatch(/wrong\.ts.*no-such-type/s);
    // Its code loads from the installed package, on the package's own dependencies.
    const loaded = await runIn(outside, process.execPath, ['--input-type=module', '-e', "const kit = await import('@data-mesh/kit'); const testing = await import('@data-mesh/kit/testing'); console.log(kit.KIT_VERSION, typeof kit.defineDomain, typeof testing.startDomainForTest, import.meta.resolve('@data-mesh/kit'))"]);
    expect(loaded.output.trim()).toBe(`${KIT_VERSION} function function ${pathToFileURL(join(outside, 'node_modules/@data-mesh/kit/subgraphs/kit/index.js')).href}`);
  });

  it('refuses, with the command to run, a program the build does not hold; development tokens stay refused', async () => {
    // The build itself is a development tool: dist/ has no build.js.
    const missing = await run('node', ['gateway/launcher/run.js', 'gateway/launcher/build'], { NODE_ENV: 'production' });
    expect(missing.code).toBe(1);
    expect(missing.output).toContain('NODE_ENV=production runs the compiled build, and dist/ has no gateway/launcher/build.js: run `npm run build` first.');
    for (const program of ['../etc/passwd', 'gateway/../../x', 'node_modules/tsx/dist/cli', '']) {
      const refused = await run('node', ['gateway/launcher/run.js', program], { NODE_ENV: 'production' });
      expect(refused.code, program).toBe(2);
      expect(refused.output, program).toMatch(/^usage: node gateway\/launcher\/run\.js/m);
    }
    const token = await run('npm', ['run', '-s', 'token', '--', '--role', 'steward', '--no-region'], { ...guardEnv, NODE_ENV: 'production' });
    expect(token.code).toBe(2); // a command that failed (policy/command-line.ts)
    expect(token.output).toMatch(/Development tokens are refused in production/);
    expect(token.output).not.toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/m);
  });
});
