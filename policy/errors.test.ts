import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { ERRORS, codedError, isErrorCode } from './errors.js';
import { POLICY_README, withErrorTable } from './errors-doc.js';

describe('the error catalogue', () => {
  it('has SCREAMING_SNAKE codes, each with a one-line description and an HTTP status', () => {
    for (const [code, spec] of Object.entries(ERRORS)) {
      expect(code).toMatch(/^[A-Z][A-Z0-9_]+$/);
      expect(spec.description).not.toContain('\n');
      expect(spec.description.length).toBeGreaterThan(20);
      // 410: what a change feed's retention removed is gone, not missing (EVENT_POSITION_EXPIRED).
      expect([200, 400, 401, 403, 404, 405, 410, 413, 429, 503]).toContain(spec.httpStatus);
    }
  });

  it('makes errors whose code is in extensions', () => {
    const error = codedError('INVALID_CURSOR', 'bad cursor', { argument: 'after' });
    expect(error.extensions).toEqual({ argument: 'after', code: 'INVALID_CURSOR' });
    expect(isErrorCode('INVALID_CURSOR')).toBe(true);
    expect(isErrorCode('toString')).toBe(false);
  });

  it('is what policy/README.md shows (run `npm run docs:errors` after changing it)', async () => {
    const readme = await readFile(POLICY_README, 'utf8');
    expect(withErrorTable(readme)).toBe(readme);
  });
});
