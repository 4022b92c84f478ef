/**
 * The tests every audit sink must pass, whatever it writes to: the file sink and the PostgreSQL
 * sink run the same suite.
 */
import { describe, expect, it } from 'vitest';
import { verifyAuditLog, type AuditRecord, type AuditSink } from '../../policy/audit.js';

export interface SinkUnderTest {
  /** A sink on a fresh, empty log; `log` names it, so that reopening continues the same chain. */
  open(log: string, options?: { onUnwritten?: (records: readonly AuditRecord[]) => void }): Promise<AuditSink>;
  /** The log's lines, in order. */
  lines(log: string): Promise<string[]>;
  /** Makes every write to the log fail until `repair`. */
  breakSink(log: string): Promise<void>;
  repair(log: string): Promise<void>;
}

export function auditRecord(n: number): AuditRecord {
  return {
    kind: 'subgraph-operation',
    service: 'customers',
    requestId: `request-${n}`,
    at: '2026-01-01T00:00:00.000Z',
    subject: 'ann',
    roles: ['analyst'],
    purpose: null,
    operationName: `Op${n}`,
    strict: n % 2 === 0,
    facts: [{ coordinate: 'Customer.name', decision: 'mask', rule: 'pii default mask', strategy: 'HASH', count: n }],
  };
}

export function auditSinkContract(name: string, sut: SinkUnderTest): void {
  const requestIds = async (log: string) => (await sut.lines(log)).map((line) => JSON.parse(line).requestId as string);

  describe(`the ${name} audit sink`, () => {
    it('writes a chain that verifies, and continues it when reopened', async () => {
      const first = await sut.open('chain');
      for (let n = 1; n <= 3; n++) await first.append(auditRecord(n), { durable: n === 2 });
      await first.close();
      const second = await sut.open('chain');
      await second.append(auditRecord(4));
      await second.close();
      const lines = await sut.lines('chain');
      expect(verifyAuditLog(lines.join('\n'))).toMatchObject({ ok: true, records: 4 });
      expect(lines.map((line) => JSON.parse(line).seq)).toEqual([1, 2, 3, 4]);
    });

    it('keeps every record of concurrent appends, in one unbroken chain', async () => {
      const sink = await sut.open('concurrent');
      await Promise.all(Array.from({ length: 200 }, (_, i) => sink.append(auditRecord(i + 1), { durable: i % 50 === 0 })));
      await sink.close();
      expect(verifyAuditLog((await sut.lines('concurrent')).join('\n'))).toMatchObject({ ok: true, records: 200 });
      expect(new Set(await requestIds('concurrent')).size).toBe(200);
    });

    it('keeps a record it cannot write, and writes it first once the log is back', async () => {
      const sink = await sut.open('failing');
      await sink.append(auditRecord(1));
      await sut.breakSink('failing');
      try {
        await expect(sink.append(auditRecord(2), { durable: true })).rejects.toThrow();
        await expect(sink.append(auditRecord(3))).rejects.toThrow();
        expect({ pending: sink.pending, failures: sink.failures }).toEqual({ pending: 2, failures: 2 });
      } finally {
        await sut.repair('failing');
      }
      await sink.append(auditRecord(4));
      expect(sink.pending).toBe(0);
      await sink.close();
      expect(await requestIds('failing')).toEqual(['request-1', 'request-2', 'request-3', 'request-4']);
      expect(verifyAuditLog((await sut.lines('failing')).join('\n'))).toMatchObject({ ok: true, records: 4 });
    });

    it('hands records it still cannot write at close to the last resort, never drops them', async () => {
      const unwritten: AuditRecord[] = [];
      const sink = await sut.open('lost', { onUnwritten: (records) => unwritten.push(...records) });
      await sut.breakSink('lost');
      try {
        await expect(sink.append(auditRecord(1))).rejects.toThrow();
        await sink.close();
      } finally {
        await sut.repair('lost');
      }
      expect(unwritten.map((r) => r.requestId)).toEqual(['request-1']);
    });
  });
}
