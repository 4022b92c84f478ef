import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openFileAuditSink, verifyAuditLog, type AuditRecord } from './audit.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'audit-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function record(n: number): AuditRecord {
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

async function lines(path: string): Promise<string[]> {
  return (await readFile(path, 'utf8')).trimEnd().split('\n');
}

describe('the file audit sink', () => {
  it('writes a chain that verifies, and continues it when reopened', async () => {
    const path = join(dir, 'chain.jsonl');
    const first = await openFileAuditSink({ path });
    for (let n = 1; n <= 3; n++) await first.append(record(n), { durable: n === 2 });
    await first.close();
    const second = await openFileAuditSink({ path });
    await second.append(record(4));
    await second.close();
    const text = await readFile(path, 'utf8');
    expect(verifyAuditLog(text)).toMatchObject({ ok: true, records: 4 });
    expect((await lines(path)).map((line) => JSON.parse(line).seq)).toEqual([1, 2, 3, 4]);
  });

  it('keeps every record of concurrent appends, in one unbroken chain', async () => {
    const path = join(dir, 'concurrent.jsonl');
    const sink = await openFileAuditSink({ path });
    await Promise.all(Array.from({ length: 200 }, (_, i) => sink.append(record(i + 1), { durable: i % 50 === 0 })));
    await sink.close();
    expect(verifyAuditLog(await readFile(path, 'utf8'))).toMatchObject({ ok: true, records: 200 });
    expect(new Set((await lines(path)).map((line) => JSON.parse(line).requestId)).size).toBe(200);
  });

  it('keeps a record it cannot write, and writes it first once the file is back', async () => {
    const path = join(dir, 'failing.jsonl');
    const sink = await openFileAuditSink({ path });
    await sink.append(record(1));
    // The log file goes away and a directory stands in its place: writes fail.
    await rename(path, `${path}.away`);
    await mkdir(path);
    await expect(sink.append(record(2), { durable: true })).rejects.toThrow();
    await expect(sink.append(record(3))).rejects.toThrow();
    expect({ pending: sink.pending, failures: sink.failures }).toEqual({ pending: 2, failures: 2 });
    // It recovers: nothing was lost, the order and the chain are intact.
    await rm(path, { recursive: true });
    await rename(`${path}.away`, path);
    await sink.append(record(4));
    expect(sink.pending).toBe(0);
    await sink.close();
    expect((await lines(path)).map((line) => JSON.parse(line).requestId)).toEqual(['request-1', 'request-2', 'request-3', 'request-4']);
    expect(verifyAuditLog(await readFile(path, 'utf8'))).toMatchObject({ ok: true, records: 4 });
  });

  it('hands records it still cannot write at close to the last resort, never drops them', async () => {
    const path = join(dir, 'gone', 'log.jsonl');
    const unwritten: AuditRecord[] = [];
    const sink = await openFileAuditSink({ path, onUnwritten: (records) => unwritten.push(...records) });
    await rm(join(dir, 'gone'), { recursive: true });
    await writeFile(join(dir, 'gone'), 'a file where the folder was');
    await expect(sink.append(record(1))).rejects.toThrow();
    await sink.close();
    expect(unwritten.map((r) => r.requestId)).toEqual(['request-1']);
  });
});

describe('verification', () => {
  async function chainOf(n: number): Promise<string[]> {
    const path = join(dir, `verify-${n}-${Math.random()}.jsonl`);
    const sink = await openFileAuditSink({ path });
    for (let i = 1; i <= n; i++) await sink.append(record(i));
    await sink.close();
    return lines(path);
  }

  it('finds a changed line, at that line', async () => {
    const log = await chainOf(5);
    log[2] = log[2]!.replace('"count":3', '"count":300');
    expect(verifyAuditLog(log.join('\n'))).toMatchObject({ ok: false, line: 3, records: 2, reason: expect.stringMatching(/changed/) });
  });

  it('finds a deleted line, at the line after the gap', async () => {
    const log = await chainOf(5);
    log.splice(1, 1);
    expect(verifyAuditLog(log.join('\n'))).toMatchObject({ ok: false, line: 2, reason: expect.stringMatching(/removed or added/) });
  });

  it('finds a re-chained forgery that does not link to its predecessor', async () => {
    const log = await chainOf(3);
    const forged = JSON.parse(log[1]!);
    forged.prev = '0'.repeat(64);
    log[1] = JSON.stringify(forged);
    expect(verifyAuditLog(log.join('\n'))).toMatchObject({ ok: false, line: 2, reason: expect.stringMatching(/does not link/) });
  });

  it('finds a line that is not JSON, and accepts an empty log', async () => {
    const log = await chainOf(2);
    expect(verifyAuditLog([...log, '{oops'].join('\n'))).toMatchObject({ ok: false, line: 3, reason: 'not a JSON record' });
    expect(verifyAuditLog('')).toMatchObject({ ok: true, records: 0 });
  });

  it('is a command that reports the first broken link', async () => {
    const good = join(dir, 'cli-good.jsonl');
    const bad = join(dir, 'cli-bad.jsonl');
    const log = await chainOf(4);
    await writeFile(good, `${log.join('\n')}\n`);
    log[3] = log[3]!.replace('"ann"', '"bob"');
    await writeFile(bad, `${log.join('\n')}\n`);
    const run = (file: string) => spawnSync(process.execPath, ['--import', 'tsx', 'policy/audit-verify.ts', file], { encoding: 'utf8' });
    const ok = run(good);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/OK, 4 records/);
    const broken = run(bad);
    expect(broken.status).toBe(1);
    expect(broken.stdout).toMatch(/BROKEN at line 4: its content does not match its hash/);
  });
});
