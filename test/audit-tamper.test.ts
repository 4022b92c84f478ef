/**
 * The audit trail against someone who can edit its files, or who owns its database: cutting the
 * tail, rewriting a record and recomputing the (unkeyed) hash chain, deleting or forging a checkpoint
 * are each found by `npm run audit:verify` through the signed checkpoints; a rotated log verifies
 * across its files. The PostgreSQL sink's table refuses changes by trigger; its owner switches the
 * triggers off first, as an intruder with that role would.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkpointsPathOf, openFileAuditSink } from '../policy/audit.js';
import { DEV_AUDIT_SIGNING_KEY, signCheckpoint } from '../policy/audit-checkpoints.js';
import { openPostgresAuditSink, readAuditLines, readCheckpointLines } from '../policy/audit-postgres-sink.js';
import { auditRecord } from './harness/audit-sink-contract.js';
import { onPostgres, TEST_POSTGRES } from './harness/postgres.js';

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

describe('audit:verify, as the README writes it', () => {
  it('takes `data/audit/*.jsonl` on an untouched mesh: each log checked with its checkpoints, none reported broken', async () => {
    const folder = join(dir, 'glob');
    await mkdir(folder);
    for (const service of ['gateway', 'customers']) {
      const sink = await openFileAuditSink({ path: join(folder, `${service}.jsonl`), signingKey: DEV_AUDIT_SIGNING_KEY });
      for (let n = 1; n <= 3; n++) await sink.append(auditRecord(n));
      await sink.close();
    }
    // What the shell makes of `*.jsonl`: the logs and their checkpoints files, sorted.
    const globbed = (await readdir(folder)).filter((name) => name.endsWith('.jsonl')).sort().map((name) => join(folder, name));
    expect(globbed.filter((path) => path.endsWith('.checkpoints.jsonl'))).toHaveLength(2);
    const result = verify(...globbed);
    expect(result.stdout).not.toMatch(/BROKEN/);
    expect(result.stdout).toMatch(/customers\.jsonl\.checkpoints\.jsonl: the checkpoints of .*customers\.jsonl, checked with it/);
    expect(result.stdout.match(/checkpoints OK, 1 signed checkpoints/g)).toHaveLength(2);
    expect(result.status).toBe(0);
    // A checkpoints file without its log is refused as such (exit 2), not read as a broken log.
    const alone = verify(join(folder, 'gateway.jsonl.checkpoints.jsonl'));
    expect(alone.stderr).toMatch(/holds checkpoints, not audit records: name its log/);
    expect(alone.status).toBe(2);
  });

  it('prints its usage on --help, and refuses a wrong command line with exit 2, naming what is wrong', () => {
    const help = verify('--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/Usage: npm run -s audit:verify -- \[options\] <logs\.\.\.>/);
    expect(verify().stderr).toMatch(/missing required argument 'logs'/);
    expect(verify().status).toBe(2);
    const unknown = verify('--bogus', 'x.jsonl');
    expect([unknown.status, unknown.stderr]).toEqual([2, expect.stringMatching(/unknown option '--bogus'/)]);
    const unreadable = verify(join(dir, 'no-such.jsonl'));
    expect([unreadable.status, unreadable.stderr]).toEqual([2, expect.stringMatching(/no-such\.jsonl: cannot be read/)]);
  });
});

describe('audit:verify with signed checkpoints, on the PostgreSQL sink', () => {
  // A database of this run's own, dropped afterwards.
  const database = `audit_tamper_${process.pid}_${randomUUID().slice(0, 8)}`;
  const url = `${TEST_POSTGRES}/${database}`;
  let client: pg.Client;
  beforeAll(async () => {
    await onPostgres(`CREATE DATABASE ${database}`);
    client = new pg.Client({ connectionString: url });
    await client.connect();
  });
  afterAll(async () => {
    await client?.end();
    await onPostgres(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  });

  /** `count` records of a service, a checkpoint with every write and one at close. */
  async function writtenService(service: string, count: number): Promise<void> {
    const sink = await openPostgresAuditSink({ connectionString: url, service, signingKey: DEV_AUDIT_SIGNING_KEY, checkpointIntervalMs: 0 });
    for (let n = 1; n <= count; n++) await sink.append(auditRecord(n));
    await sink.close();
  }
  /** What the database's owner can do: switch the append-only triggers off, change rows, switch them on. */
  async function asOwner(statements: (db: pg.Client) => Promise<unknown>): Promise<void> {
    await client.query('ALTER TABLE audit.audit_log DISABLE TRIGGER USER; ALTER TABLE audit.audit_checkpoints DISABLE TRIGGER USER');
    try {
      await statements(client);
    } finally {
      await client.query('ALTER TABLE audit.audit_log ENABLE TRIGGER USER; ALTER TABLE audit.audit_checkpoints ENABLE TRIGGER USER');
    }
  }
  /** The verifier's lines about one service of the database. */
  const about = (output: string, service: string) => output.split('\n').filter((line) => line.startsWith(`${database}:${service}:`)).join('\n');

  it('verifies untouched chains and their checkpoints, written by two replicas of one service at once', async () => {
    await writtenService('untouched', 12);
    const [a, b] = await Promise.all([
      openPostgresAuditSink({ connectionString: url, service: 'replicated', checkpointIntervalMs: 0 }),
      openPostgresAuditSink({ connectionString: url, service: 'replicated', checkpointIntervalMs: 0 }),
    ]);
    await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).append(auditRecord(i + 1))));
    await Promise.all([a.close(), b.close()]);
    const result = verify(url);
    expect(about(result.stdout, 'untouched')).toMatch(/OK, 12 records[\s\S]*checkpoints OK, 12 signed checkpoints$/);
    expect(about(result.stdout, 'replicated')).toMatch(/OK, 10 records[\s\S]*checkpoints OK, \d+ signed checkpoints$/);
    expect(result.status).toBe(0);
  });

  it('finds the last 5 records cut by the owner, though the chain that is left is intact', async () => {
    await writtenService('cut', 12);
    await asOwner((db) => db.query("DELETE FROM audit.audit_log WHERE service = 'cut' AND seq > 7"));
    const result = about(verify(url).stdout, 'cut');
    expect(result).toMatch(/OK, 7 records/);
    expect(result).toMatch(/vouches for seq 12: 5 records were cut from its end/);
  });

  it('finds every record and checkpoint of a service deleted', async () => {
    await writtenService('erased', 4);
    await asOwner((db) => db.query("DELETE FROM audit.audit_log WHERE service = 'erased'"));
    expect(about(verify(url).stdout, 'erased')).toMatch(/the log ends at seq 0, but checkpoint 1 vouches for seq 1/);
    await asOwner((db) => db.query("DELETE FROM audit.audit_checkpoints WHERE service = 'erased'"));
    // With nothing left of it, the service is gone from the database: nothing names it to miss.
    expect(about(verify(url).stdout, 'erased')).toBe('');
  });

  it('finds a record rewritten with the whole chain recomputed', async () => {
    await writtenService('rewritten', 8);
    const rewritten = rechain(await readAuditLines(client, 'rewritten'), 3, (record) => (record.subject = 'nobody'));
    await asOwner(async (db) => {
      for (const [i, line] of rewritten.entries()) {
        await db.query("UPDATE audit.audit_log SET line = $1, hash = $2 WHERE service = 'rewritten' AND seq = $3", [line, JSON.parse(line).hash, i + 1]);
      }
    });
    const result = about(verify(url).stdout, 'rewritten');
    expect(result).toMatch(/OK, 8 records/); // the chain alone cannot tell
    expect(result).toMatch(/BROKEN: the record at seq 4 is not the one checkpoint 4 vouches for: the chain was rewritten/);
  });

  it('finds a deleted checkpoint, a forged one, and a chain with no checkpoints', async () => {
    await writtenService('checkpoints', 6);
    const checkpoints = await readCheckpointLines(client, 'checkpoints');
    expect(checkpoints).toHaveLength(6);
    await asOwner((db) => db.query("DELETE FROM audit.audit_checkpoints WHERE service = 'checkpoints' AND n = 3"));
    expect(about(verify(url).stdout, 'checkpoints')).toMatch(/checkpoint 3 \(seq 4\) does not link to the checkpoint before it: a checkpoint is missing/);
    const forged = signCheckpoint('x'.repeat(40), { ...JSON.parse(checkpoints[5]!), seq: 6 });
    await asOwner((db) => db.query("UPDATE audit.audit_checkpoints SET line = $1 WHERE service = 'checkpoints' AND n = 6", [JSON.stringify(forged)]));
    expect(about(verify(url).stdout, 'checkpoints')).toMatch(/checkpoint 5 \(seq 6\) has a signature that does not verify with this key/);
    await asOwner((db) => db.query("DELETE FROM audit.audit_checkpoints WHERE service = 'checkpoints'"));
    const missing = verify(url);
    expect(about(missing.stdout, 'checkpoints')).toMatch(/NO CHECKPOINTS in audit\.audit_checkpoints/);
    expect(missing.status).toBe(1);
  });

  it('keeps the triggers on the checkpoints too: a service role cannot delete one', async () => {
    await writtenService('locked', 2);
    await expect(client.query("DELETE FROM audit.audit_checkpoints WHERE service = 'locked'")).rejects.toThrow(/append-only/);
    await expect(client.query('TRUNCATE audit.audit_checkpoints')).rejects.toThrow(/append-only/);
    expect(await readCheckpointLines(client, 'locked')).toHaveLength(2);
  });
});
