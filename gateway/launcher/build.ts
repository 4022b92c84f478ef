/**
 * The production build (`npm run build`): the gateway, the subgraphs, the policy layer and their
 * command lines compiled to JavaScript in `dist/`, beside what they read at run time (the GraphQL
 * schemas, the mesh manifest) and the analysts' IDE, bundled. `NODE_ENV=production` runs `dist/`
 * with plain `node` (see run.js; the image does the same), with production dependencies only: no
 * TypeScript, tsx, esbuild or React at run time.
 *
 * It also writes the kit as a package, `dist/kit-package/`, for domains outside this repository.
 * It type-checks what it compiles and writes nothing when a check fails; it builds beside `dist/`
 * and swaps the new build in whole, so a half-written build is never run.
 */
import { existsSync } from 'node:fs';
import { cp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { ensureIdeBundle } from '../ide/build.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The parts compiled; tests, benchmarks and test/ are not. */
export const BUILT_FOLDERS = ['gateway', 'subgraphs', 'policy'] as const;
/** Programs of the source tree only, which run on development dependencies: this build and the docs' generators. */
export const DEVELOPMENT_TOOLS = ['gateway/launcher/build.ts'];
/** Files beside the code that it reads at run time: by extension, and the mesh manifest. */
const ASSETS = ['.graphql'];
const ASSET_FILES = ['subgraphs/mesh.json'];

function isBuilt(root: string, file: string): boolean {
  const path = relative(root, file).split(sep);
  return (BUILT_FOLDERS as readonly string[]).includes(path[0]!) && !/\.(test|bench)\.ts$/.test(file) && !DEVELOPMENT_TOOLS.includes(path.join('/'));
}

function describe(root: string, diagnostics: readonly ts.Diagnostic[]): string {
  return ts.formatDiagnostics(diagnostics, { getCanonicalFileName: (f) => f, getCurrentDirectory: () => root, getNewLine: () => '\n' });
}

/** Compiles into `outDir`; throws with the compiler's messages when a file does not type-check. */
function compile(root: string, outDir: string): number {
  const parsed = ts.getParsedCommandLineOfConfigFile(join(root, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => { throw new Error(describe(root, [d])); } });
  if (!parsed) throw new Error('tsconfig.json could not be read.');
  const rootNames = parsed.fileNames.filter((file) => isBuilt(root, file));
  const options: ts.CompilerOptions = { ...parsed.options, noEmit: false, outDir, rootDir: root, sourceMap: true, declaration: true };
  const program = ts.createProgram({ rootNames, options });
  const problems = ts.getPreEmitDiagnostics(program);
  if (problems.length > 0) throw new Error(`The build does not type-check:\n${describe(root, problems)}`);
  const emitted = program.emit();
  if (emitted.emitSkipped || emitted.diagnostics.length > 0) throw new Error(`The build could not be written:\n${describe(root, emitted.diagnostics)}`);
  return rootNames.length;
}

async function copyAssets(root: string, outDir: string): Promise<number> {
  let copied = 0;
  for (const folder of BUILT_FOLDERS) {
    for (const entry of await readdir(join(root, folder), { recursive: true, withFileTypes: true })) {
      if (!entry.isFile() || !ASSETS.some((ext) => entry.name.endsWith(ext))) continue;
      const from = join(entry.parentPath, entry.name);
      await cp(from, join(outDir, relative(root, from)));
      copied++;
    }
  }
  for (const file of ASSET_FILES.filter((path) => existsSync(join(root, path)))) {
    await cp(join(root, file), join(outDir, file));
    copied++;
  }
  return copied;
}

/** The kit's own parts and what it stands on: the package a domain outside this repository installs. */
const KIT_PARTS = ['subgraphs/kit', 'policy'];

/**
 * The kit as a package (`dist/kit-package/`, `npm pack` packs it): its compiled public API with its
 * types and the policy layer under it, the manifest of `subgraphs/kit/package.json` (name, version),
 * and as dependencies, at this project's versions, every package those files import.
 */
async function assembleKitPackage(root: string, outDir: string): Promise<string | null> {
  const manifestPath = join(root, 'subgraphs/kit/package.json');
  if (!existsSync(manifestPath)) return null;
  const dir = join(outDir, 'kit-package');
  for (const part of KIT_PARTS) {
    await cp(join(outDir, part), join(dir, part), { recursive: true, filter: (path) => !/\.(test|bench)\.(js|d\.ts)(\.map)?$/.test(path) });
  }
  const project = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; engines?: Record<string, string> };
  const imported = new Set<string>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.js')) continue;
    const code = await readFile(join(entry.parentPath, entry.name), 'utf8');
    // `from '<package>'`, `import '<package>'` and `import('<package>')`: a package name, never a relative path.
    for (const match of code.matchAll(/\bfrom\s*'([@a-z0-9][\w@./-]*)'|\bimport\s*\(?\s*'([@a-z0-9][\w@./-]*)'/g)) {
      const specifier = (match[1] ?? match[2])!;
      if (specifier.startsWith('node:')) continue;
      imported.add(specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!);
    }
  }
  const missing = [...imported].filter((name) => !project.dependencies[name]);
  if (missing.length > 0) throw new Error(`The kit imports packages that are not production dependencies: ${missing.join(', ')}.`);
  const kit = JSON.parse(await readFile(manifestPath, 'utf8')) as Record<string, unknown>;
  const manifest = {
    ...kit,
    // The kit's entry points (its API, and its test support), where the package holds them.
    exports: Object.fromEntries(
      Object.entries(kit.exports as Record<string, { types: string; default: string }>).map(([entry, files]) => [entry, { types: files.types.replace(/^\.\//, './subgraphs/kit/'), default: files.default.replace(/^\.\//, './subgraphs/kit/') }]),
    ),
    files: KIT_PARTS,
    dependencies: Object.fromEntries([...imported].sort().map((name) => [name, project.dependencies[name]])),
    ...(project.engines ? { engines: project.engines } : {}),
  };
  await writeFile(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return dir;
}

export interface BuildReport {
  readonly dir: string;
  readonly compiled: number;
  readonly assets: number;
}

/** Builds `dist/` of the project at `root` (this one by default) anew. */
export async function buildProduction(root: string = ROOT): Promise<BuildReport> {
  const outDir = join(root, 'dist');
  const staging = `${outDir}.${process.pid}.tmp`;
  await rm(staging, { recursive: true, force: true });
  try {
    const compiled = compile(root, staging);
    const assets = await copyAssets(root, staging);
    await assembleKitPackage(root, staging);
    // The IDE is bundled now, so that the compiled gateway serves it without building anything.
    await cp(await ensureIdeBundle(), join(staging, 'gateway', 'ide', 'bundle'), { recursive: true });
    await rm(outDir, { recursive: true, force: true });
    await rename(staging, outDir);
    return { dir: outDir, compiled, assets };
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { CommandFailure, defineCommand, runCommand } = await import('../../policy/command-line.js');
  await runCommand(
    defineCommand('npm run build --', 'Compiles the gateway, the subgraphs, the policy layer and their command lines to JavaScript in dist/, with the IDE bundled; NODE_ENV=production runs it with plain node.').action(async () => {
      try {
        const built = await buildProduction();
        console.log(`Built ${built.compiled} modules and ${built.assets} files they read into ${relative(process.cwd(), built.dir) || '.'}/ (the IDE bundled).`);
      } catch (error) {
        throw new CommandFailure((error as Error).message);
      }
    }),
  );
}
