/**
 * The README's first command, as a newcomer runs it: `npm start` on the default data set, then the
 * README's cross-domain query, whose answer must be the one the README shows. A second start must
 * reuse the generated data and warehouses.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, postGraphQL, tokenFor } from './harness/mesh.js';
import { mintAsReadme, npmStart, readmeExample, readmeSupportExample, stop, until, type Started } from './harness/npm-start.js';

describe('npm start', () => {
  let dataDir: string;
  let env: NodeJS.ProcessEnv;
  let first: Started | undefined;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'mesh-start-'));
    const [gateway, ...subgraphPorts] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    env = {
      DATA_DIR: dataDir,
      PORT: String(gateway),
      SUBGRAPHS: ['customers', 'products', 'finance'].map((name, i) => `${name}=http://127.0.0.1:${subgraphPorts[i]}/graphql`).join(','),
      SCALE: '',
      SEED: '',
      LOG_LEVEL: 'info',
    };
    first = await npmStart(env);
  });

  afterAll(async () => {
    await stop(first);
    await rm(dataDir, { recursive: true, force: true });
  });

  it('prints where the gateway and subgraphs listen', () => {
    expect(first!.output()).toContain(`Gateway:   http://localhost:${env.PORT}/graphql`);
    expect(first!.output()).toMatch(/raw data generated/);
    expect(first!.output()).toMatch(/warehouse built/);
  });

  it("answers the README's query, with the README's token, with the README's answer", async () => {
    const { tokenArgs, body, answer } = await readmeExample();
    const token = await mintAsReadme(tokenArgs);
    expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const post = (authorization?: string) =>
      fetch(`http://localhost:${env.PORT}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
        body,
      });
    const response = await post(`Bearer ${token}`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual(answer);
    // As the README says: support of the region sees the name unmasked.
    const supportExample = await readmeSupportExample();
    const support = await mintAsReadme(supportExample.tokenArgs);
    const seen = (await (await post(`Bearer ${support}`)).json()) as { data: { customer: { name: string } } };
    expect(seen.data.customer.name).toBe(supportExample.sees);
    // As the README says: without the token, the customer is not served.
    const anonymous = (await (await post()).json()) as { data: { customer: unknown } };
    expect(anonymous.data.customer).toBeNull();
  });

  it('refuses a second start while the mesh runs: says which ports are taken, exits 1, starts nothing', async () => {
    const second = spawn('npm', ['start'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    for (const stream of [second.stdout!, second.stderr!]) stream.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const [code] = (await once(second, 'exit')) as [number];
    expect(code).toBe(1);
    expect(output).toMatch(/The mesh cannot start: ports it needs are not free \(is another mesh running\?\)/);
    expect(output).toContain(`gateway    127.0.0.1:${env.PORT} (in use)`);
    for (const name of ['customers', 'products', 'finance']) expect(output).toMatch(new RegExp(`${name}\\s+127\\.0\\.0\\.1:\\d+ \\(in use\\)`));
    expect(output).not.toMatch(/The mesh is ready|started \(pid/);
    // The running mesh is untouched.
    expect((await fetch(`http://127.0.0.1:${env.PORT}/health/ready`)).status).toBe(200);
  });

  it('stops a subgraph run by `npm run subgraph` on SIGTERM to npm, with its shutdown checkpoint; audit:verify passes on the folder, as the README writes it', async () => {
    const port = await freePort();
    const auditDir = join(dataDir, 'audit', 'customers-green');
    const green = spawn('npm', ['run', 'subgraph', '--', 'customers'], { env: { ...process.env, ...env, PORT: String(port), AUDIT_DIR: auditDir }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    for (const stream of [green.stdout!, green.stderr!]) stream.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const readyUrl = `http://127.0.0.1:${port}/health/ready`;
    await until(() => output.includes('subgraph customers serving'), 60_000, 'the green subgraph');
    await expect.poll(async () => (await fetch(readyUrl).catch(() => null))?.status, { timeout: 10_000 }).toBe(200);
    // One operation, signed as the gateway signs it, so that the log holds a record.
    const { postSubgraph } = await import('./harness/mesh.js');
    expect((await postSubgraph(`http://127.0.0.1:${port}/graphql`, '{ customers(first: 1) { nodes { id } } }', undefined, { authorization: `Bearer ${tokenFor()}` })).status).toBe(200);
    const exited = once(green, 'exit');
    green.kill('SIGTERM'); // npm's own process, as `kill <pid>` or a process manager sends it
    await exited;
    // Nothing is left serving (the service got the signal, not only npm).
    await expect.poll(async () => (await fetch(readyUrl).catch(() => null)) === null, { timeout: 10_000 }).toBe(true);
    const checkpoints = await readFile(join(auditDir, 'customers.jsonl.checkpoints.jsonl'), 'utf8');
    expect(checkpoints).toMatch(/"reason":"shutdown"/);
    const verified = spawn('bash', ['-c', `npm run -s audit:verify -- ${auditDir}/*.jsonl`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let report = '';
    for (const stream of [verified.stdout!, verified.stderr!]) stream.on('data', (chunk: Buffer) => (report += chunk.toString()));
    const [code] = (await once(verified, 'exit')) as [number];
    expect(report).toMatch(/customers\.jsonl: checkpoints OK/);
    expect(report).not.toMatch(/BROKEN|NO CHECKPOINTS/);
    expect(code).toBe(0);
  });

  it('supervises: each service killed in turn is back on its own, and the living domains never fail', async () => {
    const steward = tokenFor();
    const gateway = `http://127.0.0.1:${env.PORT}/graphql`;
    const probes = {
      customers: '{ customers(first: 2) { nodes { id } } }',
      products: '{ products(first: 2) { nodes { sku } } }',
      finance: '{ orders(first: 2) { nodes { id } } }',
    } as const;
    type Domain = keyof typeof probes;
    const failures: Record<Domain, { at: number; error: string }[]> = { customers: [], products: [], finance: [] };
    const lastOk: Record<Domain, number> = { customers: 0, products: 0, finance: 0 };
    let running = true;
    const stream = (domain: Domain) =>
      (async () => {
        while (running) {
          const at = Date.now();
          // Each probe asks the subgraphs (no-cache): a kept answer would say nothing of whether they are up.
          const answer = await postGraphQL(gateway, probes[domain], undefined, { authorization: `Bearer ${steward}`, 'cache-control': 'no-cache' }).catch((error: unknown) => ({ status: 0, body: { errors: [{ message: String(error) }] } }));
          if (answer.status === 200 && !answer.body.errors) lastOk[domain] = Date.now();
          else failures[domain].push({ at, error: JSON.stringify(answer.body.errors?.[0]).slice(0, 200) });
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      })();
    const streams = (Object.keys(probes) as Domain[]).map(stream);
    const pidOf = (label: string) => {
      const matches = [...first!.output().matchAll(new RegExp(`\\[launcher\\] ${label} started \\(pid (\\d+)\\)`, 'g'))];
      return Number(matches.at(-1)![1]);
    };
    try {
      for (const killed of ['customers', 'products', 'finance'] as Domain[]) {
        const before = { ...failures };
        const counts = Object.fromEntries(Object.entries(before).map(([d, f]) => [d, f.length])) as Record<Domain, number>;
        const pid = pidOf(killed);
        const killedAt = Date.now();
        process.kill(pid, 'SIGKILL');
        // Back: a new process, and the domain answers through the gateway again.
        await until(() => pidOf(killed) !== pid && lastOk[killed] > killedAt + 200, 45_000, `${killed} back through the gateway`);
        expect(Date.now() - killedAt).toBeLessThan(45_000);
        for (const living of (Object.keys(probes) as Domain[]).filter((d) => d !== killed)) {
          expect(failures[living].slice(counts[living]), `${living} while ${killed} was down`).toEqual([]);
        }
        // Meanwhile the killed domain's fields were answered as unavailable, never as an internal error.
        for (const failure of failures[killed].slice(counts[killed])) expect(failure.error).toMatch(/SUBGRAPH_UNAVAILABLE/);
      }
      const pid = pidOf('gateway');
      const killedAt = Date.now();
      process.kill(pid, 'SIGKILL');
      // The domains keep serving while the gateway is down, and the gateway is back on its own.
      for (const { port } of (env.SUBGRAPHS as string).split(',').map((entry) => new URL(entry.split('=')[1]!))) {
        expect((await fetch(`http://127.0.0.1:${port}/health/ready`)).status).toBe(200);
      }
      await until(() => pidOf('gateway') !== pid && (Object.keys(probes) as Domain[]).every((d) => lastOk[d] > killedAt + 200), 45_000, 'the gateway back');
      expect(first!.output()).not.toMatch(/stopping the mesh/);
      expect(first!.output()).toMatch(/\[launcher\] finance stopped \(SIGKILL\); restarting it in 0\.5 s/);
    } finally {
      running = false;
      await Promise.all(streams);
    }
  });

  it('stops every part on Ctrl-C, and a second start reuses the data', async () => {
    await stop(first);
    const health = await fetch(`http://127.0.0.1:${env.PORT}/health/live`).catch(() => null);
    expect(health).toBeNull();
    // Every service wrote its shutdown checkpoint: the README's `audit:verify -- data/audit/*.jsonl` passes.
    const verified = spawn('bash', ['-c', `npm run -s audit:verify -- ${dataDir}/audit/*.jsonl`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let report = '';
    for (const stream of [verified.stdout!, verified.stderr!]) stream.on('data', (chunk: Buffer) => (report += chunk.toString()));
    const [code] = (await once(verified, 'exit')) as [number];
    for (const service of ['gateway', 'customers', 'products', 'finance']) expect(report).toMatch(new RegExp(`${service}\\.jsonl: checkpoints OK`));
    expect(report).not.toMatch(/BROKEN|NO CHECKPOINTS/);
    expect(code).toBe(0);
    const second = await npmStart(env);
    try {
      expect(second.output()).toMatch(/raw data reused/);
      expect(second.output()).not.toMatch(/raw data generated|warehouse built/);
      for (const domain of ['customers', 'products', 'finance']) {
        expect(second.output()).toMatch(new RegExp(`warehouse reused\\s+service: "${domain}"\\s+domain: "${domain}"`));
      }
    } finally {
      await stop(second);
    }
  });

  it('gives up on a service that keeps exiting, says so, and serves the others', async () => {
    const bogusPort = await freePort();
    const started = await npmStart({ ...env, SUBGRAPHS: `${env.SUBGRAPHS},bogus=http://127.0.0.1:${bogusPort}/graphql` });
    try {
      // The list of services follows the ready line.
      await until(() => started.output().includes('Customer and finance data need a token'), 5_000, 'the list of services');
      expect(started.output()).toMatch(/\[launcher\] bogus stopped \(exit code 2\); restarting it in 0\.5 s/);
      expect(started.output()).toMatch(/\[launcher\] bogus failed: it stopped 5 times within 60 s \(last: exit code 2\); it stays down, the other services keep serving/);
      expect(started.output()).toMatch(/bogus\s+http:\/\/127\.0\.0\.1:\d+\/graphql {2}\(failed: see above\)/);
      const answer = await postGraphQL(`http://127.0.0.1:${env.PORT}/graphql`, '{ products(first: 1) { nodes { sku } } }');
      expect(answer.body).toEqual({ data: { products: { nodes: [{ sku: expect.any(String) }] } } });
      expect(started.child.exitCode).toBeNull();
    } finally {
      await stop(started);
    }
  });

});
