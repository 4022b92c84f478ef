import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { CHECK_CODES, REGISTRY_ERRORS } from './codes.js';
import { REGISTRY_README, withCheckCodeTable } from './codes-doc.js';

describe('the registry code catalogue', () => {
  it('has SCREAMING_SNAKE codes with one-line descriptions', () => {
    for (const [code, spec] of Object.entries(CHECK_CODES)) {
      expect(code).toMatch(/^[A-Z][A-Z0-9_]+$/);
      expect(spec.description).not.toContain('\n');
    }
    for (const [code, description] of Object.entries(REGISTRY_ERRORS)) {
      expect(code).toMatch(/^REGISTRY_[A-Z_]+$/);
      expect(description).not.toContain('\n');
    }
  });

  it('is what gateway/registry/README.md shows (run `npm run docs:errors` after changing it)', async () => {
    const readme = await readFile(REGISTRY_README, 'utf8');
    expect(withCheckCodeTable(readme)).toBe(readme);
  });
});
