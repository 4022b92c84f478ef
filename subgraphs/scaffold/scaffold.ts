/**
 * A domain from a source, in one step (`npm run domain -- new`): the source is checked and profiled,
 * the proposal written as a domain folder (see render.ts), and the source landed as its raw data.
 * The folder is made beside its destination and moved there whole: a refused or failed scaffold
 * leaves nothing behind.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { governanceRules } from '../../policy/governance.rules.js';
import { harmonizationRules } from '../../policy/harmonization.rules.js';
import { DOMAIN_NAME, readMeshManifest } from '../../policy/mesh-manifest.js';
import type { GovernanceRules } from '../../policy/rules.js';
import { ScaffoldError } from './codes.js';
import { columnNameOf, propose, SAMPLE_ROWS, type Proposal } from './propose.js';
import { renderIndex, renderPackage, renderReadme, renderSchema, renderTest, placeholdersOf, type DomainDraft } from './render.js';
import { DEFAULT_LIMITS, formatOf, landSource, openSource, readSample, type SourceLimits, type SourceSpec } from './source.js';

export interface ScaffoldOptions {
  /** The domain's name (its subgraph's). */
  readonly name: string;
  readonly source: SourceSpec;
  /** The folder to make (default `./<name>`); it must not exist, or be empty. */
  readonly into?: string;
  /** The data product's name (default: the file's or table's name). */
  readonly product?: string;
  /** The GraphQL type of one row (default: the product's name, singular, PascalCase). */
  readonly typeName?: string;
  readonly key?: string;
  /** The column a `regions` row policy filters on (default: a column named `region`, if any). */
  readonly rowPolicy?: string;
  /** The product owner's e-mail; without it, a placeholder the registry refuses to publish. */
  readonly owner?: string;
  /** What the product is for; without it, a placeholder. */
  readonly purpose?: string;
  /** The port it serves on (default: the first from 4010 the mesh manifest does not use). */
  readonly port?: number;
  /** The manifest the new one extends (default: env `MESH_MANIFEST`, else the built-in mesh's). */
  readonly baseManifest?: string;
  readonly limits?: SourceLimits;
  readonly rules?: GovernanceRules;
  readonly now?: Date;
  /** The command, as the README quotes it. */
  readonly command?: string;
}

export interface ScaffoldResult {
  readonly folder: string;
  readonly domain: string;
  readonly product: string;
  readonly typeName: string;
  /** Where it will serve. */
  readonly url: string;
  /** Its mesh manifest (the base's domains, and this one). */
  readonly manifest: string;
  readonly proposal: Proposal;
  /** What is left for the owner to write: `owner`, `purpose`. */
  readonly placeholders: readonly string[];
}

/** Types every domain's subgraph has (the kit's shared types, the root types). */
const RESERVED_TYPES = new Set(['Query', 'Mutation', 'Subscription', 'PageInfo', 'LocalDate', 'DateTime', 'OrderDirection', 'String', 'Int', 'Float', 'Boolean', 'ID']);

/** A product's name from the source: the file's name, or the table's, in lower snake_case. */
function productNameOf(options: ScaffoldOptions): string {
  if (options.product !== undefined) return options.product;
  const { source } = options;
  if (formatOf(source) === 'postgres') return source.table ? columnNameOf(source.table.split('.').pop()!, 0) : options.name;
  const file = basename(source.location);
  return columnNameOf(file.slice(0, file.length - extname(file).length), 0);
}

/** `shipments` → `Shipment`, `order_lines` → `OrderLine`. */
function typeNameOf(product: string): string {
  const singular = product.endsWith('ies') ? `${product.slice(0, -3)}y` : product.endsWith('ss') || !product.endsWith('s') ? product : product.slice(0, -1);
  return singular.replace(/(^|_)([a-z0-9])/g, (_, __, c: string) => c.toUpperCase());
}

async function isEmptyOrAbsent(folder: string): Promise<boolean> {
  try {
    return (await readdir(folder)).length === 0;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw new ScaffoldError('SCAFFOLD_FOLDER_EXISTS', `${folder} cannot be used: ${(error as Error).message}`);
  }
}

