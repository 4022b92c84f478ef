import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { PlainSummaryReporter } from './plain-summary-reporter.js';

const require = createRequire(import.meta.url);

export default defineConfig({
  resolve: {
    // Vite would resolve our `import … from 'graphql'` to graphql's ESM build, while Apollo's
    // CommonJS packages load its CJS build: two graphql realms. Resolve as Node does.
    alias: [
      { find: /^graphql$/, replacement: require.resolve('graphql') },
      // The kit a domain imports by name is the mesh's own (subgraphs/domains.ts provides it so at run time).
      { find: /^@data-mesh\/kit$/, replacement: fileURLToPath(new URL('../subgraphs/kit/index.ts', import.meta.url)) },
    ],
  },
  test: {
    root: fileURLToPath(new URL('..', import.meta.url)),
    // Unit tests sit beside their code; end-to-end tests boot real processes under test/.
    include: ['{gateway,subgraphs,policy}/**/*.test.ts', 'test/**/*.test.ts', 'test/**/*.e2e.ts'],
    reporters: ['default', new PlainSummaryReporter()],
    benchmark: { include: ['test/**/*.bench.ts'] },
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 180_000,
  },
});
