/**
 * The registry's command line as a domain team's CI runs it (`npm run registry -- …`, exit codes
 * and reports), against a PostgreSQL registry shared with a gateway; and every misuse of it.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runRegistryCli } from '../gateway/registry/cli.js';
import { freePort, postGraphQL, startTestGateway, startTestMesh, testGatewayConfig, tokenFor, type TestMesh } from './harness/mesh.js';
import { onPostgres, TEST_POSTGRES } from './harness/postgres.js';

const run = promisify(execFile);
const schema = `registry_cli_${randomUUID().slice(0, 8)}`;
const pgRegistry = `${TEST_POSTGRES}/test?schema=${schema}`;
let mesh: TestMesh;

/** The command as CI runs it: a process of its own, its exit code and its output. */
async function registryProcess(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'gateway/registry/cli.ts', ...args], { env: { ...process.env, REGISTRY_USER: 'ci' } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

beforeAll(async () => {
  mesh = await startTestMesh();
});

afterAll(async () => {
  await mesh?.stop();
  await onPostgres(`DROP SCHEMA IF EXISTS ${schema} CASCADE`, 'test');
});

describe('the registry command line with a PostgreSQL registry', () => {
  it('publishes each running subgraph, and a gateway serves what it composed', async () => {
    const first = await registryProcess('publish', 'customers', '--introspect', mesh.subgraphs.customers!.url, '--registry', pgRegistry);
    expect(first).toMatchObject({ code: 0, stderr: '' });
    expect(first.stdout).toMatch(/^ACCEPTED: publish customers to postgres:\/\/postgres@127\.0\.0\.1:5432\/test/);
    expect(first.stdout).toContain('Published customers version 1 (registry revision 1)');
    for (const name of ['products', 'finance']) {
      expect((await runRegistryCli(['publish', name, '--introspect', mesh.subgraphs[name]!.url, '--registry', pgRegistry])).exitCode).toBe(0);
    }
    const status = await runRegistryCli(['status', '--registry', pgRegistry]);
    expect(status.output).toMatch(/^revision 3, supergraph [0-9a-f]{12}/);
    expect(status.output).toMatch(/customers {4}v1 {2}http:\/\/127\.0\.0\.1:\d+\/graphql {2}by /);

    const gateway = await startTestGateway(testGatewayConfig({ dataDir: mesh.dataDir, name: 'pg', supergraph: { kind: 'registry', registryUrl: pgRegistry, pollMs: 100 } }));
    try {
      await gateway.ready;
      const { body } = await postGraphQL(gateway.url, '{ products(first: 1) { nodes { sku } } }', undefined, { authorization: `Bearer ${tokenFor()}` });
      expect(body.errors).toBeUndefined();
      expect((await (await fetch(new URL('/health/ready', gateway.url))).json()) as unknown).toMatchObject({ supergraph: { origin: 'registry revision 3' } });
    } finally {
      await gateway.stop();
    }
  });

  it('exits 1 with the report when a check refuses, and 2 when the command itself fails', async () => {
    const sdlFile = join(mesh.dataDir, 'broken.graphql');
    await writeFile(sdlFile, 'type Query { oops: String }');
    const refused = await registryProcess('check', 'customers', '--schema', sdlFile, '--registry', pgRegistry);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toMatch(/^REFUSED: customers against postgres:/);
    expect(refused.stdout).toMatch(/error\s+GOVERNANCE_POLICY_SPEC_MISMATCH: The subgraph does not @link the policy spec/);
    expect(refused.stdout).toMatch(/error\s+GOVERNANCE_UNCLASSIFIED Query\.oops/);

    const failed = await registryProcess('rollback', 'customers', '--to', '7', '--registry', pgRegistry);
    expect(failed).toMatchObject({ code: 2, stdout: '' });
    expect(failed.stderr).toMatch(/^error REGISTRY_UNKNOWN_VERSION: "customers" has no version 7; versions: 1/);
  });

  it('publishes every running subgraph in one step, then finds nothing to publish', async () => {
    const list = ['customers', 'products', 'finance'].map((name) => `${name}=${mesh.subgraphs[name]!.url}`).join(',');
    const registryDir = join(mesh.dataDir, 'registry-running');
    const first = await runRegistryCli(['publish-running', '--subgraphs', list, '--registry', registryDir, '--by', 'deploy-bot']);
    expect(first.exitCode).toBe(0);
    expect(first.output.match(/^Published \w+ version 1/gm)).toEqual(['Published customers version 1', 'Published products version 1', 'Published finance version 1']);
    const again = await runRegistryCli(['publish-running', '--subgraphs', list, '--registry', registryDir]);
    expect(again.exitCode).toBe(0);
    expect(again.output.match(/^UNCHANGED: publish \w+/gm)).toHaveLength(3);
    expect((await runRegistryCli(['history', 'finance', '--registry', registryDir])).output).toMatch(/\* v1 .* deploy-bot /);
  });

  it('reports JSON for CI tools', async () => {
    const { exitCode, output } = await runRegistryCli(['check', 'products', '--introspect', mesh.subgraphs.products!.url, '--registry', pgRegistry, '--json']);
    expect(exitCode).toBe(0);
    expect(JSON.parse(output)).toEqual({
      subgraph: 'products',
      accepted: true,
      unchanged: true,
      findings: [expect.objectContaining({ code: 'UNCHANGED', severity: 'info' })],
    });
  });
});

describe('misuse of the registry command line', () => {
  const cli = (...args: string[]) => runRegistryCli([...args, '--registry', mesh.registryUrl]);

  it('refuses every malformed call with a code, and never writes', async () => {
    const before = (await cli('status')).output;
    const down = `http://127.0.0.1:${await freePort()}/graphql`;
    const cases: [string[], RegExp][] = [
      [[], /^error REGISTRY_USAGE: Give a command \(run with --help for the list\)/],
      [['deploy', 'customers'], /^error REGISTRY_USAGE: unknown command 'deploy'/],
      [['publish', 'customers', '--force'], /^error REGISTRY_USAGE: unknown option '--force'/],
      [['publish'], /^error REGISTRY_USAGE: missing required argument 'subgraph'/],
      [['publish', 'customers'], /^error REGISTRY_USAGE: Give the SDL with exactly one of --schema FILE or --introspect URL/],
      [['publish', 'customers', '--schema', 'a', '--introspect', 'http://h/graphql'], /exactly one of/],
      [['check', 'customers', '--schema', '/nonexistent/sdl.graphql'], /^error REGISTRY_SDL_UNAVAILABLE: .*ENOENT/],
      [['check', 'customers', '--introspect', down], /^error REGISTRY_SDL_UNAVAILABLE: The SDL of customers cannot be read from http:\/\/127\.0\.0\.1:\d+\/graphql/],
      [['check', '../../etc', '--introspect', mesh.subgraphs.customers!.url], /^error REGISTRY_INVALID_NAME/],
      [['publish', 'customers', '--introspect', mesh.subgraphs.customers!.url, '--url', 'file:///etc/passwd'], /^error REGISTRY_INVALID_URL/],
      [['publish', 'newdomain', '--schema', join(mesh.dataDir, 'supergraph.graphql')], /^error REGISTRY_USAGE: newdomain has no published version yet: give its routing URL with --url/],
      [['rollback', 'customers', '--to', '1; drop table x'], /^error REGISTRY_USAGE: option '--to <version>' argument '1; drop table x' is invalid\. expected a whole number/],
      [['check', 'customers', '--introspect', mesh.subgraphs.customers!.url, '--usage-days', 'soon'], /^error REGISTRY_USAGE: option '--usage-days <n>' argument 'soon' is invalid\. expected a whole number/],
      [['clients', 'register', 'app'], /^error REGISTRY_USAGE: clients register needs a client and either document files or --manifest FILE/],
      [['history', 'nobody'], /^error REGISTRY_UNKNOWN_SUBGRAPH/],
      [['publish-running', '--subgraphs', 'customers'], /^error REGISTRY_USAGE: SUBGRAPHS entry "customers" is not name=url/],
      [['publish-running', '--subgraphs', `customers=${down}`], /^error REGISTRY_SDL_UNAVAILABLE: The SDL of customers cannot be read/],
      [['clients', 'register', 'web app', 'x.graphql'], /^error REGISTRY_INVALID_NAME/],
    ];
    for (const [args, message] of cases) {
      const result = await cli(...args);
      expect(result.exitCode, args.join(' ')).toBe(2);
      expect(result.output, args.join(' ')).toMatch(message);
    }
    expect((await cli('status')).output).toBe(before);
    // --help, on the whole and on each command: the usage, exit 0, nothing done.
    const help = await cli('--help');
    expect(help.exitCode).toBe(0);
    for (const command of ['check', 'publish', 'history', 'documents', 'rollback', 'remove', 'owner', 'publish-running', 'status', 'clients']) expect(help.output).toContain(`  ${command}`);
    const publishHelp = await cli('publish', '--help');
    expect(publishHelp).toMatchObject({ exitCode: 0, output: expect.stringMatching(/^Usage: npm run -s registry -- publish \[options\] <subgraph>[\s\S]*--introspect <url>/) });
  });

  it('registers only client documents that validate against the current API schema', async () => {
    const good = join(mesh.dataDir, 'orders.graphql');
    const bad = join(mesh.dataDir, 'bad.graphql');
    await writeFile(good, 'query RecentOrders { orders(first: 10) { nodes { id total } } }');
    await writeFile(bad, 'query Nope { orders { nodes { secretColumn } } }');
    const refused = await cli('clients', 'register', 'finance-app', bad);
    expect(refused).toMatchObject({ exitCode: 2, output: expect.stringMatching(/^error REGISTRY_INVALID_DOCUMENT: .*bad\.graphql does not validate.*secretColumn/) });
    const accepted = await cli('clients', 'register', 'finance-app', good);
    expect(accepted).toEqual({ exitCode: 0, output: 'Registered 1 document(s) for finance-app; checks now protect the coordinates they use.' });
  });

  it('removes a subgraph only when nothing it serves is in use, and sets owners, on the store', async () => {
    const before = (await cli('status')).output;
    const refused = await cli('remove', 'finance');
    expect(refused.exitCode).toBe(1);
    expect(refused.output).toMatch(/^REFUSED: remove finance from /);
    expect(refused.output).toMatch(/BREAKING_CHANGE_IN_USE Query\.orders: .*finance-app \(registered: orders\.graphql\)/);
    expect(refused.output).toMatch(/Nothing was removed; the serving supergraph is unchanged\./);
    expect((await cli('status')).output).toBe(before);
    expect(await cli('owner', 'customers', '--team', 'crm', '--by', 'ops')).toEqual({ exitCode: 0, output: 'customers is owned by team crm: only its tokens (and the governance group\'s) may publish, roll back or remove it through the registry API.' });
    expect((await cli('owner', 'customers')).output).toMatch(/^error REGISTRY_USAGE: required option '--team <team>' not specified/);
    expect((await cli('publish', 'customers', '--schema', 'x', '--token-file', 'y')).output).toMatch(/^error REGISTRY_USAGE: --token-file and --team go with the registry API/);
    const noToken = await runRegistryCli(['remove', 'customers', '--registry', `http://127.0.0.1:${await freePort()}/registry`], { ...process.env, REGISTRY_TOKEN: '' });
    expect(noToken).toEqual({ exitCode: 2, output: expect.stringMatching(/^error REGISTRY_UNAUTHENTICATED: The registry API at http:\/\/127\.0\.0\.1:\d+\/registry needs a token: set REGISTRY_TOKEN, or give --token-file\.$/) });
  });
});
