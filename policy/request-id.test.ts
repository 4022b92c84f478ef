import { describe, expect, it } from 'vitest';
import { readRequestId } from './request-id.js';

describe('request ids', () => {
  it("keep a caller's well-formed id", () => {
    expect(readRequestId('req-2024-01-01.abc:42')).toBe('req-2024-01-01.abc:42');
  });

  it('replace a missing, repeated, short, long or unsafe id with a fresh UUID', () => {
    for (const header of [undefined, ['a-long-enough-id', 'another-long-id'], 'short', 'x'.repeat(129), 'line\r\nbreak-injected', 'spaces are not ok', '"quoted-value"']) {
      const id = readRequestId(header);
      expect(id).not.toBe(header);
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    }
  });
});
