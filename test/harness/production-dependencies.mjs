/**
 * Loaded with `--import` (through NODE_OPTIONS) into every process of a production run under test:
 * a module that resolves inside the project's node_modules must belong to a package that a
 * production install has (`npm ls --omit=dev`, written to the file `PRODUCTION_PACKAGES` names), as
 * in the image, which installs no others. Anything else fails to load, as it would there.
 * (`module.registerHooks` is Node 22.15 and newer: the oldest Node package.json's engines allow.)
 */
import { readFileSync } from 'node:fs';
import { registerHooks } from 'node:module';
import { fileURLToPath } from 'node:url';

const { root, packages } = JSON.parse(readFileSync(process.env.PRODUCTION_PACKAGES, 'utf8'));
const modules = `${root}/node_modules/`;
const allowed = new Set(packages);

/** The package folder a path inside node_modules belongs to (the innermost one). */
function packageOf(path) {
  const at = path.lastIndexOf('/node_modules/');
  const rest = path.slice(at + '/node_modules/'.length).split('/');
  return `${path.slice(0, at)}/node_modules/${rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
}

registerHooks({
  resolve(specifier, context, nextResolve) {
    const resolved = nextResolve(specifier, context);
    if (resolved.url.startsWith('file:')) {
      const path = fileURLToPath(resolved.url);
      if (path.startsWith(modules) && !allowed.has(packageOf(path))) {
        throw Object.assign(new Error(`Cannot find package '${specifier}': not a production dependency (${packageOf(path)})`), { code: 'ERR_MODULE_NOT_FOUND' });
      }
    }
    return resolved;
  },
});
