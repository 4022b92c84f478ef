import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { readRequestId, requestLogger } from './request-id.js';

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

describe("a request's logger", () => {
  it('is made once, when first used, and every line it writes carries the request id', () => {
    const lines: string[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    let children = 0;
    const child = log.child.bind(log);
    log.child = ((...args: Parameters<typeof log.child>) => {
      children += 1;
      return child(...args);
    }) as typeof log.child;
    const logger = requestLogger(log, 'req-lazy-0001');
    expect(children).toBe(0);
    logger().info('first');
    logger().warn('second');
    expect(children).toBe(1);
    expect(lines.map((line) => JSON.parse(line) as { requestId: string; msg: string })).toMatchObject([
      { requestId: 'req-lazy-0001', msg: 'first' },
      { requestId: 'req-lazy-0001', msg: 'second' },
    ]);
  });
});
