/**
 * The import rules `npm test` enforces (test/import-rules.test.ts runs dependency-cruiser with them):
 * no import cycles anywhere, and the architecture's boundaries (see test/boundaries.test.ts for the
 * domains' own). `npx depcruise gateway subgraphs policy test codegen.ts` reports the same.
 */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'An import cycle: two modules that need each other to load. Move what both need into a third.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'policy-stands-alone',
      severity: 'error',
      comment: 'policy/ is what gateway and subgraphs share: it imports nothing of theirs.',
      from: { path: '^policy/' },
      to: { path: '^(gateway|subgraphs)/' },
    },
    {
      name: 'gateway-knows-subgraphs-by-url',
      severity: 'error',
      comment: 'The gateway knows subgraphs only by URL and SDL, never by their code.',
      from: { path: '^gateway/' },
      to: { path: '^subgraphs/' },
    },
    {
      name: 'domains-use-the-public-kit',
      severity: 'error',
      comment:
        "A domain imports its own folder and the kit's public API (subgraphs/kit/index.ts), nothing else of the platform: the built-in domains are examples of what any domain can do.",
      from: { path: '^(subgraphs|test/fixtures/kit-boundary)/(?!kit/|synthetic-sources/|scaffold/)([^/]+)/' },
      to: { path: '^(gateway|subgraphs|policy)/', pathNot: ['^$1/$2/', '^subgraphs/kit/index[.]ts$'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // The fixtures' violations are there to be found by the test, not in the tree.
    exclude: { path: '(^|/)node_modules/|^test/example-app/src/gql/|^test/fixtures/(import-cycle|kit-boundary)/' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs', '.cjs', '.json'] },
  },
};
