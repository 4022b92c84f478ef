/**
 * The tree's import rules, enforced with dependency-cruiser (`.dependency-cruiser.cjs`): no import
 * cycle anywhere (type-only imports included), `policy/` standing alone, the gateway knowing no
 * subgraph code, a domain using the kit's public API only. The check is shown to work: the
 * fixtures' cycle and reach past the kit are found, named module by module.
 */
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { cruise, type ICruiseResult, type IForbiddenRuleType } from 'dependency-cruiser';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');
const rules = createRequire(import.meta.url)(resolve(root, '.dependency-cruiser.cjs')) as { forbidden: IForbiddenRuleType[]; options: Record<string, any> };

async function violations(paths: readonly string[], exclude: string = rules.options.exclude.path): Promise<string[]> {
  const previous = process.cwd();
  process.chdir(root);
  try {
    const { output } = await cruise([...paths], { ...rules.options, exclude: { path: exclude }, validate: true, ruleSet: { forbidden: rules.forbidden } } as never, undefined, {
      tsConfig: { fileName: 'tsconfig.json' },
    } as never);
    const result = output as ICruiseResult;
    return result.summary.violations.map((v) => `${v.rule.name}: ${[v.from, ...(v.cycle?.map((step) => (typeof step === 'string' ? step : step.name)) ?? [v.to])].join(' → ')}`);
  } finally {
    process.chdir(previous);
  }
}

describe('import rules', () => {
  it('hold over the whole tree: no cycle, and the boundaries kept', async () => {
    expect(await violations(['gateway', 'subgraphs', 'policy', 'test', 'codegen.ts'])).toEqual([]);
  }, 120_000);

  it("find a domain reaching past the kit's public API (the fixture's), and nothing else of it", async () => {
    const found = await violations(['test/fixtures/kit-boundary'], '(^|/)node_modules/');
    expect(found).toEqual(['domains-use-the-public-kit: test/fixtures/kit-boundary/outsider/index.ts → subgraphs/kit/domain.ts']);
  });

  it('find a cycle when there is one (the fixture\'s)', async () => {
    const found = await violations(['test/fixtures/import-cycle'], '(^|/)node_modules/');
    expect(found).toContain('no-circular: test/fixtures/import-cycle/first.ts → test/fixtures/import-cycle/second.ts → test/fixtures/import-cycle/first.ts');
  });
});
