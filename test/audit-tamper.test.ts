/**
 * The audit trail against someone who can edit its files: cutting the tail, rewriting a record and
 * recomputing the (unkeyed) hash chain, deleting or forging a checkpoint are each found by
 * `npm run audit:verify` through the signed checkpoints; a rotated log verifies across its files.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkpointsPathOf, openFileAuditSink } from '../policy/audit.js';
import { DEV_AUDIT_SIGNING_KEY, signCheckpoint } from '../policy/audit-checkpoints.js';
import { auditRecord } from './harness/audit-sink-contract.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'audit-tamper-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const verify = (...files: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'policy/audit-verify.ts', ...files], { encoding: 'utf8' });
const lines = async (path: string) => (await readFile(path, 'utf8')).trimEnd().split('\n');

/** A log of `count` records written by the sink, with a checkpoint every few records and at close. */
async function writtenLog(name: string, count: number): Promise<string> {
  const path = join(dir, `${name}.jsonl`);
  const sink = await openFileAuditSink({ path, signingKey: DEV_AUDIT_SIGNING_KEY, checkpointIntervalMs: 0 });
  for (let n = 1; n <= count; n++) await sink.append(auditRecord(n));
  await sink.close();
  return path;
}

/** Rewrites one record and recomputes every hash after it, as an intruder without the key can. */
function rechain(log: string[], index: number, change: (record: Record<string, unknown>) => void): string[] {
  const out: string[] = [];
  let prev = '0'.repeat(64);
  log.forEach((line, i) => {
    const { hash: _hash, ...body } = JSON.parse(line) as Record<string, unknown>;
    if (i === index) change(body);
    body.prev = prev;
    const text = JSON.stringify(body);
    const hash = createHash('sha256').update(text).digest('hex');
    out.push(`${text.slice(0, -1)},"hash":"${hash}"}`);
    prev = hash;
  });
  return out;
}

describe('audit:verify with signed checkpoints', () => {
  it('verifies an untouched log and its checkpoints', async () => {
    const path = await writtenLog('untouched', 12);
    const result = verify(path);
    expect(result.stdout).toMatch(/OK, 12 records/);
    expect(result.stdout).toMatch(/checkpoints OK, 12 signed checkpoints/);
    expect(result.status).toBe(0);
  });

  it('finds the last 5 records cut, though the chain that is left is intact', async () => {
    const path = await writtenLog('cut', 12);
    await writeFile(path, `${(await lines(path)).slice(0, 7).join('\n')}\n`);
    const result = verify(path);
    expect(result.stdout).toMatch(/OK, 7 records/);
    expect(result.stdout).toMatch(/BROKEN: the log ends at seq 7, but checkpoint \d+ vouches for seq 8: 1 records were cut/);
    expect(result.stdout).toMatch(/vouches for seq 12: 5 records were cut from its end/);
    expect(result.status).toBe(1);
  });

  it('finds a record rewritten with the whole chain recomputed', async () => {
    const path = await writtenLog('rewritten', 8);
    await writeFile(path, `${rechain(await lines(path), 3, (record) => (record.subject = 'nobody')).join('\n')}\n`);
    const result = verify(path);
    expect(result.stdout).toMatch(/OK, 8 records/); // the chain alone cannot tell
    expect(result.stdout).toMatch(/BROKEN: the record at seq 4 is not the one checkpoint 4 vouches for: the chain was rewritten/);
    expect(result.status).toBe(1);
  });

  it('finds a deleted checkpoint, a forged one, and a missing checkpoints file', async () => {
    const path = await writtenLog('checkpoints', 6);
    const checkpoints = await lines(checkpointsPathOf(path));
    await writeFile(checkpointsPathOf(path), `${[...checkpoints.slice(0, 2), ...checkpoints.slice(3)].join('\n')}\n`);
    expect(verify(path).stdout).toMatch(/checkpoint 3 \(seq 4\) does not link to the checkpoint before it: a checkpoint is missing/);
    const forged = signCheckpoint('x'.repeat(40), { ...JSON.parse(checkpoints[5]!), previous: JSON.parse(checkpoints[4]!).signature });
    await writeFile(checkpointsPathOf(path), `${[...checkpoints.slice(0, 5), JSON.stringify(forged)].join('\n')}\n`);
    expect(verify(path).stdout).toMatch(/checkpoint 6 \(seq 6\) has a signature that does not verify with this key/);
    await rm(checkpointsPathOf(path));
    const missing = verify(path);
    expect(missing.stdout).toMatch(/NO CHECKPOINTS beside it/);
    expect(missing.status).toBe(1);
  });

  it('verifies a log across its rotated files, and finds the newer file alone to continue an earlier one', async () => {
    const path = join(dir, 'rotating.jsonl');
    const sink = await openFileAuditSink({ path, signingKey: DEV_AUDIT_SIGNING_KEY, checkpointIntervalMs: 60_000 });
    for (let n = 1; n <= 5; n++) await sink.append(auditRecord(n));
    await rename(path, join(dir, 'rotating.1.jsonl'));
    for (let n = 6; n <= 9; n++) await sink.append(auditRecord(n));
    await sink.close();
    const both = verify(join(dir, 'rotating.1.jsonl'), path);
    expect(both.stdout).toMatch(/rotating\.1\.jsonl: OK, 5 records/);
    expect(both.stdout).toMatch(/rotating\.jsonl: OK, 4 records, last hash [0-9a-f]{64} \(seq 6-9, continuing .*rotating\.1\.jsonl\)/);
    expect(both.stdout).toMatch(/checkpoints OK, 2 signed checkpoints/);
    expect(both.status).toBe(0);
    const newerAlone = verify(path);
    expect(newerAlone.stdout).toMatch(/rotating\.jsonl: OK, 4 records, .*continuing an earlier file not given/);
    expect(newerAlone.stdout).toMatch(/checkpoint 1 vouches for seq 5, which none of the given files holds/);
    expect(newerAlone.status).toBe(1);
  });
});