export async function scaffoldDomain(options: ScaffoldOptions): Promise<ScaffoldResult> {
  const { name } = options;
  if (!DOMAIN_NAME.test(name)) throw new ScaffoldError('SCAFFOLD_INVALID_NAME', `"${name.slice(0, 70)}" is not a domain name: lower-case letters, digits and _, starting with a letter, at most 63.`);
  const base = readMeshManifest(options.baseManifest);
  if (base.domains.some((domain) => domain.name === name)) throw new ScaffoldError('SCAFFOLD_INVALID_NAME', `The mesh (${base.path}) already has a domain "${name}".`);
  const product = productNameOf(options);
  if (!harmonizationRules.productName.pattern.test(product)) {
    throw new ScaffoldError('SCAFFOLD_INVALID_NAME', `"${product.slice(0, 70)}" is not a data product name (${harmonizationRules.productName.convention}); give one with --product.`);
  }
  const typeName = options.typeName ?? typeNameOf(product);
  if (!/^[A-Z][A-Za-z0-9]{0,62}$/.test(typeName)) throw new ScaffoldError('SCAFFOLD_INVALID_NAME', `"${typeName.slice(0, 70)}" is not a type name (PascalCase letters and digits); give one with --type.`);
  const taken = [typeName, `${typeName}Connection`, `${typeName}Edge`].find((name) => RESERVED_TYPES.has(name));
  if (taken) throw new ScaffoldError('SCAFFOLD_INVALID_NAME', `The type ${taken} is one every subgraph has already; give the type another name with --type.`);
  const folder = resolve(options.into ?? name);
  if (!(await isEmptyOrAbsent(folder))) throw new ScaffoldError('SCAFFOLD_FOLDER_EXISTS', `${folder} exists and is not empty: choose another folder with --into.`);
  const rules = options.rules ?? governanceRules;
  const now = options.now ?? new Date();
  const port = options.port ?? firstFreePort(base.domains.map((domain) => domain.url));
  const url = `http://127.0.0.1:${port}/graphql`;

  // Made beside the destination (the same file system: one rename), and moved there whole.
  await mkdir(dirname(folder), { recursive: true });
  const staging = `${folder}.partial-${randomBytes(4).toString('hex')}`;
  await mkdir(join(staging, 'data'), { recursive: true });
  const instance = await DuckDBInstance.create(':memory:', { threads: '4' });
  const connection = await instance.connect();
  try {
    const source = await openSource(connection, options.source, options.limits ?? DEFAULT_LIMITS, join(staging, 'extract.csv'));
    const sample = await readSample(connection, source, SAMPLE_ROWS);
    const exact = sample.whole;
    const proposal = await propose(connection, {
      sources: source.names,
      rowsProfiled: sample.rows,
      exact,
      product,
      ...(options.key !== undefined ? { key: options.key } : {}),
      ...(options.rowPolicy !== undefined ? { rowPolicy: options.rowPolicy } : {}),
      rules,
      now,
    });
    const raw = `data/${product}.csv`;
    await landSource(
      connection,
      source,
      join(staging, raw),
      proposal.columns.map((column) => ({ position: column.position, name: column.column, renamed: column.renamed, expression: column.landAs })),
    );
    await rm(join(staging, 'extract.csv'), { force: true });
    const draft: DomainDraft = {
      domain: name,
      product,
      typeName,
      proposal,
      owner: options.owner ?? null,
      purpose: options.purpose ?? null,
      source: source.description,
      piiMask: rules.tags.pii?.mask,
      command: options.command ?? `npm run domain -- new ${name}`,
      now,
    };
    const manifest = join(folder, 'mesh.json');
    const files: Record<string, string> = {
      'index.ts': renderIndex(draft),
      'schema.graphql': renderSchema(draft),
      'package.json': renderPackage(draft),
      'domain.test.ts': renderTest(draft),
      'source.json': `${JSON.stringify({ ...source.description, landedAt: now.toISOString(), rows: proposal.rowsProfiled, exact, columns: proposal.columns.map(({ source: from, column, field }) => ({ source: from, column, field })) }, null, 2)}\n`,
      'mesh.json': `${JSON.stringify(
        {
          description: `The domains of ${base.path}, and ${name}. Start the mesh with it: MESH_MANIFEST=${manifest} npm start.`,
          domains: [
            ...base.domains.map((domain) => ({ name: domain.name, url: domain.url, ...(domain.module ? { module: domain.module } : {}), ...(domain.data ? { data: domain.data } : {}) })),
            { name, module: './index.ts', url, data: './data' },
          ],
        },
        null,
        2,
      )}\n`,
      'README.md': renderReadme(draft, { raw, manifest, url }),
    };
    for (const [file, text] of Object.entries(files)) await writeFile(join(staging, file), text);
    connection.closeSync();
    instance.closeSync();
    await rmdir(folder).catch(() => undefined); // an empty destination
    await rename(staging, folder);
    return { folder, domain: name, product, typeName, url, manifest, proposal, placeholders: placeholdersOf(draft) };
  } catch (error) {
    try {
      connection.closeSync();
      instance.closeSync();
    } catch {
      // closed already
    }
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
}

/** The first port from 4010 that no domain of the manifest serves on. */
function firstFreePort(urls: readonly string[]): number {
  const taken = new Set(urls.map((url) => Number(new URL(url).port)));
  let port = 4010;
  while (taken.has(port)) port += 1;
  return port;
}
