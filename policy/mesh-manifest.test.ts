/** The mesh manifest: what it accepts, where its paths point, and what it refuses, saying why. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MESH_MANIFEST, MeshManifestError, readMeshManifest } from './mesh-manifest.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mesh-manifest-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function manifestOf(content: unknown): Promise<string> {
  const path = join(dir, `m-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

describe('the mesh manifest', () => {
  it('names the three built-in domains by default, each by its module beside the manifest', () => {
    const { domains } = readMeshManifest(DEFAULT_MESH_MANIFEST);
    expect(domains.map(({ name, url }) => `${name} ${url}`)).toEqual(['customers http://127.0.0.1:4001/graphql', 'products http://127.0.0.1:4002/graphql', 'finance http://127.0.0.1:4003/graphql']);
    expect(domains[0]!.module).toBe(join(DEFAULT_MESH_MANIFEST, '..', 'customers', 'index.js'));
  });

  it('resolves modules and data folders from the manifest, keeps absolute ones, and takes a domain without a module as running elsewhere', async () => {
    const path = await manifestOf({
      domains: [
        { name: 'shipping', module: './shipping/index.ts', url: 'http://127.0.0.1:4010/graphql', data: 'raw/shipping' },
        { name: 'billing', module: '/srv/billing/index.js', url: 'http://127.0.0.1:4011/graphql' },
        { name: 'ledger', url: 'https://ledger.example.com/graphql' },
      ],
    });
    expect(readMeshManifest(path).domains).toEqual([
      { name: 'shipping', url: 'http://127.0.0.1:4010/graphql', module: join(dir, 'shipping/index.ts'), data: join(dir, 'raw/shipping') },
      { name: 'billing', url: 'http://127.0.0.1:4011/graphql', module: '/srv/billing/index.js', data: null },
      { name: 'ledger', url: 'https://ledger.example.com/graphql', module: null, data: null },
    ]);
  });

  it.each([
    ['not JSON', '{ "domains": [', /could not be read/],
    ['no domains', { domains: [] }, /must list its domains/],
    ['a domain that is not an object', { domains: ['customers'] }, /Domain 1 of .* must be an object/],
    ['an unknown key', { domains: [{ name: 'a', url: 'http://h:1/graphql', port: 1 }] }, /unknown keys: port \(known: name, url, module, data\)/],
    ['no name', { domains: [{ url: 'http://h:1/graphql' }] }, /Domain 1's "name" must be a non-empty string/],
    ['a name that is no subgraph name', { domains: [{ name: 'Ship-ping', url: 'http://h:1/graphql' }] }, /Domain name "Ship-ping" must be lower-case letters, digits and _/],
    ['a name twice', { domains: [{ name: 'a', url: 'http://h:1/graphql' }, { name: 'a', url: 'http://h:2/graphql' }] }, /Domain "a" is listed twice/],
    ['a URL that is not one', { domains: [{ name: 'a', url: 'not a url' }] }, /Domain "a" has an invalid url "not a url"/],
    ['a URL of another scheme', { domains: [{ name: 'a', url: 'file:///etc/passwd' }] }, /Domain "a"'s url must be http or https/],
    ['an empty module', { domains: [{ name: 'a', url: 'http://h:1/graphql', module: '' }] }, /Domain "a"'s "module" must be a non-empty string/],
    ['two local domains on one port', { domains: [{ name: 'a', url: 'http://h:4001/graphql', module: './a.js' }, { name: 'b', url: 'http://h:4001/other', module: './b.js' }] }, /Domains "a" and "b" would both listen at h:4001/],
  ])('refuses %s, saying why', async (_case, content, message) => {
    const path = await manifestOf(content);
    expect(() => readMeshManifest(path)).toThrow(MeshManifestError);
    expect(() => readMeshManifest(path)).toThrow(message);
  });

  it('refuses a manifest that is not there, naming it', () => {
    expect(() => readMeshManifest(join(dir, 'none.json'))).toThrow(/The mesh manifest .*none\.json could not be read: ENOENT/);
  });
});
