/**
 * Prints one plain closing line, `Tests: N passed, N failed[, N skipped]`, after Vitest's own
 * summary: the form CI reads in any language.
 */
import type { Reporter, TestModule } from 'vitest/node';

export class PlainSummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    const counts = { passed: 0, failed: 0, skipped: 0 };
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') counts.passed += 1;
        else if (state === 'failed') counts.failed += 1;
        else counts.skipped += 1;
      }
      // A file that fails to load has no tests to count, but it failed.
      if (module.state() === 'failed' && [...module.children.allTests()].length === 0) counts.failed += 1;
    }
    counts.failed += unhandledErrors.length;
    const skipped = counts.skipped ? `, ${counts.skipped} skipped` : '';
    console.log(`\nTests: ${counts.passed} passed, ${counts.failed} failed${skipped}`);
  }
}
