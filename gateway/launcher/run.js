/**
 * Runs one of the project's programs as its environment asks: under `NODE_ENV=production`, its
 * compiled JavaScript in `dist/` (made by `npm run build`) with plain node and production
 * dependencies only; otherwise its TypeScript source through tsx. package.json's scripts name each
 * program by its path without extension:
 *
 *   node gateway/launcher/run.js gateway/main [arguments…]
 *
 * Plain JavaScript, so that it runs before anything is compiled. The program runs in this process
 * (signals reach it as they would reach `node <program>`), with `process.argv` as if started directly.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const [program, ...args] = process.argv.slice(2);
if (!program || !/^(gateway|subgraphs|policy)(\/[a-z][a-z0-9-]*)+$/.test(program)) {
  console.error('usage: node gateway/launcher/run.js <gateway|subgraphs|policy>/<program> [arguments…]');
  process.exit(2);
}
const production = process.env.NODE_ENV === 'production';
const file = production ? join(root, 'dist', `${program}.js`) : join(root, `${program}.ts`);
if (!existsSync(file)) {
  console.error(production ? `NODE_ENV=production runs the compiled build, and dist/ has no ${program}.js: run \`npm run build\` first.` : `There is no program ${program}.ts.`);
  process.exit(1);
}
if (!production) {
  // tsx's loader, in this process and in the workers it forks (the gateway's cluster mode).
  process.execArgv.push('--import', 'tsx');
  await import('tsx');
}
process.argv = [process.argv[0], file, ...args];
await import(pathToFileURL(file).href);
