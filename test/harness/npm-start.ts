/** `npm start` as a newcomer runs it, and the README's first query, for the tests that run them. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { README } from '../../policy/errors-doc.js';

/** Waits until `done()` holds, polling; fails with `what` after `timeoutMs`. */
export async function until(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export interface Started {
  child: ChildProcess;
  output: () => string;
}

/** `npm start` in its own process group; resolves once it prints that the mesh is ready. */
export function npmStart(env: NodeJS.ProcessEnv): Promise<Started> {
  return npmService('start', [], env, /The mesh is ready\./);
}

/** `npm run <script> -- <args>`, a service, in its own process group; resolves once its output matches `ready`. */
export async function npmService(script: string, args: readonly string[], env: NodeJS.ProcessEnv, ready: RegExp): Promise<Started> {
  // The live synthetic sources change data under a test's feet: off unless the test asks for them.
  const child = spawn('npm', ['run', script, '--', ...args], { env: { ...process.env, LIVE_SOURCES: 'off', ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (ready.test(output)) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`npm run ${script} exited (${code}) before it was ready:\n${output}`)));
  });
  return { child, output: () => output };
}

/** Ctrl-C: the launcher stops every part; all of them must be gone. */
export async function stop(started: Started | undefined): Promise<void> {
  if (!started || started.child.exitCode !== null || started.child.signalCode !== null) return;
  const exited = once(started.child, 'exit');
  process.kill(-started.child.pid!, 'SIGINT');
  await exited;
  // npm may exit before the services it started have finished stopping (closing their audit
  // chains): wait until no process of the group is left, so that nothing writes after this.
  await until(() => !groupAlive(started.child.pid!), 30_000, 'every process of the mesh to exit');
}

/** Whether any process of a process group is still running. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The README's token command, curl request body and the answer it shows. */
export async function readmeExample(): Promise<{ tokenArgs: string[]; body: string; answer: unknown }> {
  const readme = await readFile(README, 'utf8');
  const block = /```sh\n(TOKEN=\$\(npm run -s token -- [^)]*\)\ncurl -s http:\/\/localhost:4000\/graphql[\s\S]*?)```/.exec(readme)?.[1];
  const tokenArgs = block && /TOKEN=\$\(npm run -s token -- ([^)]*)\)/.exec(block)?.[1];
  const body = block && /-d '(.*)'/.exec(block)?.[1];
  const answer = /prints \(formatted here\):\n\n```json\n([\s\S]*?)```/.exec(readme)?.[1];
  if (!tokenArgs || !body || !answer) throw new Error('README has no token and curl example with its answer');
  return { tokenArgs: tokenArgs.split(/\s+/), body, answer: JSON.parse(answer) };
}

/** Runs `npm run -s token -- …` as the README does and returns what it prints. */
export async function mintAsReadme(args: readonly string[]): Promise<string> {
  const child = spawn('npm', ['run', '-s', 'token', '--', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number];
  if (code !== 0) throw new Error(`npm run token exited ${code}`);
  return out.trim();
}

/** The README's support example: the token arguments of a support analyst and the name they see unmasked. */
export async function readmeSupportExample(): Promise<{ tokenArgs: string[]; sees: string }> {
  const readme = await readFile(README, 'utf8');
  const [, args, sees] = /a token minted with\s+`--role support ([^`]*)`\s+sees "([^"]+)"/.exec(readme) ?? [];
  if (!args || !sees) throw new Error('README has no support token example with the name it sees');
  return { tokenArgs: ['--role', 'support', ...args.split(/\s+/)], sees };
}
