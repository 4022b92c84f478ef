/**
 * `tsx test/cpuprofile-top.ts <file.cpuprofile> [count]`: where a V8 CPU profile (`node --cpu-prof`)
 * spent its time: the top functions by self time (`name (file:line)`), and the self time per
 * package (`node_modules/<package>`), per part of this project (gateway/, policy/, …) and per Node
 * internal, each as a share of the samples that were not idle.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** Where a frame's code lives: a package, a part of this project, Node itself, or V8. */
export function placeOf(url: string): string {
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules) return modules[1]!;
  if (url.startsWith('node:')) return 'node internals';
  if (url === '') return 'V8 / native';
  const project = /\/(gateway|policy|subgraphs|test)\/([^/]+)/.exec(url);
  return project ? `${project[1]}/${project[2]}` : url;
}

const IDLE = new Set(['(idle)', '(program)', '(garbage collector)']);

export function summarize(profile: CpuProfile, count = 25): string {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  let busy = 0;
  let gc = 0;
  const functions = new Map<string, number>();
  const places = new Map<string, number>();
  for (const [id, micros] of self) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    if (functionName === '(garbage collector)') gc += micros;
    if (IDLE.has(functionName)) continue;
    busy += micros;
    const short = url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(gateway|policy|subgraphs|test)\//, '$1/');
    const key = `${functionName || '(anonymous)'} (${short}:${lineNumber + 1})`;
    functions.set(key, (functions.get(key) ?? 0) + micros);
    places.set(placeOf(url), (places.get(placeOf(url)) ?? 0) + micros);
  }
  const share = (micros: number) => `${((micros / busy) * 100).toFixed(1).padStart(5)}%`;
  const top = (map: Map<string, number>) => [...map].sort((a, b) => b[1] - a[1]).slice(0, count);
  return [
    `busy ${(busy / 1e6).toFixed(1)} s of samples; garbage collection ${(gc / 1e6).toFixed(1)} s`,
    '',
    'self time by place',
    ...top(places).map(([place, micros]) => `${share(micros)}  ${place}`),
    '',
    'self time by function',
    ...top(functions).map(([name, micros]) => `${share(micros)}  ${name}`),
  ].join('\n');
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\/test\//, '/test/'))) {
  const [file, count] = process.argv.slice(2);
  if (!file) {
    console.error('usage: tsx test/cpuprofile-top.ts <file.cpuprofile> [count]');
    process.exit(2);
  }
  console.log(summarize(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, Number(count ?? 25)));
}
