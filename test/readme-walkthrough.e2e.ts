/**
 * The README's walkthrough "a domain team ships a field", run as a reader runs it: in a copy of
 * this repository (the walkthrough edits the customers domain), with the mesh started by
 * `npm start`, each command taken from the README and run by bash, and its output compared with
 * the output the README shows. (The README's first query is run the same way by start.e2e.ts.)
 *
 * Only the ports differ: the README's 4000, 4001 and 4011 become free ports, so that runs never
 * collide; `/tmp/customers.graphql` becomes a file of this run's own.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REGISTRY_README } from '../gateway/registry/codes-doc.js';
import { freePort } from './harness/mesh.js';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The walkthrough's section of the README, and the blocks and quoted lines it is made of. */
async function walkthrough() {
  const readme = await readFile(REGISTRY_README, 'utf8');
  const start = readme.indexOf('### Walkthrough: a domain team ships a field');
  if (start < 0) throw new Error('the README has no walkthrough "a domain team ships a field"');
  const section = readme.slice(start, readme.indexOf('\n## ', start));
  /** Fenced blocks in order, each with its language and its text (indentation removed). */
  const blocks = [...section.matchAll(/^( *)```(\w*)\n([\s\S]*?)^\1```/gm)].map((m) => ({
    lang: m[2]!,
    text: m[3]!
      .split('\n')
      .map((line) => line.slice(m[1]!.length))
      .join('\n')
      .trimEnd(),
  }));
  const of = (lang: string) => blocks.filter((block) => block.lang === lang).map((block) => block.text);
  /** The plain block right after the given sh block: the output the README shows for it. */
  const outputAfter = (command: string) => {
    const at = blocks.findIndex((block) => block.lang === 'sh' && block.text === command);
    return blocks[at + 1]?.lang === '' ? blocks[at + 1]!.text : null;
  };
  const quoted = (pattern: RegExp) => {
    const found = pattern.exec(section)?.[1];
    if (!found) throw new Error(`the walkthrough no longer says ${pattern}`);
    return found.replace(/\s+/g, ' ');
  };
  const [schemaAddition] = of('graphql');
  const [resolverAddition] = of('ts');
  const [check, deploy, publish, query] = of('sh');
  if (!schemaAddition || !resolverAddition || !check || !deploy || !publish || !query) throw new Error('the walkthrough lost a step');
  return {
    schemaAddition,
    resolverAddition,
    check: { command: check, output: outputAfter(check)! },
    piiClassify: quoted(/\(`(@classify\(level: "INTERNAL", tags: \["pii"\]\))`\)/),
    piiError: quoted(/the check would have said\s+`(error GOVERNANCE_RULE_VIOLATION[^`]+)`/),
    deploy,
    publish: { command: publish, output: outputAfter(publish)! },
    reloadedOrigin: quoted(/logs `supergraph reloaded` with `origin: "([^"]+)"`/),
    query: { command: query, answer: JSON.parse(of('json')[0]!) as unknown },
    clientName: quoted(/sends `apollographql-client-name: ([\w-]+)`/),
    breakingCheck: quoted(/`(npm run -s registry -- check customers --introspect [^`]+)`/),
    breakingError: quoted(/`(error BREAKING_CHANGE_IN_USE[^`]+)`/),
    history: quoted(/`(npm run registry -- history customers)`/),
    rollback: { command: quoted(/`(npm run registry -- rollback customers)`/), output: of('').at(-1)! },
  };
}

