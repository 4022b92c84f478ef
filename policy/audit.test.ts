import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { auditRecord, auditSinkContract, type SinkUnderTest } from '../test/harness/audit-sink-contract.js';
import { openFileAuditSink, verifyAuditLog } from './audit.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'audit-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const fileSink: SinkUnderTest = {
  open: (log, options) => openFileAuditSink({ path: join(dir, `${log}.jsonl`), ...options }),
  lines: async (log) => (await readFile(join(dir, `${log}.jsonl`), 'utf8')).trimEnd().split('\n'),
  // The log file goes away and a directory stands in its place: every write fails.
  async breakSink(log) {
    const path = join(dir, `${log}.jsonl`);
    if (existsSync(path)) await rename(path, `${path}.away`);
    await mkdir(path);
  },
  async repair(log) {
    const path = join(dir, `${log}.jsonl`);
    await rm(path, { recursive: true });
    if (existsSync(`${path}.away`)) await rename(`${path}.away`, path);
  },
};

auditSinkContract('file', fileSink);

async function lines(path: string): Promise<string[]> {
  return (await readFile(path, 'utf8')).trimEnd().split('\n');
}

describe('verification', () => {
  async function chainOf(n: number): Promise<string[]> {
    const path = join(dir, `verify-${n}-${Math.random()}.jsonl`);
    const sink = await openFileAuditSink({ path });
    for (let i = 1; i <= n; i++) await sink.append(auditRecord(i));
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
    const run = (file: string) => spawnSync(process.execPath, ['--import', 'tsx', 'policy/audit-verify.ts', '--without-checkpoints', file], { encoding: 'utf8' });
    const ok = run(good);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/OK, 4 records/);
    const broken = run(bad);
    expect(broken.status).toBe(1);
    expect(broken.stdout).toMatch(/BROKEN at line 4: its content does not match its hash/);
  });
});
