/**
 * `npm run docs:errors`: rewrites every README table generated from a code catalogue: policy/README.md's
 * error codes and token refusal reasons (policy/errors.ts, policy/identity.ts), the registry's check
 * codes (gateway/registry/codes.ts), the domain scaffold's refusals (subgraphs/scaffold/codes.ts) and
 * the pipelines' codes (subgraphs/kit/pipelines/runner.ts).
 * A test of each part fails while its README is out of date.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { withCheckCodeTable, REGISTRY_README } from '../gateway/registry/codes-doc.js';
import { defineCommand, runCommand } from '../policy/command-line.js';
import { POLICY_README, withErrorTable, withGeneratedSections } from '../policy/errors-doc.js';
import { PIPELINE_ERROR_SECTION } from '../subgraphs/kit/pipelines/errors-doc.js';
import { SCAFFOLD_ERROR_SECTION, SUBGRAPHS_README } from '../subgraphs/scaffold/codes.js';

const rewrites: readonly [string, (text: string) => string][] = [
  [POLICY_README, withErrorTable],
  [REGISTRY_README, withCheckCodeTable],
  [SUBGRAPHS_README, (text) => withGeneratedSections(text, [SCAFFOLD_ERROR_SECTION, PIPELINE_ERROR_SECTION])],
];

await runCommand(
  defineCommand('npm run docs:errors --', "Rewrites the READMEs' generated tables: error codes and token refusal reasons (policy/), registry check codes (gateway/registry/), the domain scaffold's refusals (subgraphs/scaffold/), the pipelines' codes (subgraphs/kit/pipelines/).").action(async () => {
    for (const [file, rewrite] of rewrites) await writeFile(file, rewrite(await readFile(file, 'utf8')));
    console.log('policy/README.md, gateway/registry/README.md and subgraphs/README.md: generated tables updated.');
  }),
);