/** An expected output block as a pattern: `…` stands for anything, every line in order. */
function expectOutput(actual: string, expected: string): void {
  const lines = expected.split('\n').map((line) => line.trim()).filter(Boolean);
  const pattern = lines.map((line) => line.split('…').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')).join('[\\s\\S]*');
  expect(actual, `output of the README's command, expected to show:\n${expected}`).toMatch(new RegExp(pattern));
}

describe("the README's walkthrough: a domain team ships a field", () => {
  let copy: string;
  let ports: { gateway: number; customers: number; products: number; finance: number; green: number };
  let env: NodeJS.ProcessEnv;
  let steps: Awaited<ReturnType<typeof walkthrough>>;
  const running: ChildProcess[] = [];
  let meshOutput = '';

  /** A README command as the reader types it, with this run's ports and files. */
  const localized = (command: string) =>
    command
      .replaceAll('localhost:4000', `localhost:${ports.gateway}`)
      .replaceAll('127.0.0.1:4001', `127.0.0.1:${ports.customers}`)
      .replaceAll('4011', String(ports.green))
      .replaceAll('/tmp/customers.graphql', join(copy, 'customers.graphql'));
  /** Runs a README command (a whole block) with bash in the copy. */
  const run = (command: string) => {
    const result = spawnSync('bash', ['-e', '-c', localized(command)], { cwd: copy, env, encoding: 'utf8', timeout: 60_000 });
    return { status: result.status, output: `${result.stdout}${result.stderr}`, stdout: result.stdout };
  };
  /** Starts a long-running README command in its own process group. */
  const startBackground = (command: string, onOutput: (text: string) => void) => {
    const child = spawn('bash', ['-c', localized(command)], { cwd: copy, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (chunk: Buffer) => onOutput(chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => onOutput(chunk.toString()));
    running.push(child);
    return child;
  };
  const until = async (done: () => boolean | Promise<boolean>, timeoutMs: number, what: string | (() => string)) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await done())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}\n${meshOutput.slice(-3000)}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  };

  beforeAll(async () => {
    steps = await walkthrough();
    // A copy of the checkout (tracked and new files, not ignored ones), sharing node_modules.
    copy = await mkdtemp(join(tmpdir(), 'mesh-walkthrough-'));
    const files = spawnSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: root, encoding: 'utf8' }).stdout.split('\0').filter(Boolean);
    for (const file of files) {
      await mkdir(dirname(join(copy, file)), { recursive: true });
      await cp(join(root, file), join(copy, file)).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error; // a file deleted but not yet committed
      });
    }
    await symlink(join(root, 'node_modules'), join(copy, 'node_modules'));
    const [gateway, customers, products, finance, green] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    ports = { gateway: gateway!, customers: customers!, products: products!, finance: finance!, green: green! };
    env = {
      ...process.env,
      PORT: String(ports.gateway),
      SUBGRAPHS: `customers=http://127.0.0.1:${ports.customers}/graphql,products=http://127.0.0.1:${ports.products}/graphql,finance=http://127.0.0.1:${ports.finance}/graphql`,
      // The gateway writes usage every 10 s; the walkthrough's step 5 waits for it, this run less long.
      USAGE_FLUSH_MS: '500',
      DATA_DIR: '',
      SCALE: '',
      SEED: '',
      LOG_LEVEL: 'info',
    };
    // "With the mesh running (`npm start`)".
    const mesh = startBackground('npm start', (text) => (meshOutput += text));
    const exited = once(mesh, 'exit');
    await Promise.race([
      until(() => meshOutput.includes('The mesh is ready.'), 150_000, 'npm start'),
      exited.then(() => {
        throw new Error(`npm start exited:\n${meshOutput}`);
      }),
    ]);
    // The PORT of `npm start` is the gateway's; the README's later commands set PORT themselves.
    delete env.PORT;
  });

  afterAll(async () => {
    // Ctrl-C to each process group, then wait until every process of it is gone (npm may exit
    // before the node process under it has written its last audit checkpoint).
    const alive = (group: number) => {
      try {
        process.kill(-group, 0);
        return true;
      } catch {
        return false;
      }
    };
    const gone = async (group: number, ms: number) => {
      const deadline = Date.now() + ms;
      while (alive(group) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      return !alive(group);
    };
    for (const child of running.reverse()) {
      if (!alive(child.pid!)) continue;
      process.kill(-child.pid!, 'SIGINT');
      if (!(await gone(child.pid!, 15_000))) {
        process.kill(-child.pid!, 'SIGKILL');
        await gone(child.pid!, 5_000);
      }
    }
    if (copy) await rm(copy, { recursive: true, force: true, maxRetries: 5 });
  });

  it('1-2. changes the subgraph, and the check accepts it; tagged pii at INTERNAL, the check refuses it as the README says', async () => {
    const schemaPath = join(copy, 'subgraphs/customers/schema.graphql');
    const resolversPath = join(copy, 'subgraphs/customers/resolvers.ts');
    const schema = await readFile(schemaPath, 'utf8');
    const resolvers = await readFile(resolversPath, 'utf8');
    // "inside `type Customer`": before the type's closing brace; "inside `Customer`": first in its resolvers.
    const typeStart = schema.indexOf('type Customer @key');
    const typeEnd = schema.indexOf('\n}', typeStart);
    expect(typeStart).toBeGreaterThan(-1);
    const withField = `${schema.slice(0, typeEnd)}\n${steps.schemaAddition}${schema.slice(typeEnd)}`;
    await writeFile(schemaPath, withField);
    const resolverStart = resolvers.search(/\n {2}Customer: \{\n/);
    expect(resolverStart).toBeGreaterThan(-1);
    const insertAt = resolvers.indexOf('{\n', resolverStart) + 2;
    await writeFile(resolversPath, `${resolvers.slice(0, insertAt)}${steps.resolverAddition}\n${resolvers.slice(insertAt)}`);

    const accepted = run(steps.check.command);
    expect(accepted.status, accepted.output).toBe(0);
    expectOutput(accepted.output, steps.check.output);

    await writeFile(schemaPath, withField.replace(steps.schemaAddition, steps.schemaAddition.replace('@classify(level: "INTERNAL")', steps.piiClassify)));
    const refused = run(steps.check.command);
    expect(refused.status).toBe(1);
    expect(refused.output.replace(/\s+/g, ' ')).toContain(steps.piiError);
    await writeFile(schemaPath, withField);
  }, 120_000);

  it('3-4. deploys the new version beside the running one, publishes it, and the gateway serves the field', async () => {
    let greenOutput = '';
    startBackground(steps.deploy, (text) => (greenOutput += text));
    await until(
      async () => (await fetch(`http://127.0.0.1:${ports.green}/health/ready`).catch(() => null))?.status === 200,
      90_000,
      () => `the green customers subgraph (${greenOutput.slice(-2000)})`,
    );

    const published = run(steps.publish.command);
    expect(published.status, published.output).toBe(0);
    expectOutput(published.output, steps.publish.output);
    await until(() => meshOutput.includes('supergraph reloaded') && meshOutput.includes(steps.reloadedOrigin), 30_000, `supergraph reloaded, ${steps.reloadedOrigin}`);

    const answered = run(steps.query.command);
    expect(answered.status, answered.output).toBe(0);
    expect(JSON.parse(answered.stdout)).toEqual(steps.query.answer);
  }, 180_000);

  it('5. refuses the removal once a client uses the field, lists the history, and rolls back on purpose', async () => {
    // "Once a client uses the field": the dashboard asks for it, under its client name.
    const token = run('npm run -s token -- --role analyst --region EMEA').stdout.trim();
    const used = await fetch(`http://localhost:${ports.gateway}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'apollographql-client-name': steps.clientName },
      body: JSON.stringify({ query: '{ customers(first: 5) { nodes { id loyaltyTier } } }' }),
    });
    expect(used.status).toBe(200);
    let breaking = run(steps.breakingCheck);
    await until(
      () => {
        if (breaking.status === 1) return true;
        breaking = run(steps.breakingCheck);
        return breaking.status === 1;
      },
      20_000,
      'the usage to be recorded',
    );
    expect(breaking.output.replace(/\s+/g, ' ')).toContain(steps.breakingError);

    const history = run(steps.history);
    expect(history.status, history.output).toBe(0);
    expect(history.output).toMatch(/\b2\b[\s\S]*\b1\b|\b1\b[\s\S]*\b2\b/);

    const rolledBack = run(steps.rollback.command);
    expect(rolledBack.status, rolledBack.output).toBe(0);
    expectOutput(rolledBack.output, steps.rollback.output);
  }, 120_000);
});
