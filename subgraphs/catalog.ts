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
import { Option } from 'commander';
import { CommandFailure, defineCommand, runCommand } from '../policy/command-line.js';
import { subgraphConfigFromEnv, warehouseUrlOf } from './config.js';
import { meshDomains } from './mesh-domains.js';
import { domainProductDocuments, warehouseServerOf } from './kit/product-documents.js';
import { profilesAt } from './kit/profiles.js';

const { domains } = await meshDomains();

const LABELS = { odps: 'ODPS 1.0 data product ', odcs: 'ODCS 3.1 data contract', profile: 'column profile        ' } as const;

async function exportDocuments(options: { readonly out?: string; readonly domain?: string }): Promise<void> {
  const selected = options.domain ? domains.filter((domain) => domain.name === options.domain) : domains;
  const config = subgraphConfigFromEnv();
  const out = resolve(options.out ?? join(config.dataDir, 'catalog'));
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
}

const command = defineCommand('npm run -s catalog --', 'The data product documents (ODPS, ODCS, column profiles) of the domains.');
command
  .command('export')
  .description('writes each data product\'s ODPS 1.0 document, ODCS 3.1 contract and column profile')
  .option('--out <dir>', 'the folder (default <DATA_DIR>/catalog)')
  .addOption(new Option('--domain <name>', 'one domain only').choices(domains.map((domain) => domain.name)))
  .action(async (options: { out?: string; domain?: string }) => {
    try {
      await exportDocuments(options);
    } catch (error) {
      throw new CommandFailure(`The documents could not be written: ${error instanceof Error ? error.message : String(error)}`);
    }
  });

await runCommand(command);
