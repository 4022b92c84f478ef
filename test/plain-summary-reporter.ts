/**
 * Prints one plain closing line, `Tests: N passed, N failed[, N skipped]`, after Vitest's own
 * summary: the form CI reads in any language.
 */
import type { Reporter, TestModule } from 'vitest/node';

export class PlainSummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    const counts = { passed: 0, failed: 0, skipped: 0 };
    for (const module of testModules) {
      let failedHere = 0;
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') counts.passed += 1;
        else if (state === 'failed') failedHere += 1;
        else counts.skipped += 1;
      }
      // A file that fails to load, or whose hook fails (its tests then count as skipped), failed
      // without a failed test: it counts as one.
      counts.failed += module.state() === 'failed' && failedHere === 0 ? 1 : failedHere;
    }
    counts.failed += unhandledErrors.length;
    const skipped = counts.skipped ? `, ${counts.skipped} skipped` : '';
    console.log(`\nTests: ${counts.passed} passed, ${counts.failed} failed${skipped}`);
  }
}
