/**
 * `npm run catalog -- export [--out <dir>] [--domain <name>]`: writes, for every data product of
 * every domain (or of one), its ODPS 1.0 document (`<domain>.<product>.odps.json`) and its ODCS 3.1
 * data contract (`<domain>.<product>.odcs.json`), made from the product declarations, the domains'
 * tables and policy directives, and where each warehouse is (`<DOMAIN>_WAREHOUSE_URL`, else the
 * DuckDB file under `DATA_DIR`). Default folder: `<DATA_DIR>/catalog`. Prints one line per file.
 * With the warehouse's column profiles from its last load, each product's profile goes beside them
 * (`<domain>.<product>.profile.json`: counts, bounds and detector shares, no personal value), for
 * the registry's sensitive-data checks (`--documents`).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { subgraphConfigFromEnv, warehouseUrlOf } from './config.js';
import { domains } from './domains.js';
import { domainProductDocuments, warehouseServerOf } from './kit/product-documents.js';
import { profilesAt } from './kit/profiles.js';

const LABELS = { odps: 'ODPS 1.0 data product ', odcs: 'ODCS 3.1 data contract', profile: 'column profile        ' } as const;

const USAGE = 'usage: npm run catalog -- export [--out <dir>] [--domain <name>]';

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ allowPositionals: true, options: { out: { type: 'string' }, domain: { type: 'string' }, help: { type: 'boolean' } } });
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
    return 2;
  }
  const { positionals, values } = parsed;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals[0] !== 'export' || positionals.length !== 1) {
    console.error(USAGE);
    return 2;
  }
  const selected = values.domain ? domains.filter((domain) => domain.name === values.domain) : domains;
  if (selected.length === 0) {
    console.error(`Unknown domain "${values.domain}": ${domains.map((domain) => domain.name).join(', ')}.`);
    return 2;
  }
  const config = subgraphConfigFromEnv();
  const out = resolve(values.out ?? join(config.dataDir, 'catalog'));
  await mkdir(out, { recursive: true });
  for (const domain of selected) {
    const url = warehouseUrlOf(domain.name, config);
    const profiles = new Map((await profilesAt(url)).map((profile) => [profile.product, profile]));
    for (const { id, odps, odcs } of domainProductDocuments(domain, warehouseServerOf(url))) {
      const profile = profiles.get(id);
      for (const [kind, document] of [['odps', odps], ['odcs', odcs], ...(profile ? [['profile', profile] as const] : [])] as const) {
        const path = join(out, `${id}.${kind}.json`);
        await writeFile(path, `${JSON.stringify(document, null, 2)}\n`);
        console.log(`${LABELS[kind]}  ${path}`);
      }
    }
  }
  return 0;
}

process.exitCode = await main();
