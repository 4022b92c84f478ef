/**
 * Builds the IDE's browser bundle from the `graphiql` npm package with esbuild: one JavaScript file,
 * one stylesheet and the editor's workers, everything local, so that the IDE works without
 * internet. The build is cached by a key of what goes into it (the browser sources and the
 * installed package versions) and made again only when that changes; `npm run build:ide` makes it
 * ahead of time. The production build (`npm run build`) ships it in `dist/gateway/ide/bundle/`,
 * which the compiled gateway serves as it is: esbuild, graphiql and React are build-time packages,
 * never loaded at run time.
 */
import { createHash } from 'node:crypto';
import { access, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const SOURCES = fileURLToPath(new URL('./browser/', import.meta.url));
const ENTRY = join(SOURCES, 'main.js');
/**
 * The editor's web workers (GraphiQL 5 edits in Monaco): each its own bundle, started by main.js
 * from the IDE's own origin (see MonacoEnvironment there).
 */
const WORKERS = {
  'editor.worker': 'monaco-editor/esm/vs/editor/editor.worker.js',
  'json.worker': 'monaco-editor/esm/vs/language/json/json.worker.js',
  'graphql.worker': 'monaco-graphql/esm/graphql.worker.js',
} as const;
/** The files of a bundle, as the IDE's routes serve them. */
export const BUNDLE_FILES = ['main.js', 'main.css', ...Object.keys(WORKERS).map((name) => `${name}.js`)] as const;
/** Where builds are kept by default: the dependency cache, beside the packages they come from. */
export const DEFAULT_IDE_CACHE = fileURLToPath(new URL('../../node_modules/.cache/data-mesh-ide', import.meta.url));

async function buildKey(): Promise<string> {
  const hash = createHash('sha256');
  for (const file of (await readdir(SOURCES)).filter((name) => name.endsWith('.js')).sort()) hash.update(file).update(await readFile(join(SOURCES, file)));
  for (const name of ['graphiql', '@graphiql/react', '@graphiql/toolkit', 'monaco-editor', 'monaco-graphql', 'react', 'react-dom', 'esbuild', 'openid-client', 'graphql-ws']) {
    hash.update(`${name}@${(require(`${name}/package.json`) as { version: string }).version}`);
  }
  return hash.digest('hex').slice(0, 16);
}

/** The bundle the production build shipped beside this module, if this is the compiled gateway. */
const SHIPPED = fileURLToPath(new URL('./bundle/', import.meta.url));

/** The folder holding the bundle's files: the shipped one, or one built if it is missing or stale. */
export async function ideBundle(cacheDir: string = DEFAULT_IDE_CACHE): Promise<string> {
  try {
    await access(join(SHIPPED, 'main.js'));
    return SHIPPED;
  } catch {
    return ensureIdeBundle(cacheDir);
  }
}

/** The folder holding the bundle's files, built if it is missing or stale. */
export async function ensureIdeBundle(cacheDir: string = DEFAULT_IDE_CACHE): Promise<string> {
  const key = await buildKey();
  const dir = join(cacheDir, key);
  try {
    await readFile(join(dir, 'main.js'));
    return dir;
  } catch {
    // not built yet
  }
  const staging = `${dir}.${process.pid}.tmp`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  const { build } = await import('esbuild');
  await build({
    entryPoints: { main: ENTRY, ...Object.fromEntries(Object.entries(WORKERS).map(([name, module]) => [name, require.resolve(module)])) },
    bundle: true,
    format: 'esm',
    target: 'es2022',
    minify: true,
    outdir: staging,
    define: { 'process.env.NODE_ENV': '"production"' },
    loader: { '.woff': 'dataurl', '.woff2': 'dataurl', '.ttf': 'dataurl', '.svg': 'dataurl' },
    logLevel: 'silent',
  });
  await writeFile(join(staging, 'build.json'), JSON.stringify({ key, builtAt: new Date().toISOString() }));
  // Another process may have built the same key meanwhile: either copy is good.
  await rename(staging, dir).catch(async () => rm(staging, { recursive: true, force: true }));
  return dir;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { defineCommand, runCommand } = await import('../../policy/command-line.js');
  await runCommand(
    defineCommand('npm run build:ide --', 'Builds the analysts\' IDE (GraphiQL and the catalog view) into node_modules/.cache, unless it is built already; the gateway also builds it at start.').action(async () => {
      console.log(`IDE built in ${await ensureIdeBundle()}`);
    }),
  );
}
